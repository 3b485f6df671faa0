"""Baseline policies for backtests, run through the same env and costs as the agent.

* ``flat`` and ``buy_and_hold``;
* ``momentum``: time-series momentum, the sign of the return over the last ``lookback`` bars
  (Moskowitz, Ooi & Pedersen 2012; the ``Sign(R)`` benchmark of Zhang, Zohren & Roberts 2019);
* ``macd``: the MACD trend signal of Baz et al. (2015) as used by Zhang, Zohren & Roberts
  (2019): three EMA crossovers (8/24, 16/48, 32/96 bars) scaled by the price's 63-bar standard
  deviation, then by their own 252-bar standard deviation, passed through
  ``y exp(-y^2 / 4) / 0.89`` and averaged; the position is its sign;
* ``zscore``: mean reversion, short when the log price is ``entry`` standard deviations above
  its ``window``-bar mean, long when as far below, flat again once it crosses the mean;
* ``random``: a seeded uniformly random action each bar: the turnover and cost reference.

A baseline is a ``policy_fn(obs, info) -> actions`` that reads only what a trader would
know at the bar: the closes before the backtest starts (:func:`history_of`, like the agent's
observation windows) and those reported in ``info`` since. It maps a target position in
[-1, 1] to the env's action space with :func:`target_to_action`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


def history_of(env: Any, limit: int = 5_000) -> np.ndarray:
    """Closes of the bars before the env's first bar (up to ``limit``), or none for an env that has no such
    history: a baseline starts the backtest as informed as the agent's observation windows."""
    bars, start = getattr(env, "bars", None), getattr(env, "t_min", None)
    if bars is None or start is None:
        return np.zeros(0)
    return np.asarray(bars.close[max(0, int(start) - limit):int(start)], dtype=np.float64)


class _ClosesBaseline:
    """Keeps the closes seen so far (history first) and maps a target to the env's action."""

    def __init__(self, env: Any, keep: int) -> None:
        self.closes: deque[float] = deque(history_of(env).tolist()[-keep:], maxlen=keep)
        self.actions = {t: target_to_action(t, env) for t in (-1.0, 0.0, 1.0)}

    def _see(self, info: Mapping[str, Any]) -> None:
        if "close" in info:
            self.closes.append(scalar(info["close"]))


class Momentum(_ClosesBaseline):
    """Time-series momentum: long if the close rose over the last ``lookback`` bars, short if it fell,
    flat until ``lookback + 1`` closes are known or when the price is unchanged."""

    def __init__(self, env: Any, lookback: int = 20) -> None:
        if lookback < 1:
            raise ValueError(f"momentum lookback must be >= 1, got {lookback}")
        super().__init__(env, lookback + 1)
        self.lookback = lookback

    def __call__(self, obs: Any, info: Mapping[str, Any]) -> torch.Tensor:
        self._see(info)
        if len(self.closes) <= self.lookback:
            return self.actions[0.0]
        return self.actions[float(np.sign(self.closes[-1] - self.closes[0]))]


class _Ema:
    def __init__(self, span: int) -> None:
        self.alpha, self.value = 2.0 / (span + 1.0), None

    def update(self, x: float) -> float:
        self.value = x if self.value is None else self.value + self.alpha * (x - self.value)
        return self.value


class _RollingStd:
    def __init__(self, window: int) -> None:
        self.values: deque[float] = deque(maxlen=window)

    def update(self, x: float) -> float:
        self.values.append(x)
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    @property
    def full(self) -> bool:
        return len(self.values) == self.values.maxlen


class Macd(_ClosesBaseline):
    """The Baz et al. (2015) MACD trend signal (see the module docstring); flat until its windows are full."""

    PAIRS = ((8, 24), (16, 48), (32, 96))

    def __init__(self, env: Any, price_window: int = 63, signal_window: int = 252) -> None:
        super().__init__(env, 1)
        self.emas = [(_Ema(s), _Ema(lg)) for s, lg in self.PAIRS]
        self.price_std = _RollingStd(price_window)
        self.signal_std = [_RollingStd(signal_window) for _ in self.PAIRS]
        self.signal = 0.0
        for close in history_of(env).tolist():
            self._update(close)

    def _update(self, close: float) -> None:
        sd = self.price_std.update(close)
        scalable = self.price_std.full  # the price's deviation is known: crossovers can be scaled
        total, ready = 0.0, scalable
        for (fast, slow), ssd in zip(self.emas, self.signal_std):
            crossover = fast.update(close) - slow.update(close)
            if not scalable:
                continue
            q = crossover / sd if sd > 0 else 0.0
            qs = ssd.update(q)
            ready &= ssd.full
            y = q / qs if qs > 0 else 0.0
            total += y * math.exp(-y * y / 4.0) / 0.89
        self.signal = total / len(self.PAIRS) if ready else 0.0

    def __call__(self, obs: Any, info: Mapping[str, Any]) -> torch.Tensor:
        if "close" in info:
            self._update(scalar(info["close"]))
        return self.actions[float(np.sign(self.signal))]


class ZScore(_ClosesBaseline):
    """Mean reversion on the z-score of the log close over ``window`` bars: short above ``entry``, long below
    ``-entry``, flat once the z-score crosses zero; flat until the window is full."""

    def __init__(self, env: Any, window: int = 240, entry: float = 1.0) -> None:
        if window < 2 or not entry > 0:
            raise ValueError(f"zscore needs window >= 2 and entry > 0, got {window}, {entry}")
        super().__init__(env, window)
        self.entry, self.position = float(entry), 0.0

    def __call__(self, obs: Any, info: Mapping[str, Any]) -> torch.Tensor:
        self._see(info)
        if len(self.closes) < self.closes.maxlen:
            return self.actions[0.0]
        logs = np.log(np.asarray(self.closes))
        sd = float(logs.std(ddof=1))
        z = (logs[-1] - logs.mean()) / sd if sd > 0 else 0.0
        if z > self.entry:
            self.position = -1.0
        elif z < -self.entry:
            self.position = 1.0
        elif self.position * z > 0:  # crossed the mean
            self.position = 0.0
        return self.actions[self.position]


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


@dataclass(frozen=True)
class BaselineParams:
    """Settings of the baselines (``None``: from the env: a trading day of bars for momentum, the env's
    ``ma_window`` for the z-score)."""

    momentum_lookback: int | None = None
    zscore_window: int | None = None
    zscore_entry: float = 1.0

    def resolved(self, env: Any) -> "BaselineParams":
        bar_ns = getattr(env, "bar_ns", None)
        day = max(1, round(86_400 * 10**9 / bar_ns)) if bar_ns else 20
        window = self.zscore_window or env_cfg_value(env, "ma_window") or 240
        return BaselineParams(self.momentum_lookback or min(day, 252), int(max(2, window)), self.zscore_entry)


BASELINES: dict[str, Callable[[Any, BaselineParams], PolicyFn]] = {
    "flat": lambda env, p: ConstantTarget(env, 0.0),
    "buy_and_hold": lambda env, p: ConstantTarget(env, 1.0),
    "momentum": lambda env, p: Momentum(env, p.momentum_lookback),
    "macd": lambda env, p: Macd(env),
    "zscore": lambda env, p: ZScore(env, p.zscore_window, p.zscore_entry),
    "random": lambda env, p: RandomActions(env),
}
NOT_PLOTTED = frozenset({"random"})  # its equity curve dives and would flatten the others
REFERENCE_ONLY = frozenset({"random"})  # the turnover/cost reference, never "the best baseline"


def make_baselines(env: Any, momentum_lookback: int | None = None,
                   params: BaselineParams | None = None) -> dict[str, PolicyFn]:
    """Fresh baseline policies for ``env`` (they keep state: one instance per backtest)."""
    p = (params or BaselineParams(momentum_lookback=momentum_lookback)).resolved(env)
    return {name: make(env, p) for name, make in BASELINES.items()}
