"""Deterministic evaluation of a policy: episodes on a gymnasium env, or a pass over an FX split.

FX evaluation runs the deterministic policy once over the whole validation split and
reports the backtest metrics of :mod:`engine.report` (``sharpe``, ``total_return``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch


@torch.no_grad()
def evaluate_episodes(policy_fn: Callable[[Any], torch.Tensor], env: Any, num_episodes: int,
                      seed: int = 10_000, max_steps: int = 1_000_000) -> dict[str, float]:
    """Mean/std return and mean length over ``num_episodes`` finished episodes (env: torch vector protocol)."""
    obs, _ = env.reset(seed=seed)
    n = env.num_envs
    ret = torch.zeros(n, dtype=torch.float64)
    length = torch.zeros(n, dtype=torch.int64)
    returns: list[float] = []
    lengths: list[int] = []
    for _ in range(max_steps):
        obs, reward, term, trunc, _info = env.step(policy_fn(obs))
        ret += reward.double().cpu()
        length += 1
        done = (term | trunc).cpu()
        for i in done.nonzero().flatten().tolist():
            returns.append(float(ret[i]))
            lengths.append(int(length[i]))
        ret[done] = 0.0
        length[done] = 0
        if len(returns) >= num_episodes:
            break
    returns, lengths = returns[:num_episodes], lengths[:num_episodes]
    return {
        "return_mean": float(np.mean(returns)) if returns else float("nan"),
        "return_std": float(np.std(returns)) if returns else float("nan"),
        "length_mean": float(np.mean(lengths)) if lengths else float("nan"),
        "episodes": float(len(returns)),
    }


def evaluate_policy(policy_fn: Callable[[Any], torch.Tensor], env: Any, cfg: Any,
                    num_episodes: int) -> dict[str, float]:
    if cfg.env == "fx":
        from engine.backtest import run_backtest
        from engine.report import compute_metrics, infer_periods_per_year

        traj = run_backtest(lambda obs, info: policy_fn(obs), env)
        metrics = compute_metrics(traj, infer_periods_per_year(traj.curve_time))
        metrics["return_mean"] = float(np.sum(traj.reward))
        return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.floating, np.integer))}
    return evaluate_episodes(policy_fn, env, num_episodes)
