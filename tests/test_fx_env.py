"""FX env behaviour: no look-ahead, determinism, single == vector, resume, reward == account, gym API."""

from __future__ import annotations

import dataclasses
import io
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

from envs import fx as envs
from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars, bars_to_frame
from envs.fx.features import FeatureNorm, bar_duration_ns, market_features_raw
from envs.fx.single import FxTradingEnv
from envs.fx.synthetic import generate
from envs.fx.vector import FxVectorEnv

torch.set_num_threads(1)
CFG = FxEnvConfig(episode_bars=120, window_high=32, window_medium=8, window_low=8, agg_medium=5, agg_low=20,
                  ma_window=30, ma_window_long=100, swap_long=-0.0004, swap_short=-0.0002)  # big swaps so they matter


@pytest.fixture(scope="module")
def bars() -> Bars:
    return generate("ou", 3000, seed=11, skip_weekends=True)


def run(env: FxVectorEnv, actions: np.ndarray, **reset_kw) -> list[dict]:
    """Trajectory records (copies of every tensor the env returns) under fixed actions."""
    obs, info = env.reset(**reset_kw)
    out = [{"obs": {k: v.clone() for k, v in obs.items()}, "time": info["time"].clone()}]
    for a in actions:
        obs, r, te, tr, info = env.step(torch.as_tensor(a))
        rec = {"obs": {k: v.clone() for k, v in obs.items()}, "reward": r.clone(), "te": te.clone(),
               "tr": tr.clone()}
        for k, v in info.items():  # per-step tensors, and final_obs/final_info on episode ends
            rec[k] = {kk: vv.clone() for kk, vv in v.items()} if isinstance(v, dict) else v.clone()
        out.append(rec)
    return out


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return torch.equal(a, b)


def with_spreads(bars: Bars, seed: int = 0) -> Bars:
    """``bars`` as if loaded from bid/ask columns: a random spread of 0.3-3 pips on every bar."""
    rng = np.random.default_rng(seed)
    return dataclasses.replace(bars, side="bidask", spread=rng.uniform(0.3e-4, 3e-4, size=(len(bars), 4)))


PATHS = {  # cost, swap and currency paths the accounting must hold on
    "quote account": {},
    "base account (EUR on EURUSD)": {"account_currency": "EUR"},
    "third currency at a fixed rate": {"pair": "EURGBP", "conversion_rate": 1.27},
    "bid/ask spreads, impact, schedule": {"impact_pips_per_million": 3.0, "swap_data": "SCHEDULE"},
}


def path_cfg(cfg: FxEnvConfig, name: str, tmp_path) -> FxEnvConfig:
    changes = dict(PATHS[name])
    if changes.get("swap_data") == "SCHEDULE":
        sched = tmp_path / "swaps.csv"
        sched.write_text("date,swap_long,swap_short\n2023-12-01,-0.0005,0.0001\n2024-01-02,0.0002,-0.0007\n")
        changes["swap_data"] = str(sched)
    return dataclasses.replace(cfg, **changes)


def test_first_valid_bar_is_tight(bars):
    for cfg in (CFG, FxEnvConfig(), dataclasses.replace(CFG, ma_window=3, vol_window=5, agg_medium=7, ma_window_long=3)):
        t0 = FxVectorEnv(bars, cfg, num_envs=1).t_min
        raw = market_features_raw(bars, cfg)
        newest = {"high_freq": np.arange(len(bars)), **{k: b.newest for k, b in raw.blocks.items()}}
        wins = {"high_freq": cfg.window_high, "medium_freq": cfg.window_medium, "low_freq": cfg.window_low}

        def window_finite(t: int) -> bool:
            ok = True
            for key, w in wins.items():
                n = newest[key][t]
                ok &= n - w + 1 >= 0 and bool(np.isfinite(raw.tables[key][n - w + 1:n + 1]).all())
            return ok

        assert window_finite(t0) and not window_finite(t0 - 1)


def test_aggregates_are_clock_blocks_that_do_not_depend_on_where_the_history_starts(bars):
    """The medium/low windows of a bar are the same whether the series starts at 0 or 500 bars later."""
    cfg = CFG
    full = FxVectorEnv(bars, cfg, num_envs=1)
    late = FxVectorEnv(bars.slice(501, len(bars)), cfg, num_envs=1, norm=full.norm)
    for t in (late.t_min + 7, late.t_min + 300, len(bars) - 502):
        a = full.features.observe(torch.tensor([t + 501]))
        b = late.features.observe(torch.tensor([t]))
        for key in ("high_freq", "medium_freq", "low_freq"):
            assert torch.equal(a[key], b[key]), (key, t)
    bar_ns = bar_duration_ns(bars)
    blk = market_features_raw(bars, cfg).blocks["low_freq"]
    period = cfg.agg_low * bar_ns
    starts = bars.time.astype("datetime64[ns]").astype(np.int64)[blk.first]
    assert len(set((starts // period).tolist())) == len(starts)  # one block per clock period, none split


def test_no_lookahead_for_every_observation_key_and_reward_component(bars):
    norm = FeatureNorm.fit(bars, CFG)  # a fixed "training" normalisation for both runs
    start = FxVectorEnv(bars, CFG, num_envs=1, norm=norm).t_min + 100
    cut = start + 63  # mid-way through a medium and a low aggregate block
    blk = market_features_raw(bars, CFG).blocks
    assert cut + 1 not in set(blk["medium_freq"].first) | set(blk["low_freq"].first)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 5, size=(110, 1))
    cfg = dataclasses.replace(CFG, episode_bars=500, w_drawdown_penalty=1.0, w_holding_penalty=0.1,
                              w_differential_sharpe=0.01)
    base = run(FxVectorEnv(bars, cfg, num_envs=1, norm=norm), actions, options={"start": start})
    s = slice(cut + 1, None)
    f = np.exp(rng.normal(0, 3e-3, len(bars) - cut - 1))
    future = Bars(bars.time, np.r_[bars.open[:cut + 1], bars.open[s] * f], np.r_[bars.high[:cut + 1], bars.high[s] * f * 1.001],
                  np.r_[bars.low[:cut + 1], bars.low[s] * f * 0.999], np.r_[bars.close[:cut + 1], bars.close[s] * f],
                  bars.volume, "perturbed")
    pert = run(FxVectorEnv(future, cfg, num_envs=1, norm=norm), actions, options={"start": start})
    n_equal = cut - start  # steps whose newest bar is <= cut
    for i in range(n_equal + 1):
        assert base[i]["time"].item() <= bars.time[cut].astype(np.int64)
        assert same(base[i], pert[i]), f"step {i} differs although it only depends on bars <= {cut}"
    keys = [k for k in base[1] if k.startswith("reward/")]
    assert len(keys) == 7
    # and the perturbation is visible right after the cut (the test can fail)
    after = base[n_equal + 1], pert[n_equal + 1]
    assert not torch.equal(after[0]["obs"]["high_freq"], after[1]["obs"]["high_freq"])
    assert not torch.equal(after[0]["reward/pnl"], after[1]["reward/pnl"])
    for key in ("medium_freq", "low_freq"):
        first_diff = next(i for i in range(len(base)) if not torch.equal(base[i]["obs"][key], pert[i]["obs"][key]))
        b = blk[key]
        holding = int(np.searchsorted(b.first, cut + 1, side="right")) - 1  # the block that holds bar cut + 1
        t_first = start + first_diff
        # only once the block holding cut+1 has closed
        assert t_first > cut and b.newest[t_first] >= holding > b.newest[t_first - 1]


def test_no_lookahead_on_the_spread_swap_schedule_and_conversion_series(bars, tmp_path):
    """Perturbing everything after bar ``cut`` (prices, spreads, the swap schedule's later rows, the conversion
    series' later bars) changes nothing observed or booked up to ``cut``."""
    from envs.fx.arrays import trading_context
    from envs.fx.data import save_bars

    cut_time = bars.time[1800]
    conv = generate("gbm", len(bars), seed=5)  # GBPUSD-like conversion bars on the same clock
    sched = tmp_path / "swaps.csv"
    day_after = str(cut_time.astype("datetime64[D]") + 1)
    cfg = dataclasses.replace(CFG, pair="EURGBP", episode_bars=900, conversion_pair="GBPUSD",
                              conversion_data=str(tmp_path / "GBPUSD.csv"), swap_data=str(sched),
                              impact_pips_per_million=3.0)

    def trajectory(b: Bars, c: Bars, later_rate: float) -> list[dict]:
        save_bars(c, tmp_path / "GBPUSD.csv")
        sched.write_text(f"date,swap_long,swap_short\n2023-12-01,-0.0005,0.0001\n{day_after},{later_rate},-0.003\n")
        env = FxVectorEnv(b, cfg, num_envs=1, norm=FeatureNorm.fit(bars, cfg), context=trading_context(cfg, c))
        acts = np.random.default_rng(9).integers(0, 5, size=(400, 1))
        return run(env, acts, options={"start": 1500})

    base = with_spreads(bars, seed=1)
    f = np.exp(np.random.default_rng(3).normal(0, 3e-3, len(bars) - 1801))
    later = slice(1801, None)
    spread = base.spread.copy()
    spread[later] *= 3.0
    pert = dataclasses.replace(base, open=np.r_[base.open[:1801], base.open[later] * f],
                               high=np.r_[base.high[:1801], base.high[later] * f * 1.001],
                               low=np.r_[base.low[:1801], base.low[later] * f * 0.999],
                               close=np.r_[base.close[:1801], base.close[later] * f], spread=spread)
    conv_pert = dataclasses.replace(conv, close=np.r_[conv.close[:1801], conv.close[1801:] * 1.1])
    a = trajectory(base, conv, 0.0002)
    b = trajectory(pert, conv_pert, 0.0300)
    n_equal = 1800 - 1500
    for i in range(n_equal + 1):
        assert same(a[i], b[i]), f"step {i} depends on something after the cut"
    assert not same(a[n_equal + 2], b[n_equal + 2])  # and the perturbation is visible after it


def test_info_close_is_the_bar_at_info_time_and_fills_are_later(bars):
    env = FxVectorEnv(bars, CFG, num_envs=3, seed=5)
    _, info = env.reset()
    times = bars.time.astype(np.int64)
    for _ in range(30):
        seen_close = info["close"].clone()
        _, _, _, _, info = env.step(torch.tensor([4, 0, 4]))
        idx = np.searchsorted(times, info["time"].numpy())
        assert np.array_equal(info["close"].numpy(), bars.close[idx])
    env2 = FxVectorEnv(bars, CFG, num_envs=1)
    _, info = env2.reset(options={"start": 2000})
    seen_close = info["close"].item()
    _, _, _, _, info = env2.step(torch.tensor([4]))
    entry = env2.accounts.entry_price.item()
    assert entry > bars.open[2001] and entry - bars.open[2001] < 1e-4  # next open + half spread + slippage
    assert seen_close == bars.close[2000]


@pytest.mark.parametrize("path", list(PATHS))
def test_single_env_and_vector_env_give_identical_trajectories(bars, path, tmp_path):
    rng = np.random.default_rng(1)
    actions = rng.integers(0, 5, size=400)
    cfg = path_cfg(CFG, path, tmp_path)
    b = with_spreads(bars) if "bid/ask" in path else bars
    vec = FxVectorEnv(b, cfg, num_envs=3, seed=7)
    single = FxTradingEnv(b, cfg, seed=7)
    vobs, _ = vec.reset(seed=7)
    sobs, _ = single.reset(seed=7)
    episodes = 0
    for a in actions:
        assert all(np.array_equal(sobs[k], vobs[k][0].numpy()) for k in sobs)
        vobs, vr, vte, vtr, vinfo = vec.step(torch.tensor([a, 0, 1]))
        sobs, sr, ste, str_, sinfo = single.step(a)
        assert sr == vr[0].item() and ste == vte[0].item() and str_ == vtr[0].item()
        assert sinfo["equity"] == vinfo["equity"][0].item()
        if ste or str_:
            episodes += 1
            assert all(np.array_equal(sobs[k], vinfo["final_obs"][k][0].numpy()) for k in sobs)
            assert sinfo["fx"]["equity"] == vinfo["final_info"]["equity"][0].item()
            assert sinfo["fx"] == {k: v[0].item() for k, v in vinfo["final_info"].items()}
            sobs, _ = single.reset()
    assert episodes >= 3


def test_same_seed_same_starts_and_trajectories_other_seed_differs(bars):
    rng = np.random.default_rng(2)
    actions = rng.integers(0, 5, size=(300, 4))
    a = run(FxVectorEnv(bars, CFG, num_envs=4, seed=3), actions)
    b = run(FxVectorEnv(bars, CFG, num_envs=4, seed=3), actions)
    c = run(FxVectorEnv(bars, CFG, num_envs=4, seed=4), actions)
    assert all(same(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0]["time"], c[0]["time"])
    starts = a[0]["time"]
    assert len(set(starts.tolist())) == 4  # each env its own stream
    # reset(seed=s) re-seeds: the same starts again
    env = FxVectorEnv(bars, CFG, num_envs=4, seed=99)
    _, info = env.reset(seed=3)
    assert torch.equal(info["time"], starts)
    _, info = env.reset(seed=[5, 3, 3, 6])  # per-env seeds: env i starts like a 1-env env seeded seed[i]
    assert info["time"][1] == info["time"][2] == starts[0]
    _, single = FxVectorEnv(bars, CFG, num_envs=1).reset(seed=5)
    assert info["time"][0] == single["time"][0]


def test_state_dict_round_trip_resumes_identically(bars):
    rng = np.random.default_rng(3)
    actions = rng.integers(0, 5, size=(500, 2))
    env = FxVectorEnv(bars, dataclasses.replace(CFG, latency_bars=2, w_differential_sharpe=0.1), num_envs=2, seed=1)
    run(env, actions[:170])
    buf = io.BytesIO()
    torch.save(env.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    tail_a = [env.step(torch.as_tensor(a)) for a in actions[170:]]
    fresh = FxVectorEnv(bars, dataclasses.replace(CFG, latency_bars=2, w_differential_sharpe=0.1), num_envs=2, seed=5)
    fresh.reset()
    fresh.load_state_dict(state)
    tail_b = [fresh.step(torch.as_tensor(a)) for a in actions[170:]]
    for x, y in zip(tail_a, tail_b):
        assert same(x[0], y[0]) and all(torch.equal(x[i], y[i]) for i in (1, 2, 3))
        assert same(x[4], y[4])
    with pytest.raises(ValueError, match="3 envs"):
        FxVectorEnv(bars, CFG, num_envs=3).load_state_dict(state)


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("mode", ["discrete", "continuous"])
def test_summed_default_reward_equals_net_equity_change(bars, mode, path, tmp_path):
    cfg = path_cfg(dataclasses.replace(CFG, action_mode=mode, episode_bars=1500), path, tmp_path)  # crosses rollovers
    env = FxVectorEnv(with_spreads(bars) if "bid/ask" in path else bars, cfg, num_envs=4, seed=0)
    env.reset()
    rng = np.random.default_rng(4)
    total = torch.zeros(4, dtype=torch.float64)
    total32 = torch.zeros(4, dtype=torch.float64)
    checked, swaps = 0, []
    for _ in range(1520):
        a = rng.integers(0, 5, size=4) if mode == "discrete" else rng.uniform(-1.2, 1.2, size=(4, 1))
        _, r, te, tr, info = env.step(torch.as_tensor(a))
        total += info["reward64"]
        total32 += r.double()
        done = te | tr
        for i in torch.nonzero(done).flatten().tolist():
            fi = info["final_info"]
            net = cfg.reward_scale * (fi["equity"][i].item() - cfg.initial_equity) / cfg.initial_equity
            assert total[i].item() == pytest.approx(net, rel=1e-9, abs=1e-12)
            assert total32[i].item() == pytest.approx(net, rel=1e-4, abs=1e-4)
            assert fi["episode_return"][i].item() == pytest.approx(net, rel=1e-9, abs=1e-12)
            assert fi["costs"][i].item() > 0
            swaps.append(fi["swap"][i].item())
            checked += 1
        total[done] = 0.0
        total32[done] = 0.0
    assert checked >= 4 and sum(x != 0.0 for x in swaps) >= 2  # episodes that held across a rollover


def test_check_env_passes_on_single_env(bars):
    from gymnasium.utils.env_checker import check_env

    for mode in ("discrete", "continuous"):
        env = FxTradingEnv(bars, dataclasses.replace(CFG, action_mode=mode), seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no checker warning either
            check_env(env, skip_render_check=True)


def test_gym_make_and_make_vec(bars):
    frame = bars_to_frame(bars)
    kw = {f.name: getattr(CFG, f.name) for f in dataclasses.fields(CFG) if f.name != "data"}
    kw.update(train_frac=0.8, val_frac=0.1, test_frac=0.1)
    env = gym.make(envs.ENV_ID, data=frame, seed=2, **kw)
    obs, _ = env.reset(seed=2)
    assert set(obs) == {"high_freq", "medium_freq", "low_freq", "portfolio"}
    assert obs["high_freq"].shape == (32, 9) and obs["high_freq"].dtype == np.float32
    obs, r, te, tr, info = env.step(env.action_space.sample())
    assert isinstance(r, float) and "reward/pnl" in info
    vec = gym.make_vec(envs.ENV_ID, num_envs=5, vectorization_mode="vector_entry_point", data=bars, seed=2, **kw)
    assert isinstance(vec.unwrapped, FxVectorEnv) and vec.num_envs == 5
    obs, info = vec.reset(seed=2)
    assert obs["portfolio"].shape == (5, 4) and obs["low_freq"].dtype == torch.float32
    obs, r, te, tr, info = vec.step(torch.zeros(5, dtype=torch.int64))
    assert r.shape == (5,) and r.dtype == torch.float32 and te.dtype == torch.bool
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    with pytest.raises(TypeError, match="spread_pip"):
        gym.make(envs.ENV_ID, data=bars, spread_pip=1.0)


def test_factories_split_with_embargo_fit_norm_on_train_and_backtest_deterministically():
    cfg = dataclasses.replace(CFG, synthetic_n_bars=6000, synthetic_seed=1)
    market = envs.load_market(cfg)
    assert market is envs.load_market(cfg)  # cached
    (tr_lo, tr_hi), (va_lo, va_hi), (te_lo, te_hi) = (market.ranges[k] for k in ("train", "val", "test"))
    # the windows fill once, for the whole series; splits are then separated by the embargo only
    assert tr_lo == market.valid_from and va_lo - tr_hi == te_lo - va_hi == cfg.episode_bars == cfg.embargo
    assert te_hi == len(market.bars) and market.valid_from < 600
    train_env = envs.make_fx_vector_env(cfg, num_envs=2, seed=0)
    val_env = envs.make_fx_eval_env(cfg, split="val")
    assert (train_env.t_min, train_env.t_end) == (tr_lo, tr_hi) and (val_env.t_min, val_env.t_end) == (va_lo, va_hi)
    for key in ("high_freq", "low_freq"):
        assert torch.equal(val_env.norm.mean[key], train_env.norm.mean[key])
        val_fit = FeatureNorm.fit(market.bars, cfg, va_lo, va_hi)
        assert not torch.allclose(val_env.norm.mean[key], val_fit.mean[key])

    def backtest() -> tuple[list[float], int]:
        env = envs.make_fx_eval_env(cfg, split="val")
        obs, info = env.reset()
        assert info["time"].item() == market.bars.time[va_lo].astype(np.int64)
        equities, n = [], 0
        while True:
            a = (obs["high_freq"][:, -1, 0] > 0).to(torch.int64) * 4  # a fixed rule on the observation
            obs, r, te, tr, info = env.step(a)
            n += 1
            if te.item() or tr.item():
                return equities + [info["final_info"]["equity"].item()], n
            equities.append(info["equity"].item())

    (eq1, n1), (eq2, n2) = backtest(), backtest()
    assert eq1 == eq2 and n1 == n2 == va_hi - 1 - va_lo


def test_a_file_too_short_for_the_settings_fails_naming_what_it_needs(tmp_path):
    from envs.fx.data import save_bars

    path = tmp_path / "short.csv"
    save_bars(generate("ou", 900, seed=1), path)
    with pytest.raises(ValueError) as err:
        envs.load_market(dataclasses.replace(CFG, data=str(path), episode_bars=500))
    msg = str(err.value)
    assert "short.csv" in msg and "900 bars" in msg and "--fx.episode-bars" in msg and "--fx.embargo-bars" in msg
    assert "need at least" in msg and len(msg.splitlines()) == 1


def test_reset_start_by_timestamp_and_bad_start_errors(bars):
    env = FxVectorEnv(bars, CFG, num_envs=2)
    ts = bars.time[1500]
    _, info = env.reset(options={"start": ts})
    assert info["time"].tolist() == [ts.astype(np.int64)] * 2
    with pytest.raises(ValueError, match="startable range"):
        env.reset(options={"start": 3})
    with pytest.raises(ValueError, match="not understood"):
        env.reset(options={"begin": 3})
    with pytest.raises(ValueError, match="--fx.spread-pips"):
        FxVectorEnv(bars, dataclasses.replace(CFG, spread_pips=-1.0))


def test_price_obs_mode_is_a_raw_close_window(bars):
    cfg = dataclasses.replace(CFG, obs_mode="price", window_high=24, window_medium=1, window_low=1)
    env = FxVectorEnv(bars, cfg, num_envs=1)
    obs, info = env.reset(options={"start": 2000})
    hf = obs["high_freq"][0].double().numpy()
    assert hf.shape == (24, 2)
    assert np.allclose(hf[:, 0], bars.close[1977:2001], rtol=1e-7)
    assert np.allclose(hf[:, 1], np.diff(bars.close[1976:2001]), atol=1e-7)


def test_single_env_state_dict_round_trip(bars):
    rng = np.random.default_rng(6)
    actions = rng.integers(0, 5, size=300)

    def play(env: FxTradingEnv, acts, begin_with_reset: bool) -> list:
        out = [env.reset()[0]] if begin_with_reset else []  # hands out the pending next episode
        for a in acts:
            obs, r, te, tr, info = env.step(a)
            out.append((obs, r, te, tr, info["equity"]))
            if te or tr:
                out.append(env.reset()[0])
        return out

    for cut in (50, 120):  # mid-episode, and exactly at an episode end (next episode pending)
        env = FxTradingEnv(bars, CFG, seed=4)
        env.reset(seed=4)
        for a in actions[:cut]:
            *_, te, tr, _ = env.step(a)
        assert (te or tr) == (cut == 120)
        state = env.state_dict()
        assert state["has_next_episode"] == (cut == 120)
        other = FxTradingEnv(bars, CFG, seed=0)
        other.load_state_dict(state)
        a, b = play(env, actions[cut:], cut == 120), play(other, actions[cut:], cut == 120)
        assert len(a) == len(b)
        for x, y in zip(a, b):
            if isinstance(x, dict):
                assert all(np.array_equal(x[k], y[k]) for k in x)
            else:
                assert all(np.array_equal(x[0][k], y[0][k]) for k in x[0]) and x[1:] == y[1:]


def test_portfolio_features_stay_in_their_training_range_in_a_long_backtest(bars):
    """A backtest is one long episode; the policy must not see portfolio values that a
    ``episode_bars``-long training episode never produces (time held is capped)."""
    from envs.fx.vector import PORTFOLIO_FEATURES

    long_run = FxVectorEnv(bars, CFG, num_envs=1, episode_bars=2000, start_mode="first")
    obs, _ = long_run.reset()
    held = []
    for _ in range(600):  # hold the top level for 600 bars, 5x a training episode
        obs, *_ = long_run.step(torch.tensor([4]))
        held.append(float(obs["portfolio"][0, PORTFOLIO_FEATURES.index("time_in_position")]))
    assert max(held) == pytest.approx(1.0) and held[CFG.episode_bars - 1] == pytest.approx(1.0)
    assert held[CFG.episode_bars // 2] < 1.0
    assert obs["portfolio"].shape == (1, len(PORTFOLIO_FEATURES))
    assert float(obs["portfolio"][0, PORTFOLIO_FEATURES.index("position")]) == pytest.approx(1.0)


def test_the_differential_sharpe_is_computed_only_when_rewarded(bars: Bars) -> None:
    """With its weight 0 the DSR (stateful, ~8 % of a step) is neither computed nor reported; with a weight it is,
    and the other components are the same numbers either way."""
    actions = np.random.default_rng(3).integers(0, 5, size=(60, 4))
    off_env = FxVectorEnv(bars, CFG, num_envs=4, seed=2)
    off = run(off_env, actions, seed=2)
    assert float(off_env.rewards.dsr_a.abs().sum() + off_env.rewards.dsr_b.abs().sum()) == 0.0  # no moments kept
    on_env = FxVectorEnv(bars, dataclasses.replace(CFG, w_differential_sharpe=0.5), num_envs=4, seed=2)
    on = run(on_env, actions, seed=2)
    assert all("reward_raw/differential_sharpe" not in rec for rec in off[1:])
    assert all("reward_raw/differential_sharpe" in rec for rec in on[1:])
    assert float(on_env.rewards.dsr_b.abs().sum()) > 0  # its moments moved
    for a, b in zip(off[1:], on[1:]):
        assert torch.equal(a["reward_raw/pnl"], b["reward_raw/pnl"]) and torch.equal(a["equity"], b["equity"])
        assert torch.equal(a["reward/differential_sharpe"], torch.zeros(4, dtype=torch.float64))
    assert any(not torch.equal(b["reward/differential_sharpe"], torch.zeros(4, dtype=torch.float64)) for b in on[2:])
