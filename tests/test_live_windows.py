"""The numpy feature function of live agents and exported policies: the newest bar's windows from the
last bars alone equal the whole series' (weekends, missing bars, tick volume, price mode), the
windows are full exactly where the env's first tradable bar is, and normalised they are the env's
observation to the last bit; one account stepped bar by bar is the env's account to the last bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from configs import get_preset
from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars
from envs.fx.market import first_valid_bar, make_fx_eval_env
from envs.fx.sim_account import SimAccount
from envs.fx.synthetic import generate
from envs.fx.windows import (history_bars, normalise_windows, observation_space, raw_windows, tail_bars,
                             windows_ready)

SMALL = FxEnvConfig(window_high=8, window_medium=4, window_low=3, agg_medium=4, agg_low=24, ma_window=10,
                    ma_window_long=30, vol_window=5, episode_bars=64)
CASES = {"small": (SMALL, 3600), "volume": (dataclasses.replace(SMALL, volume_feature=True), 3600),
         "price": (dataclasses.replace(SMALL, obs_mode="price"), 3600), "fx-m15": (get_preset("fx-m15").fx, 900)}


def with_holes(bars: Bars, frac: float, seed: int) -> Bars:
    """``bars`` with a random ``frac`` of them missing (holidays, feed gaps)."""
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(bars), int(len(bars) * (1 - frac)), replace=False))
    return Bars(bars.time[keep], bars.open[keep], bars.high[keep], bars.low[keep], bars.close[keep],
                bars.volume[keep], "holes")


@pytest.mark.parametrize("case", list(CASES))
def test_the_newest_windows_from_the_last_bars_equal_the_whole_series_and_are_ready_where_the_env_starts(case):
    cfg, seconds = CASES[case]
    bar_ns = seconds * 10**9
    n_bars = 7000 if case == "fx-m15" else 2000  # fx-m15 needs 2,400 bars of warm-up (its long moving average)
    for frac, seed in ((0.0, 1), (0.4, 2)):
        bars = with_holes(generate("ou", n_bars, seed=seed, bar_seconds=seconds, weekend_gap_hours=3.0), frac, seed)
        full = raw_windows(bars, cfg, bar_ns, at=np.arange(len(bars)))
        ready = windows_ready(full)
        first = first_valid_bar(bars, cfg, bar_ns)
        assert first == int(np.argmax(ready)) and ready[first:].all() and not ready[:first].any()
        assert first <= history_bars(cfg) == max(tail_bars(cfg).values())
        for t in np.random.default_rng(seed).choice(len(bars), 60, replace=False):
            newest = raw_windows(bars.slice(0, t + 1), cfg, bar_ns)  # its own tails, not the whole history
            for key, table in full.items():
                a, b = table[t], newest[key][0]
                np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
                np.testing.assert_allclose(b[np.isfinite(b)], a[np.isfinite(a)], rtol=1e-9, atol=1e-12)


def test_normalised_windows_are_the_envs_observation_to_the_last_bit_and_the_space_is_the_envs() -> None:
    cfg = dataclasses.replace(SMALL, volume_feature=True)
    bars = generate("ou", 2500, seed=5, bar_seconds=3600, weekend_gap_hours=3.0)
    env = make_fx_eval_env(cfg, split="test", data=bars)
    assert repr(observation_space(cfg)) == repr(env.single_observation_space)
    obs, _ = env.reset()
    steps = []
    for _ in range(200):
        steps.append((int(env.t[0]), {k: v[0].clone() for k, v in obs.items()}))
        obs, *_ = env.step(torch.tensor([1]))
    at = np.array([t for t, _ in steps])
    ours = normalise_windows(raw_windows(bars, cfg, env.bar_ns, at=at), env.norm, cfg)
    for i, (_, o) in enumerate(steps):
        for key in ("high_freq", "medium_freq", "low_freq"):
            assert torch.equal(torch.from_numpy(ours[key][i]), o[key]), (i, key)


@pytest.mark.parametrize("setup", ["stop-outs", "latency-3", "usd-account-on-usdjpy", "fixed-rate-gbp", "bid-ask"])
def test_one_account_stepped_bar_by_bar_is_the_envs_account_to_the_last_bit(setup: str) -> None:
    cfg = dataclasses.replace(SMALL, position_levels=(-1.0, -0.5, 0.0, 0.5, 1.0))
    bars = generate("ou", 1500, seed=7, bar_seconds=3600, weekend_gap_hours=8.0, annual_vol=0.3)
    if setup == "stop-outs":  # thin margin: the gaps and wicks stop it out again and again
        cfg = dataclasses.replace(cfg, max_leverage=200, initial_margin=0.005, maintenance_margin=0.004,
                                  initial_equity=600.0)
    elif setup == "latency-3":
        cfg = dataclasses.replace(cfg, latency_bars=3)
    elif setup == "usd-account-on-usdjpy":
        cfg = dataclasses.replace(cfg, pair="USDJPY")
        bars = bars.with_prices(bars.open * 130, bars.high * 130, bars.low * 130, bars.close * 130, "mid")
    elif setup == "fixed-rate-gbp":
        cfg = dataclasses.replace(cfg, account_currency="GBP", conversion_rate=0.79)
    else:
        spread = np.abs(np.random.default_rng(1).normal(1e-4, 3e-5, (len(bars), 4)))
        bars = Bars(bars.time, bars.open, bars.high, bars.low, bars.close, bars.volume, "ba", "bidask", spread)
    env = make_fx_eval_env(cfg, split="all", data=bars)
    sim = SimAccount(cfg, env.context, env.bar_ns)
    rng = np.random.default_rng(3)
    env.reset()
    stops = 0
    for step in range(1200):
        t = int(env.t[0])
        action = int(rng.integers(0, 5))
        sim.submit(float(env.levels[action]) * cfg.max_position)
        _, _, term, trunc, info = env.step(torch.tensor([action]))
        res = sim.step(sim.bar_arrays(bars.slice(t, t + 2)))
        assert (float(info["equity"][0]), float(info["position"][0]), float(info["costs"][0]), bool(term[0])) == \
            (sim.equity, sim.position, float(res.cost[0]), bool(res.breach[0])), step
        if not bool(term[0]):  # (a stop-out resets the env's accounts at once)
            for name, value in env.accounts.state_dict().items():
                assert float(value[0]) == float(getattr(sim.accounts, name)[0]), (step, name)
        if bool(term[0]):  # the env ends the episode at a stop-out; start both afresh
            stops += 1
            env.reset(options={"start": t + 1})
            sim = SimAccount(cfg, env.context, env.bar_ns)
        elif bool(trunc[0]):
            break
    assert step > 1000
    assert (stops >= 10) == (setup == "stop-outs"), stops
