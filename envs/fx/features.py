"""Causal market features and the multi-timeframe observation windows.

Every feature of bar t is a function of bars 0..t only; aggregates (``medium_freq``,
``low_freq``) cover consecutive blocks of ``k`` base bars counted from the first bar of the
split, and the window at bar t holds only blocks that are FULLY closed by t (the newest is
block ``(t + 1) // k - 1``). All features are computed once per split (numpy, float64), then
kept as float32 tensors on the env's device so that an observation is one gather.

Per-bar market features (``full`` mode, F = 9):
    log return, log(high/low) range, log(close/open) body, realised volatility
    (root mean square of the last ``vol_window`` log returns; for an aggregate, root of the
    sum of its base bars' squared returns), moving-average gap (log close minus the mean log
    close of the last ``ma_window`` base bars, or ``ma_window_long`` for aggregates, taken at
    the bar's / block's last bar),
    sin/cos of time of day, sin/cos of time of week.
The first five are standardised with a :class:`FeatureNorm` fitted on the TRAINING split
alone and carried to val/test. ``price`` mode (F = 2) is the raw close and its difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars

MARKET_FEATURES = ("log_return", "range", "body", "realised_vol", "ma_gap",
                   "tod_sin", "tod_cos", "tow_sin", "tow_cos")
PRICE_FEATURES = ("close", "close_diff")
N_SCALED = 5  # the first five market features are standardised
TIMEFRAMES = ("high_freq", "medium_freq", "low_freq")
_DAY_NS = 86_400 * 10**9
_WEEK_NS = 7 * _DAY_NS


def bar_duration_ns(bars: Bars) -> int:
    """Typical bar length: the median positive gap between bar times."""
    t = bars.time.astype("datetime64[ns]").astype(np.int64)
    gaps = np.diff(t)
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        raise ValueError(f"{bars.source}: need at least two bars with increasing times")
    return int(np.median(gaps))


def _time_features(t_ns: np.ndarray) -> np.ndarray:
    day = (t_ns % _DAY_NS) / _DAY_NS * 2 * np.pi
    week = (t_ns % _WEEK_NS) / _WEEK_NS * 2 * np.pi
    return np.stack([np.sin(day), np.cos(day), np.sin(week), np.cos(week)], axis=1)


def _log_returns(close: np.ndarray) -> np.ndarray:
    r = np.full(close.shape, np.nan)
    r[1:] = np.log(close[1:] / close[:-1])
    return r


def ma_gap(close: np.ndarray, window: int) -> np.ndarray:
    """log close minus the mean log close of the last ``window`` bars (NaN before it is filled)."""
    logc = np.log(close)
    csum = np.concatenate([[0.0], np.cumsum(logc)])
    out = np.full(logc.shape, np.nan)
    if len(logc) >= window:
        idx = np.arange(window - 1, len(logc))
        out[idx] = logc[idx] - (csum[idx + 1] - csum[idx + 1 - window]) / window
    return out


def base_features_raw(bars: Bars, vol_window: int, ma_window: int = 60) -> np.ndarray:
    """[T, 9] unnormalised per-bar features (NaN where the lookback is not yet filled)."""
    r = _log_returns(bars.close)
    sq = np.nan_to_num(r * r, nan=0.0)
    csum = np.concatenate([[0.0], np.cumsum(sq)])
    rv = np.full(r.shape, np.nan)
    n = len(bars)
    if n > vol_window:
        idx = np.arange(vol_window, n)
        rv[idx] = np.sqrt((csum[idx + 1] - csum[idx + 1 - vol_window]) / vol_window)
    t_ns = bars.time.astype("datetime64[ns]").astype(np.int64)
    return np.concatenate([
        np.stack([r, np.log(bars.high / bars.low), np.log(bars.close / bars.open), rv,
                  ma_gap(bars.close, ma_window)], axis=1),
        _time_features(t_ns)], axis=1)


def aggregate_features_raw(bars: Bars, k: int, ma_window: int = 60) -> np.ndarray:
    """[T // k, 9] features of consecutive k-bar blocks (block j = bars j*k .. j*k+k-1)."""
    m = len(bars) // k
    if m == 0:
        return np.zeros((0, len(MARKET_FEATURES)))
    sl = slice(0, m * k)
    o = bars.open[sl].reshape(m, k)[:, 0]
    h = bars.high[sl].reshape(m, k).max(axis=1)
    lo = bars.low[sl].reshape(m, k).min(axis=1)
    c = bars.close[sl].reshape(m, k)[:, -1]
    base_r = _log_returns(bars.close)[sl].reshape(m, k)
    rv = np.sqrt(np.sum(base_r * base_r, axis=1))  # NaN for block 0 (its first return is undefined)
    t_last = bars.time.astype("datetime64[ns]").astype(np.int64)[sl].reshape(m, k)[:, -1]
    gap = ma_gap(bars.close, ma_window)[sl].reshape(m, k)[:, -1]
    return np.concatenate([np.stack([_log_returns(c), np.log(h / lo), np.log(c / o), rv, gap], axis=1),
                           _time_features(t_last)], axis=1)


def price_features_raw(bars: Bars, k: int = 1) -> np.ndarray:
    """[T // k, 2] close of each k-bar block and its change from the previous block."""
    m = len(bars) // k
    c = bars.close[: m * k].reshape(m, k)[:, -1] if m else np.zeros(0)
    d = np.full(c.shape, np.nan)
    d[1:] = np.diff(c)
    return np.stack([c, d], axis=1)


def market_features_raw(bars: Bars, cfg: FxEnvConfig) -> dict[str, np.ndarray]:
    """Unnormalised feature tables of the three timeframes."""
    return {"high_freq": base_features_raw(bars, cfg.vol_window, cfg.ma_window),
            "medium_freq": aggregate_features_raw(bars, cfg.agg_medium, cfg.ma_window_long),
            "low_freq": aggregate_features_raw(bars, cfg.agg_low, cfg.ma_window_long)}


@dataclass
class FeatureNorm:
    """Per-timeframe mean/std of the scaled market features, fitted on the training split."""

    mean: dict[str, torch.Tensor]
    std: dict[str, torch.Tensor]

    @staticmethod
    def fit(bars: Bars, cfg: FxEnvConfig) -> "FeatureNorm":
        """Fit on ``bars`` (and on their mirror image too when ``cfg.mirror_augment``, so the two
        series share one symmetric normalisation and no feature offset tells them apart)."""
        raws = market_features_raw(bars, cfg)
        if cfg.mirror_augment:
            mirror = market_features_raw(bars.mirrored(), cfg)
            raws = {key: np.concatenate([raw, mirror[key]]) for key, raw in raws.items()}
        mean, std = {}, {}
        for key, raw in raws.items():
            x = raw[:, :N_SCALED]
            x = x[np.all(np.isfinite(x), axis=1)]
            if x.shape[0] < 2:
                raise ValueError(f"{bars.source}: too few bars ({len(bars)}) to fit the {key} "
                                 f"feature normalisation; need more than 2 x --fx.agg-low bars")
            mean[key] = torch.tensor(x.mean(axis=0), dtype=torch.float64)
            std[key] = torch.tensor(np.maximum(x.std(axis=0), 1e-12), dtype=torch.float64)
        return FeatureNorm(mean, std)

    def apply(self, key: str, raw: np.ndarray) -> np.ndarray:
        out = raw.copy()
        out[:, :N_SCALED] = (raw[:, :N_SCALED] - self.mean[key].numpy()) / self.std[key].numpy()
        return out

    def state_dict(self) -> dict:
        return {"mean": dict(self.mean), "std": dict(self.std)}

    @staticmethod
    def from_state_dict(state: dict) -> "FeatureNorm":
        return FeatureNorm({k: v.clone() for k, v in state["mean"].items()},
                           {k: v.clone() for k, v in state["std"].items()})


class WindowFeatures:
    """Precomputed feature tables of one split and the gather that builds observations.

    With several ``variants`` of the bars (the real series and its mirror image) the tables of
    each are stacked along the rows, and :meth:`observe` takes each env's variant index."""

    def __init__(self, bars: Bars | list[Bars], cfg: FxEnvConfig, norm: FeatureNorm | None,
                 device: torch.device) -> None:
        variants = bars if isinstance(bars, list) else [bars]
        self.windows = {"high_freq": cfg.window_high, "medium_freq": cfg.window_medium,
                        "low_freq": cfg.window_low}
        self.agg = {"high_freq": 1, "medium_freq": cfg.agg_medium, "low_freq": cfg.agg_low}
        if cfg.obs_mode == "price":
            per_variant = [{key: price_features_raw(b, k) for key, k in self.agg.items()} for b in variants]
            clip = None
        else:
            if norm is None:
                raise ValueError("full observation mode needs a FeatureNorm fitted on the training split")
            per_variant = [{key: norm.apply(key, raw) for key, raw in market_features_raw(b, cfg).items()}
                           for b in variants]
            clip = cfg.obs_clip
        self.rows = {key: raw.shape[0] for key, raw in per_variant[0].items()}  # rows per variant
        raws = {key: np.concatenate([pv[key] for pv in per_variant]) for key in per_variant[0]}
        self.tables: dict[str, torch.Tensor] = {}
        for key, raw in raws.items():
            x = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
            if clip is not None:
                x = np.clip(x, -clip, clip)
            self.tables[key] = torch.as_tensor(x, dtype=torch.float32, device=device)
        self.n_features = next(iter(self.tables.values())).shape[1]
        self.offsets = {key: torch.arange(-w + 1, 1, device=device) for key, w in self.windows.items()}

    def observe(self, t: torch.Tensor, variant: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Windows at bar indices ``t`` [N] (bar t closed) of each env's ``variant`` (default 0):
        dict of [N, W, F] float32."""
        out = {}
        for key, table in self.tables.items():
            k = self.agg[key]
            newest = t if k == 1 else torch.div(t + 1, k, rounding_mode="floor") - 1
            if variant is not None:
                newest = newest + variant * self.rows[key]
            out[key] = table[newest.unsqueeze(1) + self.offsets[key]]
        return out
