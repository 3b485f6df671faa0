"""The live agent decides as the backtest does: streamed one bar at a time over a split (its own
simulated account, or the env's account passed in as a broker's), from the first bar of a file,
in batches, after a restore; and it loads from a checkpoint alone."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import configs  # noqa: F401  (registers the policies and the FX family)
from engine import loop
from engine.checkpoint import read_checkpoint
from envs.fx import market
from envs.fx.data import load_bars, save_bars
from envs.fx.live import AccountState, Agent, Bar
from envs.fx.research.backtest import run_backtest
from envs.fx.research.spec import norm_from_spec
from tests.live_helpers import positions_changed, trained_checkpoint
from tests.paths import child_env



def backtest(ckpt: Path, split: str, data: str | None = None):
    """engine.backtest's trajectory of ``ckpt`` on ``split`` (its env factory and policy), the env and the market."""
    raw = read_checkpoint(ckpt)
    cfg = loop.load_config(raw, ckpt)
    fx = cfg.fx if data is None else dataclasses.replace(cfg.fx, data=data)
    env = market.make_fx_eval_env(fx, split=split, norm=norm_from_spec(raw["env_spec"]))
    _, policy = loop.load_policy(ckpt, env=env)
    traj = run_backtest(lambda obs, info: policy(obs), env)
    return traj, env, market.load_market(fx, strict=False), cfg


def targets_of(traj, levels) -> np.ndarray:
    return np.asarray(levels)[traj.action.reshape(-1).astype(int)]


def test_streaming_a_split_bar_by_bar_gives_the_backtests_targets_positions_and_equity() -> None:
    ckpt = trained_checkpoint("transformer")
    traj, env, mkt, cfg = backtest(ckpt, "test")
    assert positions_changed(traj.position) >= 20  # the policy really trades (36 times here)
    start, n = int(env.t_min), len(traj)
    agent = Agent.load(ckpt)
    live = agent.stream(history=mkt.bars.slice(0, start))  # the bars before the split: warm-up only
    decisions = [live.on_bar(mkt.bars.slice(start + i, start + i + 1)) for i in range(n + 1)]
    assert all(d.ready for d in decisions)
    targets = np.array([d.target for d in decisions[:n]])
    np.testing.assert_array_equal(targets, targets_of(traj, cfg.fx.position_levels))
    # after bar i + 1's fills the streaming account holds what the backtest held after step i, to the last bit
    np.testing.assert_array_equal(np.array([d.position for d in decisions[1:]]) / cfg.fx.max_position, traj.position)
    np.testing.assert_array_equal(np.array([d.equity for d in decisions[1:]]), traj.equity)


def test_an_external_account_fed_from_the_envs_positions_gets_the_same_decisions() -> None:
    """The broker's view of the account (position and average price after each bar's fills) is enough:
    the agent counts bars in the position and remembers its last target as the env does."""
    ckpt = trained_checkpoint("mlp")
    raw = read_checkpoint(ckpt)
    cfg = loop.load_config(raw, ckpt)
    env = market.make_fx_eval_env(cfg.fx, split="val", norm=norm_from_spec(raw["env_spec"]))
    _, policy = loop.load_policy(ckpt, env=env)
    bars = market.load_market(cfg.fx).bars
    live = Agent.load(ckpt).stream(history=bars.slice(0, int(env.t_min)), account="external")
    obs, _ = env.reset()
    agree = steps = trades = 0
    done = False
    with torch.no_grad():
        while not done:
            t = int(env.t[0])
            acc = env.accounts
            d = live.on_bar(bars.slice(t, t + 1), AccountState(float(acc.position[0]), float(acc.entry_price[0])))
            action = policy(obs)
            agree += int(d.action == int(action[0]))
            position = float(acc.position[0])
            obs, _, term, trunc, _ = env.step(action)
            trades += int(float(env.accounts.position[0]) != position)
            steps += 1
            done = bool(term[0] or trunc[0])
    assert trades >= 30 and agree == steps > 400


def test_streaming_a_file_from_its_first_bar_is_ready_exactly_where_the_backtest_starts(tmp_path: Path) -> None:
    ckpt = trained_checkpoint("mlp")
    data = tmp_path / "EURUSD_new.csv"  # a new file: the first 1,200 bars of the market
    save_bars(load_bars(ckpt.parent / "EURUSD_syn.csv").slice(0, 1200), data)
    traj, env, mkt, cfg = backtest(ckpt, "all", data=str(data))
    agent = Agent.load(ckpt)
    live = agent.stream()
    decisions = [live.on_bar(mkt.bars.slice(i, i + 1)) for i in range(len(mkt.bars))]
    first = next(i for i, d in enumerate(decisions) if d.ready)
    assert first == mkt.valid_from == int(env.t_min) and first <= agent.warmup_bars
    assert all(d.ready for d in decisions[first:]) and not any(d.ready for d in decisions[:first])
    assert all(d.position == 0.0 and d.target == 0.0 for d in decisions[:first])  # no trading while warming up
    n = len(traj)
    np.testing.assert_array_equal([d.target for d in decisions[first:first + n]],
                                  targets_of(traj, cfg.fx.position_levels))
    np.testing.assert_array_equal(np.array([d.equity for d in decisions[first + 1:first + n + 1]]), traj.equity)


def test_act_decides_a_batch_as_the_stream_does_and_refuses_a_short_history() -> None:
    ckpt = trained_checkpoint("mlp")
    agent = Agent.load(ckpt)
    bars = load_bars(ckpt.parent / "EURUSD_syn.csv")
    live = agent.stream(history=bars.slice(0, 1000), account="external")
    states = [AccountState(0.0, 0.0, 0, 0.0), AccountState(-50_000.0, 1.1, 3, -50_000.0), AccountState(100_000.0, 1.0, 40, 0.0)]
    ends = [1300, 1301, 1302]
    batch = agent.act([bars.slice(0, e) for e in ends], states)
    for i in range(1000, 1302):
        d = live.on_bar(bars.slice(i, i + 1), states[i - 1299] if i >= 1299 else AccountState())
        if i >= 1299:
            assert d.target == batch[i - 1299].target  # batched kernels differ from batch-1 ones by ~1e-7
            np.testing.assert_allclose(d.params, batch[i - 1299].params, rtol=0, atol=1e-5)
    assert len({b.params for b in batch}) == 3  # the account state reaches the network
    with pytest.raises(ValueError, match=r"does not fill the observation windows; give about 216 bars"):
        agent.act(bars.slice(0, 100))


def test_bars_out_of_order_or_inconsistent_fail_clearly_and_a_restored_stream_continues_identically(
        tmp_path: Path) -> None:
    ckpt = trained_checkpoint("mlp")
    agent = Agent.load(ckpt)
    bars = load_bars(ckpt.parent / "EURUSD_syn.csv")
    first = agent.stream(history=bars.slice(0, 400))
    for i in range(400, 450):
        first.on_bar(bars.slice(i, i + 1))
    with pytest.raises(ValueError, match=r"is not after the previous bar"):
        first.on_bar(bars.slice(420, 421))
    bad = Bar.of(bars.slice(450, 451))
    with pytest.raises(ValueError, match=r"high .* and low .* must enclose"):
        first.on_bar(Bar(bad.time_ns, bad.open, bad.open * 0.99, bad.low, bad.close))
    state = first.state_dict()
    torch.save(state, tmp_path / "stream.pt")
    restored = agent.stream()
    restored.load_state_dict(torch.load(tmp_path / "stream.pt", weights_only=True))  # tensors and numbers only
    for i in range(450, 700):
        a, b = first.on_bar(bars.slice(i, i + 1)), restored.on_bar(bars.slice(i, i + 1))
        assert a == b
    assert first.sim.position == restored.sim.position and first.sim.equity == restored.sim.equity


def test_the_agent_loads_from_a_checkpoint_alone_in_a_directory_without_data_or_config(tmp_path: Path) -> None:
    """A fresh interpreter in an empty directory holding only the checkpoint; the training data is gone."""
    ckpt = trained_checkpoint("transformer")
    bars = load_bars(ckpt.parent / "EURUSD_syn.csv").slice(1000, 1400)
    expected = Agent.load(ckpt).act(bars, AccountState(20_000.0, 1.1, 5, 20_000.0))
    alone = tmp_path / "deploy"
    alone.mkdir()
    shutil.copy(ckpt, alone / "agent.ckpt")
    frame = bars.time.astype("datetime64[ns]").astype(np.int64).tolist()
    payload = {"time": frame, "open": bars.open.tolist(), "high": bars.high.tolist(), "low": bars.low.tolist(),
               "close": bars.close.tolist()}
    (alone / "bars.json").write_text(json.dumps(payload))
    training_data = read_checkpoint(ckpt)["config"]["fx"]["data"]
    moved = Path(str(training_data) + ".away")
    os.replace(training_data, moved)
    script = (
        "import json, numpy as np\n"
        "from envs.fx.data import Bars\n"
        "from envs.fx.live import Agent, AccountState\n"
        "p = json.load(open('bars.json'))\n"
        "bars = Bars(np.array(p['time'], dtype='datetime64[ns]'), *(np.array(p[k]) for k in "
        "('open', 'high', 'low', 'close')), np.zeros(len(p['time'])))\n"
        "d = Agent.load('agent.ckpt').act(bars, AccountState(20_000.0, 1.1, 5, 20_000.0))\n"
        "print(json.dumps({'target': d.target, 'params': d.params}))\n")
    try:
        env = child_env()
        res = subprocess.run([sys.executable, "-c", script], cwd=alone, env=env, capture_output=True, text=True,
                             timeout=300)
    finally:
        os.replace(moved, training_data)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in alone.iterdir()) == ["agent.ckpt", "bars.json"]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["target"] == expected.target and tuple(out["params"]) == expected.params


def test_the_real_eurusd_2017_test_window_streamed_bar_by_bar_matches_the_backtest(tmp_path: Path) -> None:
    """The hourly EURUSD 2017 file of gym-anytrading (ask prices, made mid as the env does), the fx-h1
    windows; a policy trained briefly on it. The first 400 bars of its test split here; the whole
    window is in the README."""
    anytrading = pytest.importorskip("gym_anytrading")
    data = Path(anytrading.__file__).parent / "datasets" / "data" / "FOREX_EURUSD_1H_ASK.csv"
    from engine.ppo import parse_args, train
    from tests.live_helpers import decisive

    summary = train(parse_args(["fx-h1", "--data", str(data), "--policy", "mlp", "--num-envs", "4",
                                "--rollout-steps", "32", "--total-steps", "256", "--hooks.no-progress",
                                "--hooks.eval-every", "0", "--hooks.monitor", "episode/return_mean",
                                "--fx.report-split", "none", "--out-dir", str(tmp_path / "run")]))
    ckpt = decisive(Path(summary["last_checkpoint"]), tmp_path / "eurusd.ckpt")
    raw = read_checkpoint(ckpt)
    cfg = loop.load_config(raw, ckpt)
    env = market.make_fx_eval_env(cfg.fx, split="test", norm=norm_from_spec(raw["env_spec"]))
    _, policy = loop.load_policy(ckpt, env=env)
    traj = run_backtest(lambda obs, info: policy(obs), env, max_steps=400)
    bars = market.load_market(cfg.fx).bars
    start = int(env.t_min)
    assert bars.source.endswith("FOREX_EURUSD_1H_ASK.csv") and start > 4000  # the test split of 2017's hourly bars
    live = Agent.load(ckpt).stream(history=bars.slice(0, start))
    decisions = [live.on_bar(bars.slice(start + i, start + i + 1)) for i in range(401)]
    assert positions_changed(traj.position) >= 20
    np.testing.assert_array_equal([d.target for d in decisions[:400]], targets_of(traj, cfg.fx.position_levels))
    np.testing.assert_array_equal(np.array([d.position for d in decisions[1:]]) / cfg.fx.max_position, traj.position)


def test_a_checkpoint_that_cannot_drive_the_agent_is_refused_naming_the_file_and_why(tmp_path: Path) -> None:
    from engine.checkpoint import CheckpointError, seal

    raw = torch.load(trained_checkpoint("mlp"), weights_only=True)
    cases = {"gym.ckpt": ({**raw, "config": {**raw["config"], "env": "CartPole-v1"}}, "needs an FX checkpoint"),
             "old.ckpt": ({k: v for k, v in raw.items() if k != "env_spec"}, "carries no env_spec"),
             "other-net.ckpt": ({**raw, "config": {**raw["config"], "mlp": {"hidden": [8], "activation": "tanh"}}},
                                "policy weights do not fit mlp")}
    for name, (ckpt, why) in cases.items():
        torch.save(seal(ckpt), tmp_path / name)  # edited on purpose: sealed again, so the hash is not what fails
        with pytest.raises(CheckpointError, match=why) as err:
            Agent.load(tmp_path / name)
        assert name in str(err.value)
    (tmp_path / "torn.ckpt").write_bytes((tmp_path / "gym.ckpt").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="torn.ckpt is corrupt or unreadable"):
        Agent.load(tmp_path / "torn.ckpt")
