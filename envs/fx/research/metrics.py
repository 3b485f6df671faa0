"""Financial metrics of a backtest.

Every metric is a pure function of numpy arrays, so it can be checked by hand.

Conventions (units)
-------------------
* ``equity``: account value after each step, in account currency, with the value *before*
  the first step at index 0, so ``len(equity) == n_steps + 1``. Period returns are simple
  returns ``equity[t+1] / equity[t] - 1`` (fractions, 0.01 = 1 %).
* ``positions``: the signed position held over each step (``len == n_steps``), in any unit
  (fraction of max position, lots, ...); only its sign and changes matter, except for
  turnover, which is in the same unit.
* Returned fractions are fractions (0.25 = 25 %), never percent.
* ``periods_per_year``: number of bars in a year; annualisation multiplies mean returns by
  it and standard deviations by its square root. :func:`infer_periods_per_year` derives it
  from bar times.

Edge cases are defined, never NaN or inf, so a report is numbers beside numbers: a ratio
whose denominator is zero is 0.0 when its numerator is zero (flat equity: Sharpe 0) and
``RATIO_CAP`` (100) with the numerator's sign otherwise (Sortino with no losing period,
Calmar with a gain and no drawdown, profit factor with wins and no losses). A profit factor
with no trades at all is 1.0 (nothing won, nothing lost), as is one whose trades all returned
zero. A window shorter than a year is not annualised: compounding three months into a year
turns +130 % into +2,700 %; ``annualised_return`` and ``calmar`` are then None and
``annualised_note`` says why (the Sharpe ratio's square-root scaling is kept, with its
bootstrap interval in the report).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

TRADING_DAYS_PER_YEAR = 252
"""Trading days used to annualise intraday and daily bars."""

RATIO_CAP = 100.0
"""The value of a ratio whose denominator is zero and numerator is not (with the numerator's sign)."""
MIN_YEARS_TO_ANNUALISE = 1.0
"""Windows shorter than this many years get no annualised return or Calmar ratio."""

METRIC_KEYS: tuple[str, ...] = (
    "total_return", "annualised_return", "annualised_volatility", "sharpe", "sortino", "max_drawdown",
    "calmar", "win_rate", "profit_factor", "n_trades", "turnover", "exposure", "costs_paid", "swap", "years",
)


def as_1d(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf at index {int(np.flatnonzero(~np.isfinite(arr))[0])}")
    return arr


def _ratio(num: float, den: float) -> float:
    """num / den with the module's zero-denominator rule (0 for 0/0, +-RATIO_CAP otherwise), capped at +-RATIO_CAP."""
    if den > 0:
        return float(max(-RATIO_CAP, min(RATIO_CAP, num / den)))
    if num == 0:
        return 0.0
    return math.copysign(RATIO_CAP, num)


def period_returns(equity: Sequence[float] | np.ndarray) -> np.ndarray:
    """Simple returns between consecutive equity values (fractions), length ``len(equity) - 1``."""
    eq = as_1d(equity, "equity")
    if np.any(eq[:-1] <= 0):
        # a wiped-out account: returns after it are undefined; treat them as flat
        prev = np.where(eq[:-1] > 0, eq[:-1], 1.0)
        return np.where(eq[:-1] > 0, eq[1:] / prev - 1.0, 0.0)
    return eq[1:] / eq[:-1] - 1.0


def total_return(equity: Sequence[float] | np.ndarray) -> float:
    """``equity[-1] / equity[0] - 1`` (fraction); 0.0 for fewer than two points."""
    eq = as_1d(equity, "equity")
    if eq.size < 2 or eq[0] == 0:
        return 0.0
    return float(eq[-1] / eq[0] - 1.0)


def annualised_return(equity: Sequence[float] | np.ndarray, periods_per_year: float) -> float:
    """Compound annual growth rate (fraction): ``(equity[-1]/equity[0]) ** (ppy / n_periods) - 1``.

    -1.0 when the account ended at or below zero; 0.0 for fewer than two points.
    """
    eq = as_1d(equity, "equity")
    n = eq.size - 1
    if n < 1 or eq[0] <= 0:
        return 0.0
    growth = eq[-1] / eq[0]
    if growth <= 0:
        return -1.0
    with np.errstate(over="ignore"):
        value = float(np.exp(np.log(growth) * periods_per_year / n) - 1.0)
    return value if math.isfinite(value) else math.inf


def annualised_volatility(returns: Sequence[float] | np.ndarray, periods_per_year: float) -> float:
    """Sample standard deviation (ddof=1) of period returns times ``sqrt(periods_per_year)``; 0.0 for < 2 returns."""
    r = as_1d(returns, "returns")
    if r.size < 2:
        return 0.0
    return float(r.std(ddof=1) * math.sqrt(periods_per_year))


def _excess(returns: np.ndarray, periods_per_year: float, rf: float) -> np.ndarray:
    # rf is an annual rate; convert to the compounding-equivalent per-period rate
    return returns - ((1.0 + rf) ** (1.0 / periods_per_year) - 1.0) if rf else returns


def sharpe(returns: Sequence[float] | np.ndarray, periods_per_year: float, rf: float = 0.0) -> float:
    """Annualised Sharpe ratio: ``mean(r - rf_p) / std(r, ddof=1) * sqrt(ppy)``.

    ``rf`` is an annual risk-free rate (fraction). 0.0 when there are fewer than two returns
    or their standard deviation is zero (flat or constant returns).
    """
    r = as_1d(returns, "returns")
    if r.size < 2:
        return 0.0
    sd = float(r.std(ddof=1))
    if sd <= 1e-15 * max(1.0, float(np.abs(r).max())):
        return 0.0
    return float(_excess(r, periods_per_year, rf).mean() / sd * math.sqrt(periods_per_year))


def sortino(returns: Sequence[float] | np.ndarray, periods_per_year: float, rf: float = 0.0) -> float:
    """Annualised Sortino ratio: ``mean(r - rf_p) / downside_dev * sqrt(ppy)``.

    ``downside_dev = sqrt(mean(min(r - rf_p, 0) ** 2))`` over *all* periods. With no losing
    period it is ``inf`` if the mean excess return is positive, else 0.0; 0.0 for no returns.
    """
    r = as_1d(returns, "returns")
    if r.size == 0:
        return 0.0
    ex = _excess(r, periods_per_year, rf)
    downside = float(np.sqrt(np.mean(np.minimum(ex, 0.0) ** 2)))
    return _ratio(float(ex.mean()) * math.sqrt(periods_per_year), downside)


def drawdown(equity: Sequence[float] | np.ndarray) -> np.ndarray:
    """Drawdown at each point, ``1 - equity / running peak``, as a non-negative fraction."""
    eq = as_1d(equity, "equity")
    if eq.size == 0:
        return eq
    peak = np.maximum.accumulate(eq)
    return np.where(peak > 0, 1.0 - eq / np.where(peak > 0, peak, 1.0), 0.0)


def max_drawdown(equity: Sequence[float] | np.ndarray) -> float:
    """Largest peak-to-trough loss as a positive fraction (0.5 = lost half from a peak); 0.0 if none."""
    dd = drawdown(equity)
    return float(dd.max()) if dd.size else 0.0


def calmar(equity: Sequence[float] | np.ndarray, periods_per_year: float) -> float:
    """Annualised return / max drawdown; 0.0 or inf (by the sign of the return) when there is no drawdown."""
    return _ratio(annualised_return(equity, periods_per_year), max_drawdown(equity))


def trade_segments(positions: Sequence[float] | np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` step indices of each trade: a maximal run of non-zero positions of one sign.

    Resizing without crossing zero (0.5 -> 1.0) stays one trade; a flip (1 -> -1) ends one
    trade and starts another.
    """
    sign = np.sign(as_1d(positions, "positions"))
    segments: list[tuple[int, int]] = []
    start = None
    for t, s in enumerate(sign):
        if start is not None and s != sign[start]:
            segments.append((start, t - 1))
            start = None
        if start is None and s != 0:
            start = t
    if start is not None:
        segments.append((start, sign.size - 1))
    return segments


def trade_returns(positions: Sequence[float] | np.ndarray, equity: Sequence[float] | np.ndarray) -> np.ndarray:
    """Return of each trade on account equity (fractions), in the order the trades opened.

    A trade over steps ``a..b`` earns ``equity[b + 1 + x] / equity[a] - 1`` where ``equity[a]``
    is the equity before its entry step (so the entry cost counts) and ``x`` is 1 when the next
    step goes flat, so that step's exit cost counts too (a flat step has no market P&L). On a
    flip, the closing step belongs to the new trade. A trade still open at the end is marked
    at the last equity.
    """
    pos = as_1d(positions, "positions")
    eq = as_1d(equity, "equity")
    if eq.size != pos.size + 1:
        raise ValueError(f"equity must have one more point than positions (the value before the first step): "
                         f"got {eq.size} equity points for {pos.size} positions")
    out = []
    for a, b in trade_segments(pos):
        end = b + 1
        if b + 1 < pos.size and pos[b + 1] == 0:
            end += 1
        out.append(eq[end] / eq[a] - 1.0 if eq[a] > 0 else 0.0)
    return np.asarray(out, dtype=np.float64)


def n_trades(positions: Sequence[float] | np.ndarray) -> int:
    """Number of trades (see :func:`trade_segments`)."""
    return len(trade_segments(positions))


def win_rate(trade_rets: Sequence[float] | np.ndarray) -> float:
    """Fraction of trades with a strictly positive return; 0.0 with no trades."""
    r = as_1d(trade_rets, "trade returns")
    return float(np.mean(r > 0)) if r.size else 0.0


def profit_factor(trade_rets: Sequence[float] | np.ndarray) -> float:
    """Gross wins / gross losses (sum of positive returns / -sum of negative returns).

    ``RATIO_CAP`` with wins and no losses; 1.0 with no trades or only zero-return trades (nothing
    won, nothing lost); 0.0 with losses and no wins.
    """
    r = as_1d(trade_rets, "trade returns")
    wins, losses = float(r[r > 0].sum()), float(-r[r < 0].sum())
    return 1.0 if wins == 0.0 and losses == 0.0 else _ratio(wins, losses)


def turnover(positions: Sequence[float] | np.ndarray, periods_per_year: float | None = None) -> float:
    """Traded size: ``sum |position[t] - position[t-1]|`` (starting flat) divided by the number of steps.

    That is the average absolute position change per bar, in position units; with
    ``periods_per_year`` it is scaled to a year (1.0 = one full-size one-way trade a year).
    0.0 with no steps.
    """
    pos = as_1d(positions, "positions")
    if pos.size == 0:
        return 0.0
    per_bar = float(np.abs(np.diff(pos, prepend=0.0)).sum() / pos.size)
    return per_bar * periods_per_year if periods_per_year is not None else per_bar


def exposure(positions: Sequence[float] | np.ndarray) -> float:
    """Fraction of steps with a non-zero position; 0.0 with no steps."""
    pos = as_1d(positions, "positions")
    return float(np.mean(pos != 0)) if pos.size else 0.0


def infer_periods_per_year(times: Sequence[Any] | np.ndarray) -> float:
    """Bars per year from bar open times (``datetime64`` or int64 ns since the epoch).

    Intraday and daily bars: ``TRADING_DAYS_PER_YEAR`` x the median number of bars per
    calendar day (UTC) that has any bar, leaving out the first and last day (usually
    partial), so weekend and holiday gaps (days without bars) do not distort it (1-minute
    bars traded 24 h -> 252 x 1440; daily bars -> 252). With fewer than three calendar days
    there is no full day to count, and a day is taken as ``24 h / median bar spacing`` bars.
    Bars two or more days apart (weekly, monthly): 365.25 days / median spacing.
    """
    t = np.asarray(times)
    if t.dtype.kind == "M":
        t = t.astype("datetime64[ns]").astype(np.int64)
    t = t.astype(np.int64).reshape(-1)
    if t.size < 2:
        raise ValueError(f"cannot infer periods per year from {t.size} bar time(s); pass periods_per_year")
    spacing = np.diff(t)
    if np.any(spacing <= 0):
        raise ValueError(f"bar times must be strictly increasing (first offending index {int(np.argmax(spacing <= 0)) + 1})")
    day_ns = 86_400 * 10**9
    median_spacing = float(np.median(spacing))
    if median_spacing >= 2 * day_ns:
        return 365.25 * day_ns / median_spacing
    _, bars_per_day = np.unique(t // day_ns, return_counts=True)
    if bars_per_day.size < 3:
        return float(TRADING_DAYS_PER_YEAR * round(day_ns / median_spacing))
    return float(TRADING_DAYS_PER_YEAR * np.median(bars_per_day[1:-1]))


class TrajectoryLike(Protocol):
    """What :func:`compute_metrics` reads (``envs.fx.research.backtest.Trajectory`` has it)."""

    @property
    def equity_curve(self) -> np.ndarray: ...  # n_steps + 1 values, starting equity first
    position: np.ndarray
    costs: np.ndarray


def compute_metrics(traj: TrajectoryLike, periods_per_year: float) -> dict[str, Any]:
    """All metrics of one backtest, keyed by :data:`METRIC_KEYS` (plus ``annualised_note`` for a window
    shorter than :data:`MIN_YEARS_TO_ANNUALISE`).

    ``turnover`` is annualised (see :func:`turnover`), ``costs_paid`` and ``swap`` are totals in
    account currency, ``n_trades`` is an int, ``years`` the window's length in years of bars;
    the rest follow the functions above.
    """
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    eq = traj.equity_curve
    pos = np.asarray(traj.position, dtype=np.float64)
    rets = period_returns(eq)
    trades = trade_returns(pos, eq)
    years = rets.size / periods_per_year
    out: dict[str, Any] = {
        "total_return": total_return(eq),
        "annualised_return": annualised_return(eq, periods_per_year),
        "annualised_volatility": annualised_volatility(rets, periods_per_year),
        "sharpe": sharpe(rets, periods_per_year),
        "sortino": sortino(rets, periods_per_year),
        "max_drawdown": max_drawdown(eq),
        "calmar": calmar(eq, periods_per_year),
        "win_rate": win_rate(trades),
        "profit_factor": profit_factor(trades),
        "n_trades": int(trades.size),
        "turnover": turnover(pos, periods_per_year),
        "exposure": exposure(pos),
        "costs_paid": float(np.sum(traj.costs)),
        "swap": float(np.sum(getattr(traj, "swap", 0.0))),
        "years": float(years),
    }
    if years < MIN_YEARS_TO_ANNUALISE:
        out["annualised_return"] = out["calmar"] = None
        out["annualised_note"] = (f"a {years:.2f}-year window is too short to annualise honestly: "
                                  f"see total_return ({out['total_return']:+.2%})")
    return out
