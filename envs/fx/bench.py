"""Env-throughput benchmark: FxVectorEnv against gym-anytrading's ``forex-v0`` on the same bars.

Both envs get the same synthetic 1-minute bars and random actions. The observation is matched
to gym-anytrading's (a 24-bar window of close and close difference): FxVectorEnv runs in its
``price`` observation mode with ``window_high=24`` and 1-aggregate medium/low windows (their
gather is two extra rows of 2 numbers; the 8-number portfolio vector is always there). The
``fx_full`` column is the full default observation (64/16/16 windows of 9 features) for
reference. gym-anytrading is single-env, so N of its envs are stepped in a plain python loop
(unwrapped ``ForexEnv`` objects, no checker wrappers, reset when an episode ends). Its costs
are far simpler (a flat fee on closing, no spread/slippage/margin/swap), so the ratio is a
throughput comparison, not a like-for-like simulator comparison.

``python -m engine.bench env`` prints the table; ``run_env_bench`` returns the figures.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars
from envs.fx.synthetic import generate
from envs.fx.vector import FxVectorEnv

PRICE_CFG = FxEnvConfig(obs_mode="price", window_high=24, window_medium=1, window_low=1, agg_medium=1, agg_low=1,
                        ma_window=1, ma_window_long=1, vol_window=16, episode_bars=2_000)
FULL_CFG = FxEnvConfig(episode_bars=2_000)


def _bench_fx(bars: Bars, cfg: FxEnvConfig, num_envs: int, steps: int, seed: int, device: str,
              max_seconds: float) -> float:
    env = FxVectorEnv(bars, cfg, num_envs=num_envs, seed=seed, device=device)
    env.reset(seed=seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    n_actions = len(cfg.position_levels)
    for _ in range(5):  # warm-up
        env.step(torch.randint(0, n_actions, (num_envs,), generator=gen, device=device))
    sync = torch.cuda.synchronize if env.device.type == "cuda" else (lambda: None)
    sync()
    t0, done = time.perf_counter(), 0
    while done < steps:
        env.step(torch.randint(0, n_actions, (num_envs,), generator=gen, device=device))
        done += 1
        if done % 20 == 0 and time.perf_counter() - t0 > max_seconds:
            break
    sync()
    return done * num_envs / (time.perf_counter() - t0)


def _bench_anytrading(bars: Bars, num_envs: int, steps: int, seed: int, max_seconds: float) -> float:
    import pandas as pd
    from gym_anytrading.envs import ForexEnv

    df = pd.DataFrame({"Open": bars.open, "High": bars.high, "Low": bars.low, "Close": bars.close,
                       "Volume": bars.volume})
    episode = PRICE_CFG.episode_bars
    rng = np.random.default_rng(seed)
    envs = []
    for i in range(num_envs):
        lo = int(rng.integers(24, len(df) - episode - 1))
        env = ForexEnv(df=df, window_size=24, frame_bound=(lo, lo + episode))
        env.reset(seed=seed + i)
        envs.append(env)
    t0, done = time.perf_counter(), 0
    while done < steps:
        actions = rng.integers(0, 2, num_envs)
        for env, a in zip(envs, actions):
            _, _, terminated, truncated, _ = env.step(int(a))
            if terminated or truncated:
                env.reset()
        done += 1
        if time.perf_counter() - t0 > max_seconds:
            break
    return done * num_envs / (time.perf_counter() - t0)


def run_env_bench(num_envs_list: tuple[int, ...] = (1, 64, 1024), steps: int = 2_000, seed: int = 0,
                  device: str = "cpu", n_bars: int = 20_000, max_seconds: float = 4.0,
                  verbose: bool = True) -> dict[str, Any]:
    """Env-steps per second of FxVectorEnv (price and full obs) and gym-anytrading forex-v0 at each N.

    Each measurement runs ``steps`` vector steps or ``max_seconds``, whichever comes first."""
    bars = generate("ou", n_bars, seed)
    result: dict[str, Any] = {"num_envs": list(num_envs_list), "device": str(device), "n_bars": n_bars,
                              "fx_price": {}, "fx_full": {}, "anytrading": {}, "ratio": {},
                              "anytrading_error": None,
                              "note": "env-steps/s; FxVectorEnv price obs = 24x(close, diff) like forex-v0"}
    try:
        import gym_anytrading  # noqa: F401
    except ImportError as exc:
        result["anytrading_error"] = (f"gym-anytrading not installed ({exc}); "
                                      "pip install 'fxai[bench]' to add the comparison column")
    for n in num_envs_list:
        result["fx_price"][n] = _bench_fx(bars, PRICE_CFG, n, steps, seed, device, max_seconds)
        result["fx_full"][n] = _bench_fx(bars, FULL_CFG, n, steps, seed, device, max_seconds)
        if result["anytrading_error"] is None:
            result["anytrading"][n] = _bench_anytrading(bars, n, steps, seed, max_seconds)
            result["ratio"][n] = result["fx_price"][n] / result["anytrading"][n]
    if verbose:
        print(format_table(result))
    return result


def format_table(result: dict[str, Any]) -> str:
    lines = [f"env-steps/s on {result['device']} ({result['n_bars']} synthetic 1-min bars, random actions)",
             f"{'N':>6} | {'FxVectorEnv price':>17} | {'FxVectorEnv full':>16} | {'anytrading forex-v0':>19} | "
             f"{'ratio (price)':>13}"]
    for n in result["num_envs"]:
        any_ = result["anytrading"].get(n)
        any_txt = f"{any_:,.0f}" if any_ else "n/a"
        ratio_txt = f"{result['ratio'][n]:.2f}x" if any_ else "n/a"
        lines.append(f"{n:>6} | {result['fx_price'][n]:>17,.0f} | {result['fx_full'][n]:>16,.0f} | "
                     f"{any_txt:>19} | {ratio_txt:>13}")
    if result["anytrading_error"]:
        lines.append(f"anytrading column skipped: {result['anytrading_error']}")
    return "\n".join(lines)
