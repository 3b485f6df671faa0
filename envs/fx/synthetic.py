"""Synthetic FX markets: the embedded default data, so that the engine trains and tests without
any download, and so that experiments have a known ground truth.

Kinds: ``gbm`` (geometric Brownian motion), ``randomwalk`` (zero-drift GBM: nothing to learn),
``ou`` (Ornstein-Uhlenbeck mean reversion of log price: a z-score reversion rule earns well
above a 1-pip round trip), ``regime`` (a Markov chain over trend-up, trend-down, mean-revert and
high-vol regimes). Prices are EURUSD-like: near 1.10, 5 decimals, ~8 % annual volatility
(annualised over 252 days x 24 h of bars), a pip or two of range per 1-minute bar. Each bar opens
at the previous close; high/low come from a Brownian-bridge draw of the path inside the bar, so
OHLC is always consistent. With ``skip_weekends`` the FX week is closed from Friday 22:00 UTC to
Sunday 22:00 UTC and the timestamps have real gaps. Everything is a deterministic function of
the arguments (``numpy.random.Generator(PCG64(seed))``).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from envs.fx.data import Bars

KINDS = ("gbm", "ou", "regime", "randomwalk")
REGIMES = ("trend_up", "trend_down", "mean_revert", "high_vol")
SECONDS_PER_YEAR = 252 * 24 * 3600  # trading year used to annualise volatility
WEEK_SECONDS = 7 * 24 * 3600
OPEN_SECONDS_PER_WEEK = 5 * 24 * 3600
_SUNDAY_OPEN = 3 * 24 * 3600 + 22 * 3600  # 1970-01-04 (a Sunday) 22:00 UTC, seconds after the epoch

Kind = Literal["gbm", "ou", "regime", "randomwalk"]


def bars_per_year(bar_seconds: int) -> float:
    """Bars in the 252-day x 24-hour year used to annualise volatility and Sharpe ratios."""
    return SECONDS_PER_YEAR / bar_seconds


def generate(kind: Kind, n_bars: int, seed: int, *, bar_seconds: int = 60, start: str = "2024-01-01",
             start_price: float = 1.10, annual_vol: float = 0.08, drift: float = 0.0,
             half_life_bars: float = 60.0, ou_sigma_pips: float | None = None, ou_level: float | None = None,
             switch_prob: float = 0.002, trend_strength: float = 0.08, high_vol_mult: float = 2.0,
             pip: float = 1e-4, decimals: int | None = 5, base_volume: float = 100.0,
             skip_weekends: bool = True, level_drift: float = 0.0, weekend_gap_hours: float = 0.0) -> Bars:
    """Generate ``n_bars`` OHLCV bars of a synthetic FX market.

    Common: ``annual_vol`` is the (long-run) volatility of log returns annualised with
    ``bars_per_year(bar_seconds)``; ``decimals`` rounds prices (None keeps full precision);
    ``base_volume`` is the mean tick volume of a normal-volatility bar.

    - gbm: log price drifts by ``drift`` per year (default 0) with ``annual_vol``.
    - randomwalk: gbm with zero drift (``drift`` must stay 0).
    - ou: log price reverts to ``log(ou_level)`` (default ``start_price``) with half-life
      ``half_life_bars``. Its stationary std is ``ou_sigma_pips`` pips at the level; by default it
      is set so that the per-bar innovation has the ``annual_vol`` scale (~9.7 pips for the
      defaults: 1-minute bars, 8 %, half-life 60).
    - regime: every bar the regime switches with probability ``switch_prob`` to one of the other
      three (uniformly). trend_up/trend_down drift by +/- ``trend_strength`` x the per-bar vol each
      bar; mean_revert pulls log price back to its level at regime entry with half-life
      ``half_life_bars``; high_vol scales the vol by ``high_vol_mult``. Vols are scaled so that
      the long-run annual vol is ``annual_vol``. ``regime_labels`` returns the regime of each bar.

    ``level_drift`` (ou): the equilibrium level follows a random walk with this annualised
    volatility instead of staying fixed, so the level a rule must know drifts slowly.
    ``weekend_gap_hours``: the first bar after a gap in the times (the weekend) opens away from
    the last close by a normal return with the volatility of that many hours of trading; the
    path continues from the gapped open (an OU path then reverts from it). Both draw from their
    own stream, so the rest of the market is the same as without them.
    """
    _check(kind, n_bars, bar_seconds, start_price, annual_vol, drift, half_life_bars, ou_sigma_pips, ou_level,
           switch_prob, trend_strength, high_vol_mult, pip, decimals, base_volume)
    for name, value in (("level_drift", level_drift), ("weekend_gap_hours", weekend_gap_hours)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"synthetic market: {name} must be a finite number >= 0, got {value!r}")
    rng = np.random.Generator(np.random.PCG64(seed))
    sigma = annual_vol / math.sqrt(bars_per_year(bar_seconds))  # per-bar std of log returns
    x0 = math.log(start_price)
    times = session_times(n_bars, bar_seconds, start, skip_weekends)
    extra = np.random.Generator(np.random.PCG64([seed, 1]))  # the gap and level-drift stream
    gaps = np.zeros(n_bars)
    if weekend_gap_hours > 0 and n_bars > 1:
        after_gap = np.flatnonzero(np.diff(times.astype(np.int64)) > bar_seconds * 10**9) + 1
        hour_sigma = annual_vol / math.sqrt(bars_per_year(3600))
        gaps[after_gap] = hour_sigma * math.sqrt(weekend_gap_hours) * extra.standard_normal(len(after_gap))

    if kind in ("gbm", "randomwalk"):
        steps = (drift - 0.5 * annual_vol ** 2) / bars_per_year(bar_seconds) + sigma * rng.standard_normal(n_bars)
        logc = x0 + np.cumsum(steps + gaps)
        bar_sigma = np.full(n_bars, sigma)
    elif kind == "ou":
        phi = 0.5 ** (1.0 / half_life_bars)
        level = math.log(ou_level if ou_level is not None else start_price)
        if ou_sigma_pips is not None:
            innov = (ou_sigma_pips * pip / math.exp(level)) * math.sqrt(1.0 - phi * phi)
        else:
            innov = sigma
        shocks = innov * rng.standard_normal(n_bars)
        levels = np.full(n_bars, level)
        if level_drift > 0:
            levels = level + np.cumsum(level_drift / math.sqrt(bars_per_year(bar_seconds))
                                       * extra.standard_normal(n_bars))
        logc = _ar1(np.full(n_bars, phi), (1.0 - phi) * levels + shocks, x0, gaps)
        bar_sigma = np.full(n_bars, innov)
    else:
        regimes = _regime_sequence(rng, n_bars, switch_prob)
        mult = np.array([1.0, 1.0, 1.0, high_vol_mult])
        base = sigma / math.sqrt(float(np.mean(mult ** 2)))  # long-run variance matches annual_vol
        bar_sigma = base * mult[regimes]
        shocks = bar_sigma * rng.standard_normal(n_bars)
        trend = np.array([trend_strength, -trend_strength, 0.0, 0.0])[regimes] * base
        logc = _regime_path(regimes, shocks + trend, 0.5 ** (1.0 / half_life_bars), x0, gaps)

    logo = np.concatenate(([x0], logc[:-1])) + gaps
    # Brownian-bridge extremes between open and close; each is at least max/min(open, close).
    spread = np.abs(logc - logo)
    var = bar_sigma ** 2
    up = 0.5 * (logo + logc + np.sqrt(spread ** 2 - 2.0 * var * np.log1p(-rng.random(n_bars))))
    down = 0.5 * (logo + logc - np.sqrt(spread ** 2 - 2.0 * var * np.log1p(-rng.random(n_bars))))
    o, c, h, lo = np.exp(logo), np.exp(logc), np.exp(up), np.exp(down)
    if decimals is not None:
        o, c, h, lo = (np.round(a, decimals) for a in (o, c, h, lo))
    h = np.maximum(h, np.maximum(o, c))
    lo = np.minimum(lo, np.minimum(o, c))
    volume = rng.poisson(base_volume * bar_sigma / max(sigma, 1e-300)).astype(np.float64)
    source = (f"synthetic:{kind}(n_bars={n_bars}, seed={seed}, bar_seconds={bar_seconds}, "
              f"annual_vol={annual_vol:g}, start={start})")
    return Bars(times, o, h, lo, c, volume, source)


def regime_labels(n_bars: int, seed: int, switch_prob: float = 0.002) -> np.ndarray:
    """The regime index (into ``REGIMES``) of each bar of ``generate("regime", n_bars, seed, ...)``."""
    if not 0.0 <= switch_prob <= 1.0:
        raise ValueError(f"switch_prob must be in [0, 1], got {switch_prob}")
    return _regime_sequence(np.random.Generator(np.random.PCG64(seed)), n_bars, switch_prob)


def _regime_sequence(rng: np.random.Generator, n: int, switch_prob: float) -> np.ndarray:
    k = len(REGIMES)
    first = int(rng.integers(k))
    switch = rng.random(n) < switch_prob
    switch[0] = False
    hops = np.where(switch, rng.integers(1, k, size=n), 0)
    return ((first + np.cumsum(hops)) % k).astype(np.int64)


def _ar1(a: np.ndarray, b: np.ndarray, x0: float, gaps: np.ndarray | None = None) -> np.ndarray:
    """x[t] = a[t] * (x[t-1] + gaps[t]) + b[t] with x[-1] = x0 (a plain loop: cheap next to the draws)."""
    out = np.empty(len(a))
    x = x0
    g = gaps.tolist() if gaps is not None else [0.0] * len(a)
    for t, (at, bt, gt) in enumerate(zip(a.tolist(), b.tolist(), g)):
        x = at * (x + gt) + bt
        out[t] = x
    return out


def _regime_path(regimes: np.ndarray, steps: np.ndarray, phi: float, x0: float,
                 gaps: np.ndarray | None = None) -> np.ndarray:
    """Log closes: random-walk steps, except that mean_revert bars pull back to their entry level."""
    revert = REGIMES.index("mean_revert")
    out = np.empty(len(steps))
    x, anchor, prev = x0, x0, -1
    g = gaps.tolist() if gaps is not None else [0.0] * len(steps)
    for t, (r, s, gt) in enumerate(zip(regimes.tolist(), steps.tolist(), g)):
        x = x + gt
        if r == revert:
            if prev != revert:
                anchor = x
            x = anchor + phi * (x - anchor) + s
        else:
            x = x + s
        out[t] = x
        prev = r
    return out


def session_times(n_bars: int, bar_seconds: int, start: str = "2024-01-01",
                  skip_weekends: bool = True) -> np.ndarray:
    """``n_bars`` bar open times (naive UTC ``datetime64[ns]``) on a ``bar_seconds`` grid from
    ``start``; with ``skip_weekends`` those from Friday 22:00 to Sunday 22:00 UTC are left out."""
    stamp = pd.Timestamp(start)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    t0 = stamp.value // 1_000_000_000
    if not skip_weekends:
        grid = t0 + bar_seconds * np.arange(n_bars, dtype=np.int64)
    else:
        count = int(n_bars * WEEK_SECONDS / OPEN_SECONDS_PER_WEEK) + WEEK_SECONDS // bar_seconds + 2
        grid = t0 + bar_seconds * np.arange(count, dtype=np.int64)
        grid = grid[(grid - _SUNDAY_OPEN) % WEEK_SECONDS < OPEN_SECONDS_PER_WEEK][:n_bars]
        if len(grid) < n_bars:
            raise ValueError(f"bar_seconds={bar_seconds} from start={start!r} never lands inside the FX week "
                             "(Sunday 22:00 to Friday 22:00 UTC); use skip_weekends=False or another start")
    return (grid * 1_000_000_000).astype("datetime64[ns]")


def _check(kind: str, n_bars: int, bar_seconds: int, start_price: float, annual_vol: float, drift: float,
           half_life_bars: float, ou_sigma_pips: float | None, ou_level: float | None, switch_prob: float,
           trend_strength: float, high_vol_mult: float, pip: float, decimals: int | None,
           base_volume: float) -> None:
    def bad(name: str, why: str) -> None:
        raise ValueError(f"synthetic market: {name} {why}")

    if kind not in KINDS:
        bad("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(n_bars, (int, np.integer)) or n_bars < 1:
        bad("n_bars", f"must be an integer >= 1, got {n_bars!r}")
    if not isinstance(bar_seconds, (int, np.integer)) or bar_seconds < 1:
        bad("bar_seconds", f"must be an integer >= 1, got {bar_seconds!r}")
    for name, value in (("start_price", start_price), ("pip", pip), ("half_life_bars", half_life_bars),
                        ("high_vol_mult", high_vol_mult)):
        if not (math.isfinite(value) and value > 0):
            bad(name, f"must be a finite number > 0, got {value!r}")
    for name, value in (("annual_vol", annual_vol), ("trend_strength", trend_strength),
                        ("base_volume", base_volume)):
        if not (math.isfinite(value) and value >= 0):
            bad(name, f"must be a finite number >= 0, got {value!r}")
    if not math.isfinite(drift):
        bad("drift", f"must be finite, got {drift!r}")
    if kind == "randomwalk" and drift != 0.0:
        bad("drift", f"must be 0 for kind='randomwalk' (use kind='gbm' for a drift), got {drift!r}")
    if ou_sigma_pips is not None and not (math.isfinite(ou_sigma_pips) and ou_sigma_pips >= 0):
        bad("ou_sigma_pips", f"must be a finite number >= 0 or None, got {ou_sigma_pips!r}")
    if ou_level is not None and not (math.isfinite(ou_level) and ou_level > 0):
        bad("ou_level", f"must be a finite number > 0 or None, got {ou_level!r}")
    if not 0.0 <= switch_prob <= 1.0:
        bad("switch_prob", f"must be in [0, 1], got {switch_prob!r}")
    if decimals is not None and (not isinstance(decimals, (int, np.integer)) or decimals < 0):
        bad("decimals", f"must be an integer >= 0 or None, got {decimals!r}")


_PARAM_NAMES = tuple(p for p in inspect.signature(generate).parameters if p not in ("kind", "n_bars", "seed",
                                                                                      "bar_seconds"))


@dataclass
class SyntheticSpec:
    """A synthetic market as data: ``generate_from_spec(spec)`` rebuilds it exactly.
    ``params`` holds any other keyword argument of ``generate`` (e.g. ``{"half_life_bars": 30}``)."""

    kind: str = "regime"
    n_bars: int = 60_000
    seed: int = 0
    bar_seconds: int = 60
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SyntheticSpec":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"SyntheticSpec: unknown field(s) {sorted(unknown)}")
        return cls(**d)


def generate_from_spec(spec: SyntheticSpec) -> Bars:
    """``generate(spec.kind, spec.n_bars, spec.seed, bar_seconds=spec.bar_seconds, **spec.params)``."""
    unknown = sorted(set(spec.params) - set(_PARAM_NAMES))
    if unknown:
        raise ValueError(f"SyntheticSpec.params: unknown parameter(s) {unknown}; valid: {', '.join(_PARAM_NAMES)}")
    return generate(spec.kind, spec.n_bars, spec.seed, bar_seconds=spec.bar_seconds,  # type: ignore[arg-type]
                    **spec.params)
