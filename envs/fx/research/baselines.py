"""Baseline policies for backtests: flat, buy-and-hold, time-series momentum and seeded random actions.

A baseline is a ``policy_fn(obs, info) -> actions`` that reads only what a trader would
know at the bar (closes already reported in ``info``); it maps a target position in
[-1, 1] to the env's action space with :func:`target_to_action`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

PolicyFn = Callable[[Any, Mapping[str, Any]], torch.Tensor]
"""``policy_fn(obs, info) -> actions`` ([1] level indices for Discrete, [1, 1] targets for Box)."""

DEFAULT_POSITION_LEVELS: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)


def scalar(x: Any) -> float:
    """A python float from the first element of a tensor, array or number."""
    if isinstance(x, torch.Tensor):
        return float(x.detach().reshape(-1)[0].item())
    return float(np.asarray(x).reshape(-1)[0])


def env_cfg_value(env: Any, name: str) -> Any:
    """``env.<name>``, else ``env.cfg.<name>``, else None."""
    value = getattr(env, name, None)
    if value is None:
        value = getattr(getattr(env, "cfg", None), name, None)
    return value


def _single_action_space(env: Any) -> gym.Space:
    space = getattr(env, "single_action_space", None) or getattr(env, "action_space", None)
    if isinstance(space, gym.spaces.MultiDiscrete) and space.nvec.size == 1:  # batched Discrete of 1 env
        space = gym.spaces.Discrete(int(space.nvec.reshape(-1)[0]))
    if space is None:
        raise TypeError(f"{type(env).__name__} has neither single_action_space nor action_space")
    return space


def position_levels(env: Any) -> tuple[float, ...]:
    """The env's discrete target levels (``env.position_levels`` or ``env.cfg.position_levels``), else the default five."""
    levels = env_cfg_value(env, "position_levels")
    return tuple(float(x) for x in levels) if levels is not None else DEFAULT_POSITION_LEVELS


def target_to_action(target: float, env: Any) -> torch.Tensor:
    """The action for a target position in [-1, 1]: nearest level index ([1] int64) or the target ([1, 1])."""
    space = _single_action_space(env)
    device = getattr(env, "device", "cpu")
    if isinstance(space, gym.spaces.Discrete):
        levels = np.asarray(position_levels(env))
        if levels.size != space.n:
            raise ValueError(f"env action space is Discrete({space.n}) but its position levels are {tuple(levels)}; "
                             f"expose env.position_levels")
        dist = np.abs(levels - target)
        nearest = np.flatnonzero(np.isclose(dist, dist.min()))
        if nearest.size > 1:
            raise ValueError(f"position levels {tuple(levels.tolist())} cannot express target {target}: "
                             f"{tuple(levels[nearest].tolist())} are equally near")
        return torch.tensor([int(nearest[0])], dtype=torch.int64, device=device)
    if isinstance(space, gym.spaces.Box):
        low, high = float(np.min(space.low)), float(np.max(space.high))
        return torch.tensor([[min(max(target, low), high)]], dtype=torch.float32, device=device)
    raise TypeError(f"baselines support Discrete or Box action spaces, got {space!r}")


class ConstantTarget:
    """Baseline that always targets the same position (0 = flat, 1 = buy and hold)."""

    def __init__(self, env: Any, target: float) -> None:
        self.action = target_to_action(target, env)

    def __call__(self, obs: Any, info: Mapping[str, Any]) -> torch.Tensor:
        return self.action


class Momentum:
    """Time-series momentum: long if the close rose over the last ``lookback`` closes, short if it fell.

    Uses only closes already reported in ``info["close"]`` (the reset close first); flat until
    ``lookback + 1`` closes are known or when the price is unchanged.
    """

    def __init__(self, env: Any, lookback: int = 20) -> None:
        if lookback < 1:
            raise ValueError(f"momentum lookback must be >= 1, got {lookback}")
        self.lookback = lookback
        self.closes: list[float] = []
        self.actions = {t: target_to_action(t, env) for t in (-1.0, 0.0, 1.0)}

    def __call__(self, obs: Any, info: Mapping[str, Any]) -> torch.Tensor:
        if "close" in info:
            self.closes.append(scalar(info["close"]))
        if len(self.closes) <= self.lookback:
            return self.actions[0.0]
        change = self.closes[-1] - self.closes[-1 - self.lookback]
        return self.actions[float(np.sign(change))]


class RandomActions:
    """A uniformly random action every bar (seeded, so the report is reproducible): the
    turnover and cost reference a policy that learned nothing would have."""

    def __init__(self, env: Any, seed: int = 0) -> None:
        self.space = _single_action_space(env)
        if not isinstance(self.space, (gym.spaces.Discrete, gym.spaces.Box)):
            raise ValueError(f"random baseline supports Discrete or Box action spaces, got {self.space!r}")
        self.rng = np.random.default_rng(seed)
        self.device = getattr(env, "device", None)

    def __call__(self, obs: Any, info: Mapping[str, Any]) -> torch.Tensor:
        if isinstance(self.space, gym.spaces.Discrete):
            a = torch.tensor([int(self.space.start) + int(self.rng.integers(self.space.n))])
        else:
            a = torch.as_tensor(self.rng.uniform(self.space.low, self.space.high), dtype=torch.float32)[None]
        return a.to(self.device) if self.device is not None else a


BASELINES: dict[str, Callable[[Any, int], PolicyFn]] = {
    "flat": lambda env, lookback: ConstantTarget(env, 0.0),
    "buy_and_hold": lambda env, lookback: ConstantTarget(env, 1.0),
    "momentum": lambda env, lookback: Momentum(env, lookback),
    "random": lambda env, lookback: RandomActions(env),
}
NOT_PLOTTED = frozenset({"random"})  # its equity curve dives and would flatten the others


def make_baselines(env: Any, momentum_lookback: int = 20) -> dict[str, PolicyFn]:
    """Fresh baseline policies for ``env`` (momentum keeps state: one instance per backtest)."""
    return {name: make(env, momentum_lookback) for name, make in BASELINES.items()}
