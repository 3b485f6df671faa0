"""The PNG plots of a backtest report: equity and drawdown, positions over price, trade returns.

Each function writes one file with matplotlib's non-interactive Agg backend and returns its path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envs.fx.research.metrics import as_1d, drawdown, profit_factor, total_return, win_rate

def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (the reports' resolution) and free it."""
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return Path(path)


def _time_axis(times: np.ndarray | None, n: int) -> tuple[np.ndarray, str]:
    if times is None:
        return np.arange(n), "step"
    t = np.asarray(times)
    if t.dtype.kind != "M":
        t = t.astype(np.int64).astype("datetime64[ns]")
    return t, "time (UTC)"


def plot_equity_drawdown(curves: Mapping[str, np.ndarray], path: str | Path, times: np.ndarray | None = None,
                         title: str = "Equity and drawdown") -> Path:
    """Two panels sharing x: equity normalised to 1.0 at the start (top) and drawdown in % (bottom).

    ``curves`` maps a label (the strategy first, then baselines) to its equity curve; all
    curves must have the same length as ``times`` (if given).
    """
    plt = _pyplot()
    from matplotlib.ticker import PercentFormatter

    n = len(next(iter(curves.values())))
    x, xlabel = _time_axis(times, n)
    fig, (ax_eq, ax_dd) = plt.subplots(2, 1, sharex=True, figsize=(11, 6.5), height_ratios=[2.2, 1],
                                       constrained_layout=True)
    normed: list[np.ndarray] = []
    for i, (label, eq) in enumerate(curves.items()):
        eq = as_1d(eq, f"equity of {label}")
        if eq.size != n:
            raise ValueError(f"equity curve {label!r} has {eq.size} points, expected {n}")
        norm = eq / eq[0] if eq[0] else eq
        normed.append(norm)
        strategy = i == 0
        style = dict(lw=1.6 if strategy else 1.0, alpha=1.0 if strategy else 0.8, zorder=3 if strategy else 2)
        line, = ax_eq.plot(x, norm, label=f"{label} ({total_return(eq):+.2%})", **style)
        dd = -drawdown(eq) * 100.0
        if strategy:
            ax_dd.fill_between(x, dd, 0.0, color=line.get_color(), alpha=0.35, lw=0, label=label)
        ax_dd.plot(x, dd, color=line.get_color(), **style)
    ax_eq.axhline(1.0, color="grey", lw=0.7, ls="--")
    ax_eq.set_ylabel("equity (start = 1.0)")
    _log_if_wide(ax_eq, normed)
    ax_eq.set_title(title)
    ax_eq.legend(loc="best", fontsize=9)
    ax_eq.grid(alpha=0.3)
    ax_dd.set_ylabel("drawdown")
    ax_dd.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    ax_dd.set_xlabel(xlabel)
    ax_dd.grid(alpha=0.3)
    return _save(fig, path)


def plot_positions(close: np.ndarray, positions: np.ndarray, path: str | Path, times: np.ndarray | None = None,
                   title: str = "Positions over price") -> Path:
    """Price with long (green) / short (red) shading on top, the position as a step line below."""
    plt = _pyplot()
    close = as_1d(close, "close")
    pos = as_1d(positions, "positions")
    if close.size != pos.size:
        raise ValueError(f"close has {close.size} points but positions has {pos.size}")
    x, xlabel = _time_axis(times, close.size)
    fig, (ax_p, ax_pos) = plt.subplots(2, 1, sharex=True, figsize=(11, 6.5), height_ratios=[2, 1],
                                       constrained_layout=True)
    ax_p.plot(x, close, color="black", lw=0.9, label="close")
    span = ax_p.get_xaxis_transform()
    ax_p.fill_between(x, 0, 1, where=pos > 0, step="post", transform=span, color="tab:green", alpha=0.15,
                      lw=0, label="long")
    ax_p.fill_between(x, 0, 1, where=pos < 0, step="post", transform=span, color="tab:red", alpha=0.15,
                      lw=0, label="short")
    ax_p.set_ylabel("price")
    ax_p.set_title(title)
    ax_p.legend(loc="upper left", fontsize=9)
    ax_p.grid(alpha=0.3)
    ax_pos.step(x, pos, where="post", color="tab:blue", lw=1.0)
    ax_pos.axhline(0.0, color="grey", lw=0.7)
    lim = max(1.0, float(np.abs(pos).max()) if pos.size else 1.0) * 1.1
    ax_pos.set_ylim(-lim, lim)
    ax_pos.set_ylabel("position")
    ax_pos.set_xlabel(xlabel)
    ax_pos.grid(alpha=0.3)
    return _save(fig, path)


def plot_trade_returns(trade_rets: np.ndarray, path: str | Path, title: str = "Trade returns") -> Path:
    """Histogram of per-trade returns in %, with zero and mean lines and a summary box."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    r = as_1d(trade_rets, "trade returns") * 100.0
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    if r.size:
        ax.hist(r, bins=int(np.clip(np.sqrt(r.size) * 2, 10, 60)), color="tab:blue", alpha=0.75,
                edgecolor="white", label="trades")
        ax.axvline(0.0, color="black", lw=0.9)
        ax.axvline(float(r.mean()), color="tab:orange", lw=1.5, ls="--", label=f"mean {r.mean():+.3f} %")
        ax.legend(loc="upper right", fontsize=9)
        pf = profit_factor(r)
        summary = (f"trades: {r.size}\nwin rate: {win_rate(r):.1%}\n"
                   f"profit factor: {'inf' if math.isinf(pf) else f'{pf:.2f}'}")
        ax.text(0.02, 0.97, summary, transform=ax.transAxes, va="top", fontsize=9,
                bbox=dict(boxstyle="round", facecolor="white", alpha=0.8))
    else:
        ax.text(0.5, 0.5, "no trades", transform=ax.transAxes, ha="center", va="center", fontsize=14)
    ax.set_xlabel("trade return (% of equity)")
    ax.set_ylabel("number of trades")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_bootstrap(sharpes: np.ndarray, observed: float, ci: tuple[float, float], path: str | Path,
                   title: str = "Bootstrap distribution of the Sharpe ratio") -> Path:
    """Histogram of the resampled Sharpe ratios with the observed value and the interval."""
    plt = _pyplot()
    s = np.asarray(sharpes, dtype=np.float64)
    s = s[np.isfinite(s)]
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    try:  # resamples that (nearly) all agree, e.g. a short test with one trade, leave no room for 60 bins
        edges = np.histogram_bin_edges(s, bins=60) if s.size else 1
    except ValueError:
        edges = 1
    ax.hist(s, bins=edges, color="tab:blue", alpha=0.7, edgecolor="white")
    if s.size and np.ptp(s) <= 1e-9 * max(1.0, abs(float(s.mean()))):
        ax.text(0.5, 0.5, f"all {s.size} resamples give {s.mean():.2f}: the window is too short to resample",
                transform=ax.transAxes, ha="center", va="center", fontsize=11)
    ax.axvline(observed, color="black", lw=1.5, label=f"observed {observed:.2f}")
    ax.axvspan(ci[0], ci[1], color="tab:orange", alpha=0.2, label=f"95 % interval {ci[0]:.2f} .. {ci[1]:.2f}")
    ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("annualised Sharpe ratio (block bootstrap resamples)")
    ax.set_ylabel("resamples")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_cost_sensitivity(table: Mapping[str, Mapping[str, float]], path: str | Path, break_even: float | None,
                          title: str = "Cost sensitivity") -> Path:
    """Sharpe and total return of the same policy at each cost multiple (spread and slippage scaled)."""
    plt = _pyplot()
    xs = [float(k) for k in table]
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    ax.plot(xs, [table[k]["sharpe"] for k in table], "o-", color="tab:blue", label="Sharpe (left)")
    ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("cost multiple (spread and slippage x m)")
    ax.set_ylabel("annualised Sharpe ratio")
    ax2 = ax.twinx()
    ax2.plot(xs, [100 * table[k]["total_return"] for k in table], "s--", color="tab:orange", label="total return % (right)")
    ax2.set_ylabel("total return (%)")
    if break_even is not None:
        ax.axvline(break_even, color="tab:red", lw=1.0, label=f"break-even x{break_even:.2f}")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right", fontsize=9)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _log_if_wide(ax: Any, curves: list[np.ndarray]) -> None:
    """A log equity axis when the curves span more than 10x (compounded multi-year runs): otherwise the early
    years are a flat line at the bottom."""
    lo = min(float(np.min(c)) for c in curves)
    hi = max(float(np.max(c)) for c in curves)
    if lo > 0 and hi / lo > 10.0:
        ax.set_yscale("log")
        ax.set_ylabel(ax.get_ylabel() + ", log scale")


def plot_walkforward(times: np.ndarray, curves: Mapping[str, np.ndarray], boundaries: list[np.ndarray],
                     path: str | Path, title: str = "Walk-forward: stitched out-of-sample equity") -> Path:
    """Stitched out-of-sample equity curves (start = 1.0) with a vertical line at each fold's first test bar."""
    plt = _pyplot()
    x, xlabel = _time_axis(times, len(times))
    fig, ax = plt.subplots(figsize=(11, 5.5), constrained_layout=True)
    normed = []
    for i, (label, eq) in enumerate(curves.items()):
        eq = as_1d(eq, f"equity of {label}")
        normed.append(eq / eq[0])
        ax.plot(x, normed[-1], lw=1.6 if i == 0 else 1.0, label=f"{label} ({total_return(eq):+.2%})",
                zorder=3 if i == 0 else 2)
    for k, b in enumerate(boundaries):  # fold starts, as bar times (int64 ns or datetime64)
        b = np.asarray(b)
        ax.axvline(b.astype(np.int64).astype("datetime64[ns]") if b.dtype.kind != "M" else b,
                   color="grey", lw=0.8, ls=":", label="fold starts" if k == 0 else None)
    ax.axhline(1.0, color="grey", lw=0.7, ls="--")
    ax.set_ylabel("equity (start = 1.0)")
    _log_if_wide(ax, normed)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(loc="best", fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)
