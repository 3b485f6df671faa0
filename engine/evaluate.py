"""Deterministic evaluation of a policy over whole episodes of a torch vector env.

This is how the engine evaluates a plain gymnasium env; an env family evaluates its own
way (:meth:`engine.registry.EnvFamily.evaluate`: the FX env backtests its validation split).
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
