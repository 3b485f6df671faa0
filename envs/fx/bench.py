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

``fx_make_vec`` is what a gymnasium user gets: ``gym.make_vec("FxAI/FxTrading-v0", num_envs=N,
vectorization_mode="vector_entry_point")`` (the default preset's env: 15-minute bars, the full
observation) stepped with numpy actions; ``fx_single`` is ``gym.make("FxAI/FxTrading-v0")`` (one
env, numpy observations, its gymnasium wrappers included) against forex-v0 at N = 1. Speeds are
env steps per CPU second of the stepping loop (one torch thread); each row also gives the peak
resident memory of the process while it ran (``peak_rss_mb``).

``python -m engine.bench env`` prints the table; ``run_env_bench`` returns the figures.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
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
    clock = time.perf_counter if env.device.type == "cuda" else time.process_time
    sync()
    t0, done = clock(), 0
    while done < steps:
        env.step(torch.randint(0, n_actions, (num_envs,), generator=gen, device=device))
        done += 1
        if done % 20 == 0 and clock() - t0 > max_seconds:
            break
    sync()
    return done * num_envs / (clock() - t0)


def _bench_make_vec(num_envs: int, steps: int, seed: int, max_seconds: float) -> float:
    """The default preset's env through ``gym.make_vec(..., "vector_entry_point")``, numpy actions."""
    import gymnasium as gym

    from envs.fx.gym_api import ENV_ID

    env = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", seed=seed)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    actions = [rng.integers(0, env.single_action_space.n, num_envs) for _ in range(64)]
    for a in actions[:5]:
        env.step(a)
    t0, done = time.process_time(), 0
    while done < steps:
        env.step(actions[done % 64])
        done += 1
        if done % 20 == 0 and time.process_time() - t0 > max_seconds:
            break
    return done * num_envs / (time.process_time() - t0)


def _bench_single(steps: int, seed: int, max_seconds: float) -> float:
    """``gym.make("FxAI/FxTrading-v0")`` (the default preset's env, gymnasium's wrappers on), random actions."""
    import gymnasium as gym

    from envs.fx.gym_api import ENV_ID

    env = gym.make(ENV_ID, seed=seed)
    env.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(0, env.action_space.n, 4096).tolist()
    t0, done = time.process_time(), 0
    while done < steps:
        _, _, te, tr, _ = env.step(actions[done % 4096])
        if te or tr:
            env.reset()
        done += 1
        if done % 256 == 0 and time.process_time() - t0 > max_seconds:
            break
    return done / (time.process_time() - t0)


def peak_rss_reset() -> None:
    """Reset the process's peak resident memory (Linux ``/proc/self/clear_refs``), so each row has its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """Peak resident memory since :func:`peak_rss_reset` (``VmHWM``), MiB (the process's peak elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    t0, done = time.process_time(), 0
    while done < steps:
        actions = rng.integers(0, 2, num_envs)
        for env, a in zip(envs, actions):
            _, _, terminated, truncated, _ = env.step(int(a))
            if terminated or truncated:
                env.reset()
        done += 1
        if time.process_time() - t0 > max_seconds:
            break
    return done * num_envs / (time.process_time() - t0)


def run_env_bench(num_envs_list: tuple[int, ...] = (1, 64, 1024), steps: int = 2_000, seed: int = 0,
                  device: str = "cpu", n_bars: int = 20_000, max_seconds: float = 4.0,
                  verbose: bool = True, rounds: int = 1) -> dict[str, Any]:
    """Env-steps per second of FxVectorEnv (price and full obs) and gym-anytrading forex-v0 at each N.

    Each measurement runs ``steps`` vector steps or ``max_seconds``, whichever comes first. With ``rounds`` > 1
    the columns are measured one after the other, round after round, and each figure is the median over the
    rounds; a ratio is the median of the rounds' ratios (the same round's contenders saw the same machine)."""
    bars = generate("ou", n_bars, seed)
    result: dict[str, Any] = {"num_envs": list(num_envs_list), "device": str(device), "n_bars": n_bars,
                              "fx_price": {}, "fx_full": {}, "fx_make_vec": {}, "anytrading": {}, "ratio": {},
                              "ratio_make_vec": {}, "fx_single": None, "ratio_single": None, "peak_rss_mb": {},
                              "anytrading_error": None, "threads": torch.get_num_threads(), "rounds": rounds,
                              "note": "env-steps per CPU second; FxVectorEnv price obs = 24x(close, diff) like forex-v0"}
    try:
        import gym_anytrading  # noqa: F401
    except ImportError as exc:
        result["anytrading_error"] = (f"gym-anytrading not installed ({exc}); "
                                      "pip install 'fxai[bench]' to add the comparison column")
    samples: dict[tuple[str, Any], list[float]] = {}

    def row(name: str, key: Any, fn: Any) -> None:
        peak_rss_reset()
        samples.setdefault((name, key), []).append(fn())
        label = f"{name}@{key}" if key is not None else name
        result["peak_rss_mb"][label] = max(result["peak_rss_mb"].get(label, 0.0), round(peak_rss_mb(), 1))

    single_steps = max(steps * 25, 20_000)
    for _ in range(rounds):
        for n in num_envs_list:
            row("fx_price", n, lambda: _bench_fx(bars, PRICE_CFG, n, steps, seed, device, max_seconds))
            row("fx_full", n, lambda: _bench_fx(bars, FULL_CFG, n, steps, seed, device, max_seconds))
            if device == "cpu":
                row("fx_make_vec", n, lambda: _bench_make_vec(n, steps, seed, max_seconds))
            if result["anytrading_error"] is None:
                row("anytrading", n, lambda: _bench_anytrading(bars, n, single_steps if n == 1 else steps, seed,
                                                               max_seconds))
        if device == "cpu":
            row("fx_single", None, lambda: _bench_single(single_steps, seed, max_seconds))

    def ratio(a: tuple[str, Any], b: tuple[str, Any]) -> float:
        return statistics.median(x / y for x, y in zip(samples[a], samples[b]))

    for (name, key), values in samples.items():
        if key is None:
            result[name] = statistics.median(values)
        else:
            result[name][key] = statistics.median(values)
    if result["anytrading_error"] is None:
        for n in num_envs_list:
            result["ratio"][n] = ratio(("fx_price", n), ("anytrading", n))
            if n in result["fx_make_vec"]:
                result["ratio_make_vec"][n] = ratio(("fx_make_vec", n), ("anytrading", n))
        if result["fx_single"] is not None:
            result["ratio_single"] = ratio(("fx_single", None), ("anytrading", 1))
    if verbose:
        print(format_table(result))
    return result


def format_table(result: dict[str, Any]) -> str:
    lines = [f"env-steps per CPU second on {result['device']} ({result['n_bars']} synthetic 1-min bars for the price/full "
             f"columns; make_vec = the default preset's env through gym.make_vec, numpy actions; random actions)",
             f"{'N':>6} | {'FxVectorEnv price':>17} | {'FxVectorEnv full':>16} | {'make_vec full':>13} | "
             f"{'anytrading forex-v0':>19} | {'ratio (price)':>13} | {'ratio (make_vec)':>16}"]
    for n in result["num_envs"]:
        any_ = result["anytrading"].get(n)
        mv = result["fx_make_vec"].get(n)
        any_txt = f"{any_:,.0f}" if any_ else "n/a"
        ratio_txt = f"{result['ratio'][n]:.2f}x" if any_ else "n/a"
        mv_txt = f"{mv:,.0f}" if mv else "n/a"
        mvr = result["ratio_make_vec"].get(n)
        mvr_txt = f"{mvr:.2f}x" if mvr else "n/a"
        lines.append(f"{n:>6} | {result['fx_price'][n]:>17,.0f} | {result['fx_full'][n]:>16,.0f} | {mv_txt:>13} | "
                     f"{any_txt:>19} | {ratio_txt:>13} | {mvr_txt:>16}")
    if result.get("fx_single"):
        ratio = f" = {result['ratio_single']:.2f}x forex-v0" if result.get("ratio_single") else ""
        lines.append(f"single env gym.make(FxAI/FxTrading-v0): {result['fx_single']:,.0f} steps/s{ratio}")
    lines.append("peak RSS MiB per row: " + ", ".join(f"{k} {v:.0f}" for k, v in result["peak_rss_mb"].items()))
    if result["anytrading_error"]:
        lines.append(f"anytrading column skipped: {result['anytrading_error']}")
    return "\n".join(lines)
