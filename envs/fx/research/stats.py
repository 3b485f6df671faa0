"""Is the Sharpe ratio evidence of an edge? Bootstrap intervals and the probabilistic and deflated Sharpe ratios.

* :func:`block_bootstrap` resamples a return series in circular blocks (Politis & Romano
  1992), so serial dependence within a block survives the resampling. FxAI uses blocks of
  about one trading day of bars (:func:`bars_per_day`): intraday returns are correlated
  through the day (a position held for hours, volatility clusters), days much less so.
  Percentile intervals for the annualised Sharpe ratio, the total return and the maximum
  drawdown come from the same resamples. A series shorter than :data:`MIN_BLOCKS` days is cut
  into :data:`MIN_BLOCKS` shorter blocks instead (:func:`block_length`): with one block as long
  as the series every resample is a rotation of it, and the interval collapses to a point.
* :func:`verdict` says "edge" only when the deflated Sharpe ratio reaches the level AND the
  series spans at least :data:`MIN_BLOCKS` days: a few hours with one or two trades can show
  a PSR near 1 (their returns are mostly zeros), which is no evidence of anything.
* :func:`probabilistic_sharpe` (Bailey & López de Prado 2012) is the probability that the
  true Sharpe ratio exceeds a benchmark, given the sample's length, skewness and kurtosis::

      PSR(SR*) = Phi( (SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )

  with per-period (not annualised) Sharpe ratios, g3 the skewness and g4 the (non-excess)
  kurtosis of the returns.
* :func:`deflated_sharpe` (Bailey & López de Prado 2014) is the PSR against the Sharpe ratio
  the best of ``n_trials`` skill-less trials would show::

      SR* = sqrt(V) ((1 - e) Phi^-1(1 - 1/N) + e Phi^-1(1 - 1/(N exp(1))))

  with e Euler's constant and V the variance of the trials' Sharpe estimates (the sampling
  variance of one estimate when only one trial was run). The paper's own example (1,250
  daily returns, annualised SR 2.5, N = 100, V = 1/2 a year, g3 = -3, g4 = 10) gives 0.9004;
  the tests check it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

EULER = 0.5772156649015329


def moments(returns: np.ndarray) -> tuple[float, float, float]:
    """(per-period Sharpe, skewness, non-excess kurtosis) of a return series (0, 0, 3 when it is constant)."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2 or float(r.std(ddof=1)) <= 1e-15 * max(1.0, float(np.abs(r).max())):
        return 0.0, 0.0, 3.0
    sr = float(r.mean() / r.std(ddof=1))
    return sr, float(sps.skew(r, bias=False)) if r.size > 2 else 0.0, \
        float(sps.kurtosis(r, fisher=False, bias=False)) if r.size > 3 else 3.0


def sharpe_std(sr: float, n: int, skew: float = 0.0, kurt: float = 3.0) -> float:
    """Standard error of a per-period Sharpe estimate from ``n`` returns (Mertens 2002)."""
    var = (1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr) / max(n - 1, 1)
    return math.sqrt(max(var, 0.0))


def probabilistic_sharpe(sr: float, n: int, skew: float = 0.0, kurt: float = 3.0, benchmark: float = 0.0) -> float:
    """P(true per-period Sharpe > ``benchmark``) given the estimate ``sr`` from ``n`` returns."""
    if n < 2:
        return 0.5
    se = sharpe_std(sr, n, skew, kurt)
    if se <= 0.0:
        return 1.0 if sr > benchmark else 0.0
    return float(sps.norm.cdf((sr - benchmark) / se))


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """The Sharpe ratio the best of ``n_trials`` skill-less trials is expected to show (per period)."""
    if n_trials <= 1:
        return 0.0
    n = float(n_trials)
    z = (1.0 - EULER) * sps.norm.ppf(1.0 - 1.0 / n) + EULER * sps.norm.ppf(1.0 - 1.0 / (n * math.e))
    return math.sqrt(max(sr_variance, 0.0)) * float(z)


def deflated_sharpe(sr: float, n: int, n_trials: int, sr_variance: float | None = None, skew: float = 0.0,
                    kurt: float = 3.0) -> float:
    """PSR of ``sr`` against :func:`expected_max_sharpe` of ``n_trials`` trials. ``sr_variance``: variance of the
    trials' per-period Sharpe estimates; None uses the sampling variance of this estimate."""
    if sr_variance is None:
        sr_variance = sharpe_std(sr, n, skew, kurt) ** 2
    return probabilistic_sharpe(sr, n, skew, kurt, expected_max_sharpe(n_trials, sr_variance))


MIN_BLOCKS = 10
"""The fewest trading days (bootstrap blocks) a series needs for an interval and a verdict of "edge"."""


def bars_per_day(periods_per_year: float, trading_days: float = 252.0) -> int:
    """Bars in a trading day (at least 1): the bootstrap's block length."""
    return max(1, int(round(periods_per_year / trading_days)))


def block_length(n: int, periods_per_year: float) -> int:
    """The bootstrap's block: a trading day of bars, or a :data:`MIN_BLOCKS`-th of a shorter series."""
    return max(1, min(bars_per_day(periods_per_year), n // MIN_BLOCKS))


def too_short(n: int, periods_per_year: float) -> bool:
    """Fewer than :data:`MIN_BLOCKS` trading days of bars: too short for a verdict of "edge"."""
    return n < MIN_BLOCKS * bars_per_day(periods_per_year)


def block_indices(n: int, block: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[n_resamples, n] indices of circular block bootstrap resamples of a length-``n`` series."""
    block = max(1, min(block, n))
    n_blocks = -(-n // block)
    starts = rng.integers(0, n, size=(n_resamples, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]) % n
    return idx.reshape(n_resamples, -1)[:, :n]


@dataclass
class BootstrapResult:
    """Percentile intervals (``level``, e.g. 0.95) and the resampled Sharpe ratios (for the plot)."""

    sharpe_ci: tuple[float, float]
    total_return_ci: tuple[float, float]
    max_drawdown_ci: tuple[float, float]
    sharpes: np.ndarray
    block: int
    n_resamples: int
    level: float


def _annual_sharpe(r: np.ndarray, periods_per_year: float) -> np.ndarray:
    """Annualised Sharpe of each row of ``r`` (0 where a row is constant)."""
    sd = r.std(axis=1, ddof=1)
    ok = sd > 1e-15
    return np.where(ok, r.mean(axis=1) / np.where(ok, sd, 1.0), 0.0) * math.sqrt(periods_per_year)


def _max_drawdown(r: np.ndarray) -> np.ndarray:
    eq = np.cumprod(1.0 + r, axis=1)
    eq = np.concatenate([np.ones((r.shape[0], 1)), eq], axis=1)
    peak = np.maximum.accumulate(eq, axis=1)
    return (1.0 - eq / peak).max(axis=1)


def block_bootstrap(returns: np.ndarray, periods_per_year: float, block: int | None = None,
                    n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> BootstrapResult:
    """Circular block bootstrap of ``returns`` (simple per-bar returns): intervals for the annualised Sharpe
    ratio, the total return and the maximum drawdown. ``block`` defaults to :func:`block_length`."""
    r = np.asarray(returns, dtype=np.float64)
    block = block if block is not None else block_length(r.size, periods_per_year)
    if r.size < 2:
        zero = (0.0, 0.0)
        return BootstrapResult(zero, zero, zero, np.zeros(n_resamples), block, n_resamples, level)
    rng = np.random.default_rng(seed)
    lo_q, hi_q = (1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0
    sharpes, totals, drawdowns = [], [], []
    for chunk in np.array_split(np.arange(n_resamples), max(1, n_resamples * r.size // 4_000_000 + 1)):
        sample = r[block_indices(r.size, block, len(chunk), rng)]
        sharpes.append(_annual_sharpe(sample, periods_per_year))
        totals.append(np.prod(1.0 + sample, axis=1) - 1.0)
        drawdowns.append(_max_drawdown(sample))
    s, t, d = (np.concatenate(x) for x in (sharpes, totals, drawdowns))

    def ci(x: np.ndarray) -> tuple[float, float]:
        return float(np.quantile(x, lo_q)), float(np.quantile(x, hi_q))

    return BootstrapResult(ci(s), ci(t), ci(d), s, block, n_resamples, level)


def paired_sharpe_difference_ci(a: np.ndarray, b: np.ndarray, periods_per_year: float, block: int | None = None,
                                n_resamples: int = 2000, level: float = 0.95, seed: int = 1) -> tuple[float, float]:
    """Interval of Sharpe(a) - Sharpe(b) from the same block resamples of two aligned return series."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size != b.size:
        raise ValueError(f"paired bootstrap needs aligned series, got {a.size} and {b.size} returns")
    if a.size < 2:
        return 0.0, 0.0
    block = block if block is not None else block_length(a.size, periods_per_year)
    idx = block_indices(a.size, block, n_resamples, np.random.default_rng(seed))
    diff = _annual_sharpe(a[idx], periods_per_year) - _annual_sharpe(b[idx], periods_per_year)
    return float(np.quantile(diff, (1 - level) / 2)), float(np.quantile(diff, 1 - (1 - level) / 2))


def verdict(psr: float, dsr: float, level: float = 0.95, short: str | None = None) -> tuple[str, str]:
    """("edge" | "no edge", a plain line): an edge when the deflated Sharpe ratio reaches ``level`` and the series
    is long enough (``short``: why it is not, e.g. "2 days of bars")."""
    if short is not None:
        return "no edge", (f"no evidence of an edge: {short} is too short to judge (at least {MIN_BLOCKS} trading "
                           f"days are needed); DSR {dsr:.3f}, PSR {psr:.3f}")
    if dsr >= level:
        return "edge", f"edge: DSR {dsr:.3f} >= {level:.2f} (PSR {psr:.3f})"
    return "no edge", f"no evidence of an edge at {level:.0%}: DSR {dsr:.3f}, PSR {psr:.3f}"
