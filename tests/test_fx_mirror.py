"""Mirror augmentation: training episodes on the real or the mirrored series, nothing else changes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from envs import fx as envs
from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars
from envs.fx.features import FeatureNorm
from envs.fx.synthetic import generate
from envs.fx.vector import FxVectorEnv

torch.set_num_threads(1)
CFG = FxEnvConfig(episode_bars=25, window_high=32, window_medium=8, window_low=8, agg_medium=5, agg_low=20,
                  ma_window=30, ma_window_long=100, mirror_augment=True,
                  swap_long=-0.0004, swap_short=0.0001)  # big, unequal swaps so the swap side matters


@pytest.fixture(scope="module")
def bars() -> Bars:
    return generate("randomwalk", 3000, seed=4, bar_seconds=900, skip_weekends=True)


def test_mirrored_bars_flip_every_log_move_and_keep_the_level(bars):
    m = bars.mirrored()
    assert m.open[0] == bars.open[0]
    np.testing.assert_allclose(np.diff(np.log(m.close)), -np.diff(np.log(bars.close)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.log(m.high / m.low), np.log(bars.high / bars.low), atol=1e-12)
    assert np.all(m.high >= np.maximum(m.open, m.close)) and np.all(m.low <= np.minimum(m.open, m.close))
    np.testing.assert_allclose(m.mirrored().close, bars.close, rtol=1e-12)
    # a bar of the mirror depends on that bar and the first open only: no future bar
    cut = 1500
    future = Bars(bars.time, bars.open.copy(), bars.high.copy(), bars.low.copy(), bars.close.copy(), bars.volume)
    future.close[cut + 1:] *= 1.01
    fm = future.mirrored()
    assert np.array_equal(fm.close[:cut + 1], m.close[:cut + 1]) and not np.array_equal(fm.close, m.close)


def test_norm_fitted_on_both_series_is_symmetric(bars):
    norm = FeatureNorm.fit(bars, CFG)
    plain = FeatureNorm.fit(bars, dataclasses.replace(CFG, mirror_augment=False))
    for key in norm.mean:
        # log return, body and ma gap change sign in the mirror: their mean over both is zero
        for j in (0, 2, 4):
            assert abs(float(norm.mean[key][j])) < 1e-9 * float(norm.std[key][j])
        assert abs(float(plain.mean[key][4])) > 1e-3 * float(plain.std[key][4])  # the real series alone is not
        # range and volatility are the same in both series
        torch.testing.assert_close(norm.mean[key][[1, 3]], plain.mean[key][[1, 3]], rtol=1e-6, atol=0)


def _play(env: FxVectorEnv, actions: np.ndarray) -> list[dict]:
    """Episodes of a 1-env env under fixed actions: start time, variant, actions, rewards, obs."""
    obs, _ = env.reset()
    episodes, cur = [], {"actions": [], "rewards": [], "obs": [], "swap": 0.0}
    for a in actions:
        obs, r, _, _, info = env.step(torch.tensor([a]))
        cur["actions"].append(int(a))
        cur["rewards"].append(float(r[0]))
        cur["swap"] += float(info["reward/swap"][0])
        done = "_final_obs" in info and bool(info["_final_obs"][0])
        cur["obs"].append({k: v.clone() for k, v in (info["final_obs"] if done else obs).items()})
        if done:
            fi = info["final_info"]
            cur["start_time"] = int(fi["start_time"][0])
            cur["mirrored"] = bool(fi["mirrored"][0])
            episodes.append(cur)
            cur = {"actions": [], "rewards": [], "obs": [], "swap": 0.0}
    return episodes


def test_each_episode_is_a_plain_episode_on_the_real_or_the_mirrored_bars(bars):
    norm = FeatureNorm.fit(bars, CFG)
    env = FxVectorEnv(bars, CFG, num_envs=1, seed=3, norm=norm)
    assert env.mirror
    actions = np.random.default_rng(0).integers(0, len(CFG.position_levels), size=CFG.episode_bars * 24)
    episodes = _play(env, actions)
    flags = [e["mirrored"] for e in episodes]
    assert len(episodes) == 24 and 6 <= sum(flags) <= 18, flags  # a fair coin per episode

    plain_cfg = dataclasses.replace(CFG, mirror_augment=False)
    inverted_pair = dataclasses.replace(plain_cfg, swap_long=CFG.swap_short, swap_short=CFG.swap_long)
    replay = {False: FxVectorEnv(bars, plain_cfg, num_envs=1, norm=norm),
              True: FxVectorEnv(bars.mirrored(), inverted_pair, num_envs=1, norm=norm)}
    times = bars.time.astype("datetime64[ns]").astype(np.int64)
    for ep in episodes:
        other = replay[ep["mirrored"]]
        other.reset(options={"start": int(np.searchsorted(times, ep["start_time"]))})
        for a, r, o in zip(ep["actions"], ep["rewards"], ep["obs"]):
            obs, r2, _, _, info = other.step(torch.tensor([a]))
            if "_final_obs" in info and bool(info["_final_obs"][0]):
                obs = info["final_obs"]
            assert float(r2[0]) == r
            for k in o:
                assert torch.equal(o[k], obs[k]), k
    # swap accrued in both kinds of episode, so the swapped rates were exercised
    assert any(ep["swap"] != 0 for ep in episodes if ep["mirrored"])
    assert any(ep["swap"] != 0 for ep in episodes if not ep["mirrored"])


def test_only_training_envs_mirror_and_state_round_trips(bars):
    market_cfg = dataclasses.replace(CFG, synthetic_kind="randomwalk", synthetic_n_bars=4000, synthetic_seed=2)
    assert envs.make_fx_vector_env(market_cfg, 2, seed=0).mirror
    assert not envs.make_fx_eval_env(market_cfg, split="val").mirror
    assert not envs.make_fx_eval_env(market_cfg, split="train").mirror  # backtests never mirror
    assert not envs.make_fx_vector_env(market_cfg, 2, seed=0, split="val").mirror

    norm = FeatureNorm.fit(bars, CFG)
    a = FxVectorEnv(bars, CFG, num_envs=4, seed=1, norm=norm)
    a.reset()
    rng = np.random.default_rng(1)
    for _ in range(40):
        a.step(torch.as_tensor(rng.integers(0, 5, 4)))
    state = a.state_dict()
    assert state["variant"].any()
    b = FxVectorEnv(bars, CFG, num_envs=4, seed=99, norm=norm)
    b.reset()
    b.load_state_dict(state)
    for _ in range(60):
        act = torch.as_tensor(rng.integers(0, 5, 4))
        oa, ra, *_ = a.step(act)
        ob, rb, *_ = b.step(act)
        assert torch.equal(ra, rb) and all(torch.equal(oa[k], ob[k]) for k in oa)
