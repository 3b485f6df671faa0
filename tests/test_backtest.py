"""Backtests on a tiny fake env that implements the eval-env contract; baselines, report files, CLI wiring."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from engine.distributions import deterministic_action
from algos.transformer import MultiBranchTransformer, TransformerConfig
from envs.fx.research import backtest, baselines
from envs.fx.research import metrics as report
from envs.fx.research.backtest import BacktestArgs, backtest_report, run_backtest
from envs.fx.research.baselines import Momentum, make_baselines, target_to_action

HOUR_NS = 3600 * 10**9
MONDAY_NS = int(np.datetime64("2024-01-01T00:00", "ns").astype(np.int64))


class FakeFxEnv:
    """1-env torch vector env over ``closes``: the target fills at once, cost = rate x |change| x equity,
    then the position earns ``position x equity x close return`` over the next bar. Positions are
    reported in units (``max_position`` per full position) like the real env."""

    def __init__(self, closes, discrete: bool = True, levels=None, cost_rate: float = 0.0,
                 equity0: float = 1000.0, max_position: float = 100.0, bar_ns: int = HOUR_NS) -> None:
        self.closes = np.asarray(closes, dtype=np.float64)
        self.times = MONDAY_NS + np.arange(self.closes.size, dtype=np.int64) * bar_ns
        self._levels = levels
        if levels is not None:
            self.position_levels = tuple(levels)
        n = len(levels) if levels is not None else 5
        self.single_action_space = gym.spaces.Discrete(n) if discrete else gym.spaces.Box(-1, 1, (1,), np.float32)
        self.action_space = gym.spaces.MultiDiscrete([n]) if discrete else gym.spaces.Box(-1, 1, (1, 1), np.float32)
        box = lambda shape: gym.spaces.Box(-np.inf, np.inf, shape, np.float32)  # noqa: E731
        self.single_observation_space = gym.spaces.Dict({"high_freq": box((4, 1)), "portfolio": box((2,))})
        self.cost_rate, self.equity0, self.max_position = cost_rate, equity0, max_position
        self.split = "test"
        self.device = torch.device("cpu")

    def _obs(self) -> dict[str, torch.Tensor]:
        window = self.closes[max(0, self.t - 3): self.t + 1]
        window = np.r_[np.full(4 - window.size, window[0]), window]
        hf = torch.tensor(np.log(window / window[-1]), dtype=torch.float32).reshape(1, 4, 1)
        pf = torch.tensor([[self.pos, self.equity / self.equity0 - 1]], dtype=torch.float32)
        return {"high_freq": hf, "portfolio": pf}

    def _info(self) -> dict[str, torch.Tensor]:
        f = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
        return {"time": torch.tensor([self.times[self.t]]), "equity": f(self.equity),
                "position": f(self.pos * self.max_position), "close": f(self.closes[self.t])}

    def reset(self, seed: int | None = None):
        self.t, self.pos, self.equity = 0, 0.0, self.equity0
        return self._obs(), self._info()

    def step(self, actions: torch.Tensor):
        if isinstance(self.single_action_space, gym.spaces.Discrete):
            levels = self._levels or baselines.DEFAULT_POSITION_LEVELS
            assert actions.shape == (1,) and actions.dtype == torch.int64
            target = levels[int(actions[0])]
        else:
            assert actions.shape == (1, 1)
            target = float(actions[0, 0].clamp(-1, 1))
        cost = self.cost_rate * abs(target - self.pos) * self.equity
        self.equity -= cost
        self.pos = target
        self.t += 1
        pnl = self.pos * self.equity * (self.closes[self.t] / self.closes[self.t - 1] - 1)
        self.equity += pnl
        info = self._info()
        info["reward_raw/transaction_cost"] = torch.tensor([-cost / self.equity0], dtype=torch.float64)
        info["reward/pnl"] = torch.tensor([100 * pnl / self.equity0])
        info["reward/transaction_cost"] = torch.tensor([-100 * cost / self.equity0])
        reward = info["reward/pnl"] + info["reward/transaction_cost"]
        truncated = torch.tensor([self.t == self.closes.size - 1])
        return self._obs(), reward.float(), torch.tensor([False]), truncated, info


ZIGZAG = [1, 2, 3, 4, 3, 2, 1, 2, 3]


def run_baseline(name: str, env: FakeFxEnv, lookback: int = 2) -> backtest.Trajectory:
    return run_backtest(make_baselines(env, momentum_lookback=lookback)[name], env)


@pytest.mark.parametrize("discrete", [True, False])
def test_baselines_produce_expected_positions(discrete: bool) -> None:
    steps = len(ZIGZAG) - 1
    assert run_baseline("flat", FakeFxEnv(ZIGZAG, discrete)).position.tolist() == [0.0] * steps
    assert run_baseline("buy_and_hold", FakeFxEnv(ZIGZAG, discrete)).position.tolist() == [1.0] * steps
    # decision before step j sees closes c_0..c_j: sign(c_j - c_{j-2}), flat until 3 closes are known
    # c: 1 2 3 4 3 2 1 2 (3)  ->  -, -, 3-1, 4-2, 3-3, 2-4, 1-3, 2-2
    expected = [0, 0, 1, 1, 0, -1, -1, 0]
    assert run_baseline("momentum", FakeFxEnv(ZIGZAG, discrete)).position.tolist() == expected


def test_target_to_action_levels() -> None:
    assert target_to_action(1.0, FakeFxEnv(ZIGZAG)).tolist() == [4]
    assert target_to_action(-1.0, FakeFxEnv(ZIGZAG)).tolist() == [0]
    assert target_to_action(0.0, FakeFxEnv(ZIGZAG)).tolist() == [2]
    assert target_to_action(1.0, FakeFxEnv(ZIGZAG, levels=(0.0, 1.0, -1.0))).tolist() == [1]
    assert target_to_action(-1.0, FakeFxEnv(ZIGZAG, discrete=False)).tolist() == [[-1.0]]
    three = FakeFxEnv(ZIGZAG)
    three.single_action_space = gym.spaces.Discrete(3)
    with pytest.raises(ValueError, match="Discrete\\(3\\)"):
        target_to_action(1.0, three)
    with pytest.raises(ValueError, match="lookback"):
        Momentum(three, lookback=0)


def test_trajectory_records_hand_computed_equity_and_costs() -> None:
    # buy-and-hold, 0.1 % cost on the entry: 1000 -> 999 -> x1.1 = 1098.9 -> x0.9 = 989.01
    traj = run_baseline("buy_and_hold", FakeFxEnv([100, 110, 99], cost_rate=0.001))
    assert traj.initial_equity == 1000.0 and traj.initial_close == 100.0
    np.testing.assert_allclose(traj.equity, [1098.9, 989.01])
    np.testing.assert_allclose(traj.costs, [1.0, 0.0])
    np.testing.assert_allclose(traj.equity_curve, [1000.0, 1098.9, 989.01])
    assert traj.time.tolist() == [MONDAY_NS + HOUR_NS, MONDAY_NS + 2 * HOUR_NS]
    assert traj.curve_time[0] == MONDAY_NS and traj.close.tolist() == [110.0, 99.0]
    assert sorted(traj.components) == ["pnl", "transaction_cost"]
    np.testing.assert_allclose(traj.components["transaction_cost"], [-0.1, 0.0])
    np.testing.assert_allclose(traj.reward, traj.components["pnl"] + traj.components["transaction_cost"], rtol=1e-6)
    assert traj.action.tolist() == [[4], [4]] and not traj.terminated
    m = report.compute_metrics(traj, periods_per_year=252)
    assert m["total_return"] == pytest.approx(-0.01099) and m["costs_paid"] == pytest.approx(1.0)
    assert m["n_trades"] == 1 and m["exposure"] == 1.0
    assert len(run_backtest(make_baselines(FakeFxEnv(ZIGZAG), 2)["flat"], FakeFxEnv(ZIGZAG), max_steps=3)) == 3


def test_missing_info_key_is_a_clear_error() -> None:
    env = FakeFxEnv(ZIGZAG)
    real_step = env.step

    def step(actions):
        out = real_step(actions)
        del out[4]["equity"]
        return out

    env.step = step
    with pytest.raises(KeyError, match="'equity'"):
        run_backtest(make_baselines(env)["flat"], env)


def make_policy(env: FakeFxEnv):
    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=16, n_heads=2, n_layers=1, dim_feedforward=32, portfolio_hidden=16, head_hidden=16)
    model = MultiBranchTransformer(env.single_observation_space, env.single_action_space, cfg).eval()
    return lambda obs, info: deterministic_action(env.single_action_space, model(obs)[0])


def test_backtest_report_files_and_contents(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    closes = 1.1 * np.exp(np.cumsum(rng.normal(0, 0.002, 120)))
    factory = lambda: FakeFxEnv(closes, cost_rate=0.0)  # noqa: E731
    result = backtest_report(make_policy(factory()), factory, tmp_path / "rep")
    written = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert written == result
    assert result["split"] == "test" and result["bars"] == 119
    assert set(result["baselines"]) == {"flat", "buy_and_hold", "momentum", "macd", "zscore", "random"}
    for metrics in (result["metrics"], *(b["metrics"] for b in result["baselines"].values())):
        assert [k for k in metrics if k != "annualised_note"] == list(report.METRIC_KEYS)
    for key in ("verdict", "sharpe", "sharpe_ci", "psr", "dsr", "n_trials", "best_baseline", "cost_sensitivity"):
        assert key in result or key == "cost_sensitivity"  # (this factory takes no cost_scale: no table)
    assert (tmp_path / "rep" / "bars.csv").read_text().splitlines()[0] == "strategy,time,close,position,equity,return,costs,swap,trade"
    assert result["start"] == "2024-01-01T00:00:00Z" and result["end"] == "2024-01-05T23:00:00Z"
    assert result["periods_per_year"] == 252 * 24  # hourly bars, 24 a day
    flat = result["baselines"]["flat"]["metrics"]
    assert flat["total_return"] == 0.0 and flat["sharpe"] == 0.0 and flat["n_trades"] == 0
    assert flat["profit_factor"] == 1.0 and flat["max_drawdown"] == 0.0  # nothing won, nothing lost
    bh = result["baselines"]["buy_and_hold"]["metrics"]
    assert bh["total_return"] == pytest.approx(closes[-1] / closes[0] - 1)  # no costs: equity tracks price
    assert bh["exposure"] == 1.0 and bh["n_trades"] == 1
    assert bh["max_drawdown"] == pytest.approx(report.max_drawdown(closes))
    for name in ("equity_drawdown.png", "positions.png", "trade_returns.png"):
        data = (tmp_path / "rep" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000, name
    rnd = result["baselines"]["random"]["metrics"]  # uniform random levels: trades on most bars, same every run
    assert rnd["n_trades"] > 119 * 0.3 and rnd["turnover"] > 10 * bh["turnover"]
    again = backtest_report(make_policy(factory()), factory, tmp_path / "rep2")
    assert again["baselines"]["random"]["metrics"] == rnd


def test_report_json_is_strict_for_unbounded_ratios(tmp_path: Path) -> None:
    from envs.fx.research.metrics import RATIO_CAP

    closes = np.linspace(1.0, 1.1, 30)  # only rises: buy-and-hold has wins and no losses
    factory = lambda: FakeFxEnv(closes)  # noqa: E731
    result = backtest_report(make_baselines(factory())["buy_and_hold"], factory, tmp_path, periods_per_year=1000)
    assert result["metrics"]["profit_factor"] == RATIO_CAP  # defined: capped, never inf or null
    assert result["metrics"]["sortino"] == RATIO_CAP
    text = (tmp_path / "report.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert result["periods_per_year"] == 1000


def _fake_checkpoint(path: Path, **changes) -> Path:
    """A checkpoint file with a real config (price observations: no normalisation needed) and no weights."""
    import configs
    from engine.config import class_path, config_to_dict
    from envs.fx.config import FxEnvConfig

    cfg = dataclasses.replace(configs.TrainConfig(fx=FxEnvConfig(obs_mode="price")), **changes)
    torch.save({"global_step": 0, "config": config_to_dict(cfg), "config_class": class_path(cfg)}, path)
    return path


def test_cli_wiring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``backtest_checkpoint`` up to the policy: load_policy + make_fx_eval_env faked, --data overrides the data."""
    import tyro

    from engine import loop
    from envs.fx import market

    ckpt = _fake_checkpoint(tmp_path / "last.ckpt")
    data = tmp_path / "bars.csv"
    data.write_text("time,close\n")
    made: list[tuple] = []
    closes = np.linspace(1.0, 1.05, 40)

    def fake_load_policy(path, device="cpu", env=None):
        assert Path(path) == ckpt and env is not None
        return None, lambda obs: torch.tensor([4])

    def fake_make_env(fx, split="val", seed=0, device="cpu", norm=None, num_envs=1):
        made.append((fx.data, split, seed))
        return FakeFxEnv(closes)

    monkeypatch.setattr(loop, "load_policy", fake_load_policy)
    monkeypatch.setattr(market, "make_fx_eval_env", fake_make_env)
    args = tyro.cli(BacktestArgs, args=["--ckpt", str(ckpt), "--data", str(data), "--split", "val"])
    assert args.out_dir is None and args.momentum_lookback is None and args.n_trials == 1
    result = backtest.backtest_checkpoint(args)
    # the policy's spaces, the policy, six baselines (one at a time: this env cannot run a batch): the new data
    assert made == [(str(data), "val", 0)] * 8
    assert result["split"] == "val"
    assert result["metrics"]["total_return"] == pytest.approx(0.05)  # always long (level 4) on a 5 % rise
    assert (tmp_path / "backtest-val" / "report.json").is_file()
    made.clear()
    backtest.backtest_checkpoint(BacktestArgs(ckpt=ckpt, data=str(data)))
    assert {m[1] for m in made} == {"all"}  # on new data the whole file is tested by default
    with pytest.raises(FileNotFoundError, match="--ckpt"):
        backtest.backtest_checkpoint(BacktestArgs(ckpt=tmp_path / "missing.ckpt"))
    with pytest.raises(FileNotFoundError, match="--data"):
        backtest.backtest_checkpoint(BacktestArgs(ckpt=ckpt, data=str(tmp_path / "nope.csv")))
    with pytest.raises(SystemExit):
        tyro.cli(BacktestArgs, args=["--ckpt", str(ckpt), "--split", "bogus"])
    assert math.isfinite(result["metrics"]["sharpe"])
    cartpole = _fake_checkpoint(tmp_path / "cp.ckpt", env="CartPole-v1")
    with pytest.raises(ValueError, match="CartPole-v1"):
        backtest.backtest_checkpoint(BacktestArgs(ckpt=cartpole))


def test_format_summary_labels_what_is_not_a_number() -> None:
    metrics = dict.fromkeys(report.METRIC_KEYS, 0.0) | {"n_trades": 2, "annualised_return": None,
                                                          "annualised_note": "a 0.25-year window is too short"}
    text = backtest.format_summary({"metrics": metrics, "baselines": {"flat": {"metrics": metrics}},
                                    "verdict_line": "no evidence of an edge at 95%: DSR 0.1, PSR 0.2", "n_trials": 3})
    row = next(line for line in text.splitlines() if line.startswith("annualised_return"))
    assert row.split()[1:] == ["n/a", "n/a"]
    assert text.splitlines()[0].startswith("no evidence of an edge") and "trials behind it: 3" in text
    assert "note: a 0.25-year window is too short" in text


def test_real_fx_eval_env_baselines_and_transformer() -> None:
    """The same checks on the real FX env (small synthetic market), when envs provides it."""
    envs = pytest.importorskip("envs.fx")
    from envs.fx.config import FxEnvConfig

    cfg = FxEnvConfig(synthetic_n_bars=4000, episode_bars=100, train_frac=0.5, val_frac=0.1, test_frac=0.4,
                      window_high=16, window_medium=4, window_low=4, agg_medium=5, agg_low=15, bar_seconds=300,
                      max_leverage=100.0, initial_margin=0.01, maintenance_margin=0.005)  # no cap on the baselines' levels
    make = lambda: envs.make_fx_eval_env(cfg, split="test")  # noqa: E731
    flat = run_baseline("flat", make(), lookback=5)
    assert np.all(flat.position == 0) and np.all(flat.equity == cfg.initial_equity) and flat.costs.sum() == 0
    bh = run_baseline("buy_and_hold", make(), lookback=5)
    assert np.all(bh.position == 1.0) and report.n_trades(bh.position) == 1 and len(bh) == len(flat)
    e0, scale = cfg.initial_equity, cfg.reward_scale
    # costs read from the env's raw cost component agree with the weighted component (weight 1)
    np.testing.assert_allclose(bh.costs, -bh.components["transaction_cost"] * e0 / scale, rtol=1e-6, atol=1e-9)
    assert bh.costs[0] > 0 and np.all(bh.costs[1:] == 0)  # one entry fill, nothing after
    # ledger identity: pnl + cost + swap components add up to the equity change
    net = sum(bh.components[k] for k in ("pnl", "transaction_cost", "swap")).sum() * e0 / scale
    assert bh.equity[-1] - bh.initial_equity == pytest.approx(net, rel=1e-6, abs=1e-6)
    mom = run_baseline("momentum", make(), lookback=5)
    assert set(np.unique(mom.position)) <= {-1.0, 0.0, 1.0}  # it sees the bars before the split from the start
    env = make()
    traj = run_backtest(make_policy_for(env), env, max_steps=20)
    assert len(traj) == 20 and set(np.unique(traj.position)) <= set(cfg.position_levels)


def make_policy_for(env):
    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=16, n_heads=2, n_layers=1, dim_feedforward=32, portfolio_hidden=16, head_hidden=16)
    model = MultiBranchTransformer(env.single_observation_space, env.single_action_space, cfg).eval()
    return lambda obs, info: deterministic_action(env.single_action_space, model(obs)[0])


def test_cli_end_to_end_on_a_real_checkpoint(tmp_path: Path) -> None:
    """``main`` through the lead's real ``load_policy`` and the real eval env (checkpoint written by hand)."""
    import configs  # noqa: F401  (registers the policies and the FX env family)
    from engine import loop
    from configs import TrainConfig
    from engine.config import class_path, config_to_dict
    from envs.fx.config import FxEnvConfig

    fx = FxEnvConfig(synthetic_n_bars=4000, episode_bars=100, train_frac=0.5, val_frac=0.1, test_frac=0.4, window_high=16,
                     window_medium=4, window_low=4, agg_medium=5, agg_low=15, bar_seconds=300)
    model = TransformerConfig(d_model=16, n_heads=2, n_layers=1, dim_feedforward=32, portfolio_hidden=16,
                              head_hidden=16)
    cfg = TrainConfig(fx=fx, model=model, policy="transformer")
    env = loop.make_train_env(cfg, 1, cfg.seed, torch.device("cpu"))
    torch.manual_seed(0)
    policy = loop.build_policy(cfg, env.single_observation_space, env.single_action_space)
    ckpt = tmp_path / "run" / "last.ckpt"
    ckpt.parent.mkdir()
    torch.save({"global_step": 0, "config": config_to_dict(cfg), "config_class": class_path(cfg),
                "policy": policy.state_dict(), "obs_norm": None}, ckpt)
    result = backtest.backtest_checkpoint(BacktestArgs(ckpt=ckpt, split="test", momentum_lookback=5))
    out = tmp_path / "run" / "backtest-test"
    assert json.loads((out / "report.json").read_text()) == result
    assert result["split"] == "test" and result["bars"] > 300
    assert result["periods_per_year"] == 252 * 288  # 5-minute bars around the clock
    assert result["baselines"]["flat"]["metrics"]["total_return"] == 0.0
    assert result["baselines"]["buy_and_hold"]["metrics"]["n_trades"] == 1
    assert result["verdict"] in ("edge", "no edge") and set(result["cost_sensitivity"]) == {"0.5", "1", "2", "3"}
    assert all((out / name).stat().st_size > 10_000 for name in ("equity_drawdown.png", "positions.png",
                                                                  "trade_returns.png"))
