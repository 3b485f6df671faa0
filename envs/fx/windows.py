"""The env's observation windows computed from a bar history alone: what a live agent and an
exported policy are fed.

:func:`raw_windows` is the numpy feature function shipped beside exported policies: bars in,
the UNnormalised ``high_freq`` / ``medium_freq`` / ``low_freq`` windows of the newest bar out
(float64 ``[1, W, F]`` each; NaN where a lookback is not yet filled). Its numbers are the env's
(:class:`envs.fx.features.WindowFeatures` before normalisation): every feature is causal and
the aggregates are clock-aligned blocks, so the last :func:`history_bars` bars of any history
give the same windows as the whole series; older bars change nothing. The only difference is
in the last bits of float64 rolling sums (the env's cumulative sums start at its first bar),
far below float32, the precision the policy sees.

:func:`normalise_windows` applies a checkpoint's fitted :class:`~envs.fx.features.FeatureNorm`
exactly as the env does (float64 standardisation of the scaled columns, NaN -> 0, clip, float32),
and :func:`observation_space` is the env's observation space from the config alone.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars
from envs.fx.features import (AGG_VOLUME_WINDOW, TIMEFRAMES, FeatureNorm, aggregate_features_raw,
                              base_features_raw, blocks, feature_names, market_features_raw, price_features_raw,
                              scaled_columns)

PORTFOLIO_SIZE = 4
"""Entries of the ``portfolio`` observation (``envs.fx.vector.PORTFOLIO_FEATURES``)."""


def window_sizes(cfg: FxEnvConfig) -> dict[str, int]:
    """Rows of each timeframe's window: ``{high_freq: W1, medium_freq: W2, low_freq: W3}``."""
    return {"high_freq": cfg.window_high, "medium_freq": cfg.window_medium, "low_freq": cfg.window_low}


def tail_bars(cfg: FxEnvConfig) -> dict[str, int]:
    """Per timeframe, the bars of history whose window at the newest bar equals the whole series'. The
    per-bar window needs ``window_high`` rows plus the longest per-bar lookback; an aggregate window of
    W blocks of k bar lengths needs W closed blocks, the one before it (its close starts the oldest
    block's return), the block in progress and a possibly partial first one (a block holds at most k
    bars, so (W + 3) x k bars span them), plus ``ma_window_long`` bars of moving average (and
    ``AGG_VOLUME_WINDOW`` more blocks for the volume feature). Weekends only shorten what is needed:
    a gap adds no bars."""
    extra = 3 + (AGG_VOLUME_WINDOW if cfg.volume_feature else 0)
    return {"high_freq": cfg.window_high + max(cfg.vol_window + 1, cfg.ma_window),
            "medium_freq": (cfg.window_medium + extra) * cfg.agg_medium + cfg.ma_window_long,
            "low_freq": (cfg.window_low + extra) * cfg.agg_low + cfg.ma_window_long}


def history_bars(cfg: FxEnvConfig) -> int:
    """Bars of history that give the env's windows at the newest bar (the most a live agent keeps)."""
    return max(tail_bars(cfg).values())


def observation_space(cfg: FxEnvConfig) -> gym.spaces.Dict:
    """The FX env's single observation space, from the config alone (no market data)."""
    clip = cfg.obs_clip
    bound = np.inf if cfg.obs_mode == "price" else clip
    n = len(feature_names(cfg))
    return gym.spaces.Dict({key: gym.spaces.Box(-bound, bound, (w, n), np.float32) for key, w in window_sizes(cfg).items()}
                           | {"portfolio": gym.spaces.Box(-clip, clip, (PORTFOLIO_SIZE,), np.float32)})


def action_space(cfg: FxEnvConfig) -> gym.Space:
    """The FX env's single action space: a level index, or a target fraction in [-1, 1]."""
    if cfg.action_mode == "discrete":
        return gym.spaces.Discrete(len(cfg.position_levels))
    return gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def raw_windows(bars: Bars, cfg: FxEnvConfig, bar_ns: int, at: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Unnormalised observation windows, float64 ``{timeframe: [B, W, F]}`` (NaN where undefined).

    ``bars``: mid-price bars in time order (the newest last); ``bar_ns``: the bar length the
    checkpoint was trained with (``env_spec["bar_ns"]``). ``at=None``: the windows of the newest bar,
    computed from its last :func:`history_bars` bars (B = 1). ``at``: bar indices into ``bars``
    (a whole backtest at once), computed from the whole series exactly as the env does."""
    if len(bars) == 0:
        raise ValueError("raw_windows: no bars")
    if at is None:
        return _newest_windows(bars, cfg, bar_ns)
    at = np.asarray(at, dtype=np.int64).reshape(-1)
    if at.size and (at.min() < 0 or at.max() >= len(bars)):
        raise ValueError(f"raw_windows: bar indices must lie in [0, {len(bars) - 1}]")
    raw = market_features_raw(bars, cfg, bar_ns)
    out = {}
    for key, w in window_sizes(cfg).items():
        table = raw.tables[key]
        newest = at if key == "high_freq" else raw.blocks[key].newest[at]
        rows = newest[:, None] + np.arange(-w + 1, 1)[None, :]
        valid = rows >= 0
        win = table[np.where(valid, rows, 0)]
        win[~valid] = np.nan
        out[key] = win
    return out


def _newest_windows(bars: Bars, cfg: FxEnvConfig, bar_ns: int) -> dict[str, np.ndarray]:
    """The newest bar's windows, each timeframe's table computed on its own :func:`tail_bars` (the
    composition of :func:`envs.fx.features.market_features_raw`, one timeframe at a time)."""
    n, out = len(bars), {}
    price = cfg.obs_mode == "price"
    for key, tail in tail_bars(cfg).items():
        sub = bars.slice(max(0, n - tail), n)
        if key == "high_freq":
            table = price_features_raw(sub) if price else base_features_raw(sub, cfg.vol_window, cfg.ma_window,
                                                                            cfg.volume_feature)
            newest = len(sub) - 1
        else:
            blk = blocks(sub, cfg.agg_medium if key == "medium_freq" else cfg.agg_low, bar_ns)
            table = (price_features_raw(sub, blk) if price
                     else aggregate_features_raw(sub, blk, cfg.ma_window_long, cfg.volume_feature))
            newest = int(blk.newest[-1])
        w = window_sizes(cfg)[key]
        if newest - w + 1 >= 0:
            out[key] = table[newest - w + 1: newest + 1][None].copy()
        else:
            win = np.full((1, w, table.shape[1]), np.nan)
            if newest >= 0:
                win[0, w - 1 - newest:] = table[: newest + 1]
            out[key] = win
    return out


def windows_ready(windows: dict[str, np.ndarray]) -> np.ndarray:
    """[B] bool: every window row holds defined features (the env's first tradable bar is the first such bar)."""
    return np.logical_and.reduce([np.isfinite(w).all(axis=(1, 2)) for w in windows.values()])


def normalise_windows(windows: dict[str, np.ndarray], norm: FeatureNorm | None, cfg: FxEnvConfig
                      ) -> dict[str, np.ndarray]:
    """Raw windows -> the env's observation windows (float32): the checkpoint's feature normalisation on the
    scaled columns in float64, NaN/inf -> 0, clipped to ``obs_clip`` (``price`` mode: neither)."""
    out = {}
    cols = scaled_columns(cfg)
    for key in TIMEFRAMES:
        x = windows[key]
        if cfg.obs_mode != "price":
            if norm is None:
                raise ValueError("full observation mode needs the checkpoint's feature normalisation")
            x = norm.apply(key, x.reshape(-1, x.shape[-1]), cols).reshape(x.shape)
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if cfg.obs_mode != "price":
            x = np.clip(x, -cfg.obs_clip, cfg.obs_clip)
        out[key] = x.astype(np.float32)
    return out


__all__ = ["PORTFOLIO_SIZE", "action_space", "history_bars", "tail_bars", "normalise_windows", "observation_space",
           "raw_windows", "window_sizes", "windows_ready"]
