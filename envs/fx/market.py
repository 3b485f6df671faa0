"""The FX market as the rest of FxAI gets it: the bars loaded once, where each split lies,
feature normalisation, and the factories of training and backtest envs (the gymnasium entry points of
``FxAI/FxTrading-v0`` are in :mod:`envs.fx.gym_api`).

Splits share one bar series. The first bars fill the observation windows (once, for the
whole series); the usable bars after them are shared out by ``train_frac``/``val_frac``/
``test_frac`` with ``embargo`` bars left out between splits, so no training episode's rewards
reach into the validation period (or validation's into test). A split's env trades only
its own bars, but its observation windows look back over the bars before it: history is
observable, only rewards must not overlap. Every length requirement is checked when the
market loads, before any work, with one line that says what is needed and which flags
change it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from dataclasses import dataclass
from typing import Any

import pandas as pd

from envs.fx.arrays import TradingContext, trading_context
from envs.fx.config import FxEnvConfig, lookback_estimate
from envs.fx.data import Bars, DataChecks, load_bars
from envs.fx.features import FeatureNorm, WindowFeatures, bar_duration_ns
from envs.fx.instruments import side_from_name

SPLITS = ("train", "val", "test")
WHOLE = "all"
"""The split name of the whole series after the observation windows are full (backtests of a new file)."""
_MARKETS: dict[tuple, "Market"] = {}
_NORMS: dict[tuple, FeatureNorm] = {}


@dataclass(frozen=True)
class Market:
    """A bar series (mid prices), the bar range of each split, and its trading context."""

    bars: Bars
    ranges: dict[str, tuple[int, int]]
    valid_from: int
    bar_ns: int
    context: TradingContext
    notes: tuple[str, ...] = ()
    split_error: str | None = None
    """Why the series cannot be split with these settings (then only ``all`` can be traded)."""

    def bounds(self, split: str) -> tuple[int, int]:
        """The bars ``split`` trades (``all``: every bar with full windows)."""
        if split == WHOLE:
            return self.valid_from, len(self.bars)
        if self.split_error is not None:
            raise ValueError(self.split_error)
        if split not in self.ranges:
            raise ValueError(f"split must be one of {[*self.ranges, WHOLE]} (got {split!r})")
        return self.ranges[split]

    def split_bars(self, split: str) -> Bars:
        lo, hi = self.bounds(split)
        return self.bars.slice(lo, hi)


def _to_mid(bars: Bars, cfg: FxEnvConfig, pip: float) -> tuple[Bars, str | None]:
    """Mid prices of one-sided bars (ask - half spread, bid + half spread), and a note saying so."""
    side = cfg.price_side
    if bars.side == "bidask":
        if side in ("bid", "ask"):
            raise ValueError(f"--fx.price-side {side}: {bars.source} has bid and ask columns; use auto or mid")
        return bars, f"{bars.source}: bid and ask columns: mid prices, the file's own spread on every bar"
    if side == "auto":
        side = bars.side if bars.side != "mid" else (side_from_name(cfg.data) or "mid")
    if side == "mid":
        return bars.with_prices(bars.open, bars.high, bars.low, bars.close, "mid"), None
    hs = 0.5 * cfg.spread_pips * pip
    sign = -1.0 if side == "ask" else 1.0
    how = "from its name" if cfg.price_side == "auto" and bars.side == "mid" else "as told"
    note = (f"{bars.source}: {side} prices ({how}); mid = {side} {'-' if side == 'ask' else '+'} "
            f"{hs / pip:g} pips (half of --fx.spread-pips {cfg.spread_pips:g})")
    return bars.with_prices(bars.open + sign * hs, bars.high + sign * hs, bars.low + sign * hs,
                            bars.close + sign * hs, "mid"), note


def data_checks(cfg: FxEnvConfig) -> DataChecks:
    """What a bar file must pass beyond its format (``--fx.max-return-sigmas``, ``--fx.max-gap-days``,
    ``--fx.accept-anomalies``)."""
    return DataChecks(cfg.max_return_sigmas, cfg.max_gap_days, cfg.accept_anomalies)


def _raw_bars(cfg: FxEnvConfig) -> Bars:
    if cfg.data is not None:
        return load_bars(cfg.data, timezone=cfg.timezone, checks=data_checks(cfg))
    from envs.fx.synthetic import generate

    return generate(cfg.synthetic_kind, cfg.synthetic_n_bars, cfg.synthetic_seed, bar_seconds=cfg.bar_seconds,
                    annual_vol=cfg.synthetic_annual_vol, half_life_bars=cfg.synthetic_half_life,
                    switch_prob=cfg.synthetic_switch_prob, level_drift=cfg.synthetic_level_drift,
                    weekend_gap_hours=cfg.synthetic_weekend_gap_hours)


def _market_key(cfg: FxEnvConfig) -> tuple:
    return tuple(getattr(cfg, name) for name in (
        "data", "pair", "timezone", "price_side", "synthetic_kind", "synthetic_n_bars", "synthetic_seed", "bar_seconds",
        "synthetic_annual_vol", "synthetic_half_life", "synthetic_level_drift", "synthetic_switch_prob",
        "synthetic_weekend_gap_hours", "train_frac", "val_frac", "test_frac", "embargo_bars", "episode_bars",
        "spread_pips", "pip_size", "account_currency", "conversion_rate", "conversion_data", "conversion_pair",
        "obs_mode", "window_high", "window_medium", "window_low", "agg_medium", "agg_low", "vol_window", "ma_window",
        "ma_window_long", "volume_feature", "split_bounds", "max_return_sigmas", "max_gap_days", "accept_anomalies"))


def split_ranges(n: int, valid_from: int, cfg: FxEnvConfig, source: str = "the market") -> dict[str, tuple[int, int]]:
    """The bar range of each split with a non-zero fraction (see the module docstring); raises one line
    naming the bars needed and the flags that change it when the series is too short."""
    fracs = {"train": cfg.train_frac, "val": cfg.val_frac, "test": cfg.test_frac}
    names = [k for k in SPLITS if fracs[k] > 0]
    need_len = {"train": cfg.episode_bars + 1, "val": 2, "test": 2}
    gaps = cfg.embargo * (len(names) - 1)
    usable = n - valid_from - gaps
    needed = valid_from + gaps + max(math.ceil(need_len[k] / fracs[k]) for k in names)
    ranges: dict[str, tuple[int, int]] = {}
    start, cum = valid_from, 0.0
    for i, name in enumerate(names):
        cum += fracs[name]
        stop = n if i == len(names) - 1 else valid_from + cfg.embargo * i + int(round(cum * max(usable, 0)))
        ranges[name] = (start, stop)
        start = stop + cfg.embargo
    too_short = usable <= 0 or any(hi - lo < need_len[k] for k, (lo, hi) in ranges.items())
    if too_short:
        raise ValueError(
            f"{source}: {n:,} bars, but these settings need at least {max(needed, n + 1):,}: {valid_from:,} to fill the "
            f"observation windows (--fx.window-*, --fx.agg-*, --fx.ma-window*, --fx.vol-window), {gaps:,} of embargo "
            f"between splits (--fx.embargo-bars, default --fx.episode-bars) and a training split of at least "
            f"--fx.episode-bars + 1 = {cfg.episode_bars + 1:,} bars at --fx.train-frac {cfg.train_frac:g}; use more "
            f"{'data' if cfg.data else 'bars (--fx.synthetic-n-bars)'}, a preset for this bar size, or smaller values "
            f"of those flags")
    return ranges


def explicit_ranges(cfg: FxEnvConfig, n: int, valid_from: int, source: str) -> dict[str, tuple[int, int]]:
    """``cfg.split_bounds`` as split ranges, checked against the series (one line naming what is wrong)."""
    b = list(cfg.split_bounds)
    names = dict(zip(SPLITS, ((b[0], b[1]), (b[2], b[3]), (b[4], b[5]))))
    if b[0] < valid_from or b[5] > n:
        raise ValueError(f"{source}: --fx.split-bounds {tuple(b)} must lie within bars [{valid_from}, {n}] (the bars "
                         f"before {valid_from} fill the observation windows)")
    if b[1] - b[0] < cfg.episode_bars + 1:
        raise ValueError(f"{source}: the training range of --fx.split-bounds has {b[1] - b[0]} bars; it needs at least "
                         f"--fx.episode-bars + 1 = {cfg.episode_bars + 1}")
    return {k: v for k, v in names.items() if v[1] > v[0]}


def load_market(cfg: FxEnvConfig, strict: bool = True) -> Market:
    """The market of ``cfg`` (file ``cfg.data`` or a synthetic market), checked and split; cached.
    ``strict=False`` accepts a series too short to split (only its ``all`` range can be traded)."""
    cfg.validate()
    key = _market_key(cfg)
    if key not in _MARKETS:
        _MARKETS[key] = build_market(_raw_bars(cfg), cfg, strict=False)
    market = _MARKETS[key]
    if strict and market.split_error is not None:
        raise ValueError(market.split_error)
    return market


def build_market(raw: Bars, cfg: FxEnvConfig, ranges: dict[str, tuple[int, int]] | None = None,
                 strict: bool = True) -> Market:
    """A :class:`Market` of ``raw`` bars (one-sided prices become mid; ``ranges``: splits chosen by the caller)."""
    conversion = load_bars(cfg.conversion_data, checks=data_checks(cfg)) if cfg.conversion_data is not None else None
    context = trading_context(cfg, conversion)
    bars, note = _to_mid(raw, cfg, context.pip)
    if len(bars) < 2:
        raise ValueError(f"{bars.source}: {len(bars)} bar(s); a market needs at least 2")
    bar_ns = bar_duration_ns(bars)
    valid_from = first_valid_bar(bars, cfg, bar_ns)
    if valid_from >= len(bars) - 1:
        raise ValueError(f"{bars.source}: {len(bars):,} bars, but the observation windows need about "
                         f"{lookback_estimate(cfg):,} bars of history before the first step (--fx.window-*, "
                         f"--fx.agg-*, --fx.ma-window*, --fx.vol-window); use "
                         f"{'more data' if cfg.data else 'more bars (--fx.synthetic-n-bars)'} or smaller windows")
    error = None
    if ranges is None and cfg.split_bounds is not None:
        ranges = explicit_ranges(cfg, len(bars), valid_from, bars.source)
    if ranges is None:
        try:
            ranges = split_ranges(len(bars), valid_from, cfg, bars.source)
        except ValueError as exc:
            if strict:
                raise
            ranges, error = {}, str(exc)
    notes = (note,) if note else ()
    return Market(bars, ranges, valid_from, bar_ns, context, notes, error)


def first_valid_bar(bars: Bars, cfg: FxEnvConfig, bar_ns: int | None = None) -> int:
    """The first bar whose observation windows all hold defined features."""
    probe = dataclasses.replace(cfg, obs_mode="price") if cfg.obs_mode == "price" else cfg
    norm = None if probe.obs_mode == "price" else _identity_norm(probe)
    return WindowFeatures(bars, probe, norm, device="cpu", bar_ns=bar_ns).valid_from


def _identity_norm(cfg: FxEnvConfig) -> FeatureNorm:
    import torch

    from envs.fx.features import TIMEFRAMES, scaled_columns

    k = len(scaled_columns(cfg))
    return FeatureNorm({key: torch.zeros(k, dtype=torch.float64) for key in TIMEFRAMES},
                       {key: torch.ones(k, dtype=torch.float64) for key in TIMEFRAMES})


def fit_norm(market: Market, cfg: FxEnvConfig, cache: bool = False) -> FeatureNorm | None:
    """Feature normalisation fitted on the training range (None in ``price`` obs mode); ``cache`` reuses
    the fit of a market that came from :func:`load_market`."""
    if cfg.obs_mode == "price":
        return None
    lo, hi = market.bounds("train")

    def fit() -> FeatureNorm:
        return FeatureNorm.fit(market.bars, cfg, lo, hi, bar_ns=market.bar_ns)

    if not cache:
        return fit()
    key = _market_key(cfg) + (cfg.mirror_augment,)
    if key not in _NORMS:
        _NORMS[key] = fit()
    return _NORMS[key]


def _market_from(data: Any, cfg: FxEnvConfig) -> tuple[Market, FxEnvConfig, bool]:
    """(market, cfg, whether the market is cached by config)."""
    if isinstance(data, (str, os.PathLike)):
        cfg = dataclasses.replace(cfg, data=str(data))
        data = None
    if data is None:
        return load_market(cfg, strict=False), cfg, True
    if isinstance(data, pd.DataFrame):
        data = load_bars(data, timezone=cfg.timezone, checks=data_checks(cfg))
    if isinstance(data, Bars):
        return build_market(data, cfg, strict=False), cfg, False
    if isinstance(data, Market):
        return data, cfg, False
    raise TypeError(f"data must be a file path, a pandas DataFrame, envs.fx.data.Bars, a Market or None "
                    f"(got {type(data).__name__})")


def make_fx_vector_env(cfg: FxEnvConfig, num_envs: int, seed: int, device: str = "cpu",
                       split: str = "train", data: Any = None, norm: FeatureNorm | None = None):
    """Training env: ``num_envs`` accounts with random episode starts in ``split``."""
    from envs.fx.vector import FxVectorEnv

    market, cfg, cached = _market_from(data, cfg)
    return FxVectorEnv(market.bars, cfg, num_envs=num_envs, seed=seed, device=device,
                       norm=norm if norm is not None else fit_norm(market, cfg, cached), split=split,
                       bounds=market.bounds(split), context=market.context, bar_ns=market.bar_ns)


def make_fx_eval_env(cfg: FxEnvConfig, split: str = "val", seed: int = 0, device: str = "cpu",
                     data: Any = None, norm: FeatureNorm | None = None, num_envs: int = 1):
    """Deterministic backtest env: ONE account (or ``num_envs`` identical ones, for batched backtests) over the
    whole ``split`` (``all``: the whole series) from its first bar with full windows. ``norm``: a fitted
    normalisation to use (a checkpoint's), else the training range's."""
    from envs.fx.vector import FxVectorEnv

    market, cfg, cached = _market_from(data, cfg)
    lo, hi = market.bounds(split)
    start = max(lo, market.valid_from)
    return FxVectorEnv(market.bars, cfg, num_envs=num_envs, seed=seed, device=device,
                       norm=norm if norm is not None else fit_norm(market, cfg, cached),
                       episode_bars=max(1, hi - 1 - start), start_mode="first", split=split, bounds=(lo, hi),
                       context=market.context, bar_ns=market.bar_ns)


__all__ = ["Market", "SPLITS", "WHOLE", "build_market", "first_valid_bar", "fit_norm", "load_market",
           "make_fx_eval_env", "make_fx_vector_env", "split_ranges"]
