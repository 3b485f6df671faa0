"""What the simulator reads per bar, computed once: prices, spreads, rollover nights, swap
rates and the quote -> account currency rate; and the pair/account context they come from.

Everything is a float64 (or int64 time) tensor of length ``len(bars)`` on the env's device.

Currency conversion (``TradingContext.conversion``):
* ``quote``: the account currency is the pair's quote currency (USD on EURUSD): rate 1.
* ``base``: it is the base currency (USD on USDJPY): an amount in quote currency converts
  at 1 / price, the price at which the amount arises (the fill, the mark, the extreme).
* ``fixed``: neither leg; a constant rate from ``--fx.conversion-rate``.
* ``series``: neither leg; the close of the last bar of ``--fx.conversion-data`` that has
  closed by the moment (the bar's open for fills, its close for marks): never a later rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from envs.fx.calendar import rollover_nights, swap_schedule
from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars
from envs.fx.features import bar_duration_ns
from envs.fx.instruments import Pair, resolve_pair


@dataclass(frozen=True)
class TradingContext:
    """The pair, the pip, the account currency and how quote amounts become account amounts."""

    pair: Pair
    pip: float
    account: str
    conversion: str
    conversion_bars: Bars | None = None
    conversion_invert: bool = False

    @property
    def describe(self) -> str:
        how = {"quote": "no conversion", "base": "quote amounts at 1 / price",
               "fixed": "a fixed rate", "series": "the conversion series"}[self.conversion]
        return f"{self.pair.name}, pip {self.pip:g}, account in {self.account} ({how})"


def trading_context(cfg: FxEnvConfig, conversion_bars: Bars | None = None) -> TradingContext:
    """The context of ``cfg`` (``conversion_bars``: the loaded ``--fx.conversion-data``, when given)."""
    pair = resolve_pair(cfg.pair, cfg.data)
    pip = cfg.pip_size if cfg.pip_size is not None else pair.pip_size
    account = cfg.account_currency.upper()
    if account == pair.quote:
        return TradingContext(pair, pip, account, "quote")
    if account == pair.base:
        return TradingContext(pair, pip, account, "base")
    if cfg.conversion_rate is not None:
        return TradingContext(pair, pip, account, "fixed")
    if cfg.conversion_data is not None and conversion_bars is not None:
        conv = (cfg.conversion_pair or "").upper()
        if conv == pair.quote + account:
            return TradingContext(pair, pip, account, "series", conversion_bars, False)
        if conv == account + pair.quote:
            return TradingContext(pair, pip, account, "series", conversion_bars, True)
        raise ValueError(f"--fx.conversion-pair {conv}: must be {pair.quote}{account} or {account}{pair.quote} "
                         f"to convert {pair.quote} (the quote currency of {pair.name}) into {account}")
    raise ValueError(f"--fx.account-currency {account}: neither leg of {pair.name}; give --fx.conversion-rate "
                     f"(a fixed {pair.quote}->{account} rate) or --fx.conversion-data with --fx.conversion-pair")


def _asof_rate(ctx: TradingContext, at_ns: np.ndarray) -> np.ndarray:
    """Quote -> account rate from the conversion series as of each time (last bar closed by then; NaN
    before its first bar has closed: the env refuses to trade such bars)."""
    cb = ctx.conversion_bars
    open_ns = cb.time.astype("datetime64[ns]").astype(np.int64)
    close_ns = open_ns + bar_duration_ns(cb)
    idx = np.searchsorted(close_ns, at_ns, side="right") - 1
    price = np.where(idx >= 0, cb.close[np.maximum(idx, 0)], np.nan)
    return 1.0 / price if ctx.conversion_invert else price


def market_arrays(bars: Bars, cfg: FxEnvConfig, ctx: TradingContext, device: torch.device,
                  bar_ns: int | None = None, mirrored: bool = False) -> dict[str, torch.Tensor]:
    """Per-bar tensors the simulator needs (see the module docstring).

    ``hs_*``: half spread at the bar's open/high/low/close (price units); ``roll_before`` /
    ``roll_inside``: nights booked in the gap before the bar opens / during the bar;
    ``swap_long`` / ``swap_short``: the rates in force (quote currency per unit per night;
    exchanged on a ``mirrored`` series, the inverted pair); ``rate_open`` / ``rate_close``:
    quote -> account rates (ones for ``base`` conversion, which converts at 1 / price)."""
    n = len(bars)
    bar_ns = bar_ns if bar_ns is not None else bar_duration_ns(bars)
    open_ns = bars.time.astype("datetime64[ns]").astype(np.int64)
    close_ns = open_ns + bar_ns
    if bars.spread is not None:
        hs = 0.5 * bars.spread * cfg.cost_scale
    else:
        hs = np.full((n, 4), 0.5 * cfg.spread_pips * ctx.pip * cfg.cost_scale)
    before, inside = rollover_nights(open_ns, close_ns, cfg.rollover_time, cfg.rollover_timezone, cfg.triple_swap_day)
    default_long, default_short = ctx.pair.indicative_swaps
    if cfg.swap_data is not None:
        longs, shorts = swap_schedule(cfg.swap_data, close_ns)
    else:
        longs = np.full(n, default_long if cfg.swap_long is None else cfg.swap_long)
        shorts = np.full(n, default_short if cfg.swap_short is None else cfg.swap_short)
    if mirrored:
        longs, shorts = shorts, longs
    if ctx.conversion == "fixed":
        r_open = r_close = np.full(n, float(cfg.conversion_rate))
    elif ctx.conversion == "series":
        r_open, r_close = _asof_rate(ctx, open_ns), _asof_rate(ctx, close_ns)
    else:
        r_open = r_close = np.ones(n)
    f64 = lambda a: torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, device=device)  # noqa: E731
    return {
        "open": f64(bars.open), "high": f64(bars.high), "low": f64(bars.low), "close": f64(bars.close),
        "hs_open": f64(hs[:, 0]), "hs_high": f64(hs[:, 1]), "hs_low": f64(hs[:, 2]), "hs_close": f64(hs[:, 3]),
        "roll_before": f64(before), "roll_inside": f64(inside), "swap_long": f64(longs), "swap_short": f64(shorts),
        "rate_open": f64(r_open), "rate_close": f64(r_close),
        "time": torch.as_tensor(open_ns, dtype=torch.int64, device=device),
    }
