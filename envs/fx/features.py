"""Causal market features and the multi-timeframe observation windows.

Every feature of bar t is a function of bars 0..t only, and of nothing else: where a series
starts does not change the features of a bar once its lookback is filled, so a split's
windows warm up on the bars before it and a live agent fed the same bars computes the same
numbers.

Aggregates (``medium_freq``, ``low_freq``) are blocks of clock time aligned to the epoch:
block ``b`` of length ``P = agg x bar duration`` covers the bars that open in
``[b * P, (b + 1) * P)``. A block is closed at bar t once t's close time has reached the
block's end; the window at bar t holds the last ``window`` non-empty closed blocks (a
weekend with no bars adds no block). So the blocks do not depend on where the history starts.

Per-bar market features (``full`` mode, F = 9, or 10 with ``volume_feature``):
    log return, log(high/low) range, log(close/open) body, realised volatility
    (root mean square of the last ``vol_window`` log returns; for an aggregate, root of the
    sum of its base bars' squared returns), moving-average gap (log close minus the mean log
    close of the last ``ma_window`` base bars, or ``ma_window_long`` for aggregates, taken at
    the bar's / block's last bar), sin/cos of time of day, sin/cos of time of week
    [, log tick volume minus its mean over the last ``ma_window`` bars, or the last 20 blocks].
The scaled ones (all but the four clock features) are standardised with a
:class:`FeatureNorm` fitted on the TRAINING range alone and carried to validation, test,
backtests and deployed agents (it travels in the checkpoint). ``price`` mode (F = 2) is the
raw close and its difference per bar or block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars

MARKET_FEATURES = ("log_return", "range", "body", "realised_vol", "ma_gap",
                   "tod_sin", "tod_cos", "tow_sin", "tow_cos")
VOLUME_FEATURE = "log_volume_ratio"
PRICE_FEATURES = ("close", "close_diff")
CLOCK = slice(5, 9)  # the four time-of-day / time-of-week columns: not standardised
TIMEFRAMES = ("high_freq", "medium_freq", "low_freq")
AGG_VOLUME_WINDOW = 20
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


def feature_names(cfg: FxEnvConfig) -> tuple[str, ...]:
    if cfg.obs_mode == "price":
        return PRICE_FEATURES
    return MARKET_FEATURES + ((VOLUME_FEATURE,) if cfg.volume_feature else ())


def scaled_columns(cfg: FxEnvConfig) -> np.ndarray:
    """Indices of the standardised columns (every market feature but the clock)."""
    n = len(feature_names(cfg))
    return np.array([i for i in range(n) if not CLOCK.start <= i < CLOCK.stop])


def _time_features(t_ns: np.ndarray) -> np.ndarray:
    day = (t_ns % _DAY_NS) / _DAY_NS * 2 * np.pi
    week = (t_ns % _WEEK_NS) / _WEEK_NS * 2 * np.pi
    return np.stack([np.sin(day), np.cos(day), np.sin(week), np.cos(week)], axis=1)


def _log_returns(close: np.ndarray) -> np.ndarray:
    r = np.full(close.shape, np.nan)
    r[1:] = np.log(close[1:] / close[:-1])
    return r


def _rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values (NaN until filled)."""
    csum = np.concatenate([[0.0], np.cumsum(x)])
    out = np.full(x.shape, np.nan)
    if len(x) >= window:
        idx = np.arange(window - 1, len(x))
        out[idx] = (csum[idx + 1] - csum[idx + 1 - window]) / window
    return out


def ma_gap(close: np.ndarray, window: int) -> np.ndarray:
    """log close minus the mean log close of the last ``window`` bars (NaN before it is filled)."""
    logc = np.log(close)
    return logc - _rolling_mean(logc, window)


def _volume_ratio(volume: np.ndarray, window: int) -> np.ndarray:
    """log(1 + volume) minus its mean over the last ``window`` bars (0 for a file without volume)."""
    lv = np.log1p(np.maximum(volume, 0.0))
    return lv - _rolling_mean(lv, window)


def base_features_raw(bars: Bars, vol_window: int, ma_window: int = 60, volume: bool = False) -> np.ndarray:
    """[T, F] unnormalised per-bar features (NaN where the lookback is not yet filled)."""
    r = _log_returns(bars.close)
    sq = np.nan_to_num(r * r, nan=0.0)
    csum = np.concatenate([[0.0], np.cumsum(sq)])
    rv = np.full(r.shape, np.nan)
    n = len(bars)
    if n > vol_window:
        idx = np.arange(vol_window, n)
        rv[idx] = np.sqrt((csum[idx + 1] - csum[idx + 1 - vol_window]) / vol_window)
    t_ns = bars.time.astype("datetime64[ns]").astype(np.int64)
    cols = [np.stack([r, np.log(bars.high / bars.low), np.log(bars.close / bars.open), rv,
                      ma_gap(bars.close, ma_window)], axis=1), _time_features(t_ns)]
    if volume:
        cols.append(_volume_ratio(bars.volume, ma_window)[:, None])
    return np.concatenate(cols, axis=1)


@dataclass(frozen=True)
class Blocks:
    """The non-empty clock-aligned blocks of a bar series and where each bar sees them.

    ``first[j]``/``last[j]``: first and last bar of block j (in time order); ``newest[t]``: the
    index of the newest block closed at bar t (-1 when none is)."""

    first: np.ndarray
    last: np.ndarray
    newest: np.ndarray


def blocks(bars: Bars, k: int, bar_ns: int) -> Blocks:
    """Blocks of ``k`` bar durations aligned to the epoch (see the module docstring)."""
    t_ns = bars.time.astype("datetime64[ns]").astype(np.int64)
    period = k * bar_ns
    block_of_bar = np.floor_divide(t_ns, period)
    starts = np.flatnonzero(np.r_[True, block_of_bar[1:] != block_of_bar[:-1]])
    ids = block_of_bar[starts]
    first, last = starts, np.r_[starts[1:] - 1, len(t_ns) - 1]
    closed_id = np.floor_divide(t_ns + bar_ns, period) - 1  # newest block whose end <= bar close time
    newest = np.searchsorted(ids, closed_id, side="right") - 1
    return Blocks(first, last, newest)


def aggregate_features_raw(bars: Bars, blk: Blocks, ma_window: int = 60, volume: bool = False) -> np.ndarray:
    """[n_blocks, F] features of the blocks (open of the first bar, extremes, close of the last ...)."""
    if len(blk.first) == 0:
        return np.zeros((0, len(MARKET_FEATURES) + int(volume)))
    o = bars.open[blk.first]
    h = np.maximum.reduceat(bars.high, blk.first)
    lo = np.minimum.reduceat(bars.low, blk.first)
    c = bars.close[blk.last]
    base_r = _log_returns(bars.close)
    rv = np.sqrt(np.add.reduceat(base_r * base_r, blk.first))  # NaN when it holds the series' first bar
    t_last = bars.time.astype("datetime64[ns]").astype(np.int64)[blk.last]
    gap = ma_gap(bars.close, ma_window)[blk.last]
    cols = [np.stack([_log_returns(c), np.log(h / lo), np.log(c / o), rv, gap], axis=1), _time_features(t_last)]
    if volume:
        cols.append(_volume_ratio(np.add.reduceat(bars.volume, blk.first), AGG_VOLUME_WINDOW)[:, None])
    return np.concatenate(cols, axis=1)


def price_features_raw(bars: Bars, blk: Blocks | None = None) -> np.ndarray:
    """[rows, 2] close of each bar (or block) and its change from the previous one."""
    c = bars.close if blk is None else bars.close[blk.last]
    d = np.full(c.shape, np.nan)
    d[1:] = np.diff(c)
    return np.stack([c, d], axis=1)


@dataclass(frozen=True)
class RawFeatures:
    """Unnormalised feature tables of the three timeframes and, per aggregate, its blocks."""

    tables: dict[str, np.ndarray]
    blocks: dict[str, Blocks]


def market_features_raw(bars: Bars, cfg: FxEnvConfig, bar_ns: int | None = None) -> RawFeatures:
    """Unnormalised feature tables of the three timeframes (``bar_ns``: the bar length, default from the bars)."""
    bar_ns = bar_ns if bar_ns is not None else bar_duration_ns(bars)
    blk = {"medium_freq": blocks(bars, cfg.agg_medium, bar_ns), "low_freq": blocks(bars, cfg.agg_low, bar_ns)}
    if cfg.obs_mode == "price":
        tables = {"high_freq": price_features_raw(bars), **{k: price_features_raw(bars, b) for k, b in blk.items()}}
    else:
        vol = cfg.volume_feature
        tables = {"high_freq": base_features_raw(bars, cfg.vol_window, cfg.ma_window, vol),
                  **{k: aggregate_features_raw(bars, b, cfg.ma_window_long, vol) for k, b in blk.items()}}
    return RawFeatures(tables, blk)


def _rows_in(raw: RawFeatures, key: str, lo: int, hi: int) -> slice | np.ndarray:
    """Rows of ``key``'s table that belong to bars [lo, hi) (a block by its last bar)."""
    if key == "high_freq":
        return slice(lo, hi)
    last = raw.blocks[key].last
    return np.flatnonzero((last >= lo) & (last < hi))


@dataclass
class FeatureNorm:
    """Per-timeframe mean/std of the scaled market features, fitted on the training range."""

    mean: dict[str, torch.Tensor]
    std: dict[str, torch.Tensor]

    @staticmethod
    def fit(bars: Bars, cfg: FxEnvConfig, lo: int = 0, hi: int | None = None,
            bar_ns: int | None = None) -> "FeatureNorm":
        """Fit on the bars [lo, hi) of ``bars`` (their features may look back before ``lo``), and on their
        mirror image too when ``cfg.mirror_augment``, so the two series share one symmetric
        normalisation and no feature offset tells them apart."""
        hi = len(bars) if hi is None else hi
        bar_ns = bar_ns if bar_ns is not None else bar_duration_ns(bars)
        variants = [bars, bars.mirrored()] if cfg.mirror_augment else [bars]
        raws = [market_features_raw(b, cfg, bar_ns) for b in variants]
        cols = scaled_columns(cfg)
        mean, std = {}, {}
        for key in TIMEFRAMES:
            x = np.concatenate([r.tables[key][_rows_in(r, key, lo, hi)][:, cols] for r in raws])
            x = x[np.all(np.isfinite(x), axis=1)]
            if x.shape[0] < 2:
                raise ValueError(f"{bars.source}: too few bars ({hi - lo}) to fit the {key} feature normalisation; "
                                 f"the training range needs more than 2 x --fx.agg-low bars")
            mean[key] = torch.tensor(x.mean(axis=0), dtype=torch.float64)
            std[key] = torch.tensor(np.maximum(x.std(axis=0), 1e-12), dtype=torch.float64)
        return FeatureNorm(mean, std)

    def apply(self, key: str, raw: np.ndarray, cols: np.ndarray) -> np.ndarray:
        out = raw.copy()
        out[:, cols] = (raw[:, cols] - self.mean[key].numpy()) / self.std[key].numpy()
        return out

    def state_dict(self) -> dict:
        return {"mean": dict(self.mean), "std": dict(self.std)}

    @staticmethod
    def from_state_dict(state: dict) -> "FeatureNorm":
        return FeatureNorm({k: v.clone() for k, v in state["mean"].items()},
                           {k: v.clone() for k, v in state["std"].items()})


class WindowFeatures:
    """Precomputed feature tables of a bar series and the gather that builds observations.

    With several ``variants`` of the bars (the real series and its mirror image) the tables of
    each are stacked along the rows, and :meth:`observe` takes each env's variant index.
    ``valid_from`` is the first bar whose every window holds defined features."""

    def __init__(self, bars: Bars | list[Bars], cfg: FxEnvConfig, norm: FeatureNorm | None,
                 device: torch.device, bar_ns: int | None = None) -> None:
        variants = bars if isinstance(bars, list) else [bars]
        bar_ns = bar_ns if bar_ns is not None else bar_duration_ns(variants[0])
        self.windows = {"high_freq": cfg.window_high, "medium_freq": cfg.window_medium, "low_freq": cfg.window_low}
        raws = [market_features_raw(b, cfg, bar_ns) for b in variants]
        if cfg.obs_mode == "price":
            per_variant = [r.tables for r in raws]
            clip = None
        else:
            if norm is None:
                raise ValueError("full observation mode needs a FeatureNorm fitted on the training split")
            cols = scaled_columns(cfg)
            per_variant = [{key: norm.apply(key, raw, cols) for key, raw in r.tables.items()} for r in raws]
            clip = cfg.obs_clip
        blk = raws[0].blocks  # block layout depends on times only: the same for every variant
        self.rows = {key: t.shape[0] for key, t in per_variant[0].items()}
        n = len(variants[0])
        newest = {"high_freq": np.arange(n), **{k: b.newest for k, b in blk.items()}}
        self.valid_from = self._valid_from(per_variant[0], newest)
        self.tables: dict[str, torch.Tensor] = {}
        for key in per_variant[0]:
            x = np.nan_to_num(np.concatenate([pv[key] for pv in per_variant]), nan=0.0, posinf=0.0, neginf=0.0)
            if clip is not None:
                x = np.clip(x, -clip, clip)
            self.tables[key] = torch.as_tensor(x, dtype=torch.float32, device=device)
        self.newest = {key: torch.as_tensor(np.maximum(v, 0), dtype=torch.int64, device=device)
                       for key, v in newest.items()}
        self.n_features = next(iter(self.tables.values())).shape[1]
        self.n_bars = n
        # per bar row of every variant: the table row where its window starts (in that variant's block of rows)
        self.first_row = {key: torch.cat([(v - (self.windows[key] - 1)).clamp(min=0) + i * self.rows[key]
                                          for i in range(len(variants))])
                          for key, v in self.newest.items()}
        # every window of a table as an overlapping strided view [rows - W + 1, W, F] (no copy): an observation
        # is then one index_select of whole [W, F] blocks, ~7x faster than gathering W x N single rows
        self.strided = {key: table.as_strided((max(table.shape[0] - self.windows[key] + 1, 0), self.windows[key],
                                               table.shape[1]), (table.shape[1], table.shape[1], 1))
                        for key, table in self.tables.items()}

    def _valid_from(self, tables: dict[str, np.ndarray], newest: dict[str, np.ndarray]) -> int:
        """First bar t whose windows all hold finite features (len(bars) when there is none)."""
        ok = np.ones(len(newest["high_freq"]), dtype=bool)
        for key, table in tables.items():
            finite = np.all(np.isfinite(table), axis=1)
            # first row from which every row is finite: features never turn NaN again once defined
            first = int(np.argmax(finite)) if finite.any() else table.shape[0]
            ok &= newest[key] - self.windows[key] + 1 >= first
        return int(np.argmax(ok)) if ok.any() else len(ok)

    def observe(self, t: torch.Tensor, variant: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Windows at bar indices ``t`` [N] (bar t closed) of each env's ``variant`` (default 0):
        dict of [N, W, F] float32."""
        return self.observe_rows(t if variant is None else t + variant * self.n_bars)

    def observe_rows(self, row: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`observe` by row of the variant-stacked bars (``t + variant * n_bars``): one gather of each
        window's first table row, one of the windows."""
        return {key: windows.index_select(0, self.first_row[key].index_select(0, row))
                for key, windows in self.strided.items()}
