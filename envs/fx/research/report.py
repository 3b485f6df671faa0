"""What a backtest or walk-forward says, with its evidence: metrics, bootstrap intervals, the probabilistic
and deflated Sharpe ratios, a verdict, the baselines beside the agent, cost sensitivity, per-bar data.

:func:`analyse` turns trajectories (the agent's and the baselines', aligned bar by bar) into
the report dict that ``report.json`` holds, with the same names for a single backtest and a
walk-forward (which adds ``folds``): ``verdict`` ("edge" / "no edge"), ``verdict_line``,
``sharpe``, ``sharpe_ci``, ``total_return_ci``, ``max_drawdown_ci``, ``psr``, ``dsr``,
``n_trials``, ``metrics`` (every metric of :mod:`envs.fx.research.metrics`), ``baselines``
(name -> the same statistics), ``best_baseline``, ``sharpe_minus_best_baseline_ci`` and
``beats_best_baseline`` (the paired bootstrap interval of the Sharpe difference lies above
zero), ``cost_sensitivity`` (cost multiple -> Sharpe) and ``break_even_cost_multiple``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from envs.fx.research import metrics, stats
from envs.fx.research.baselines import REFERENCE_ONLY

COST_MULTIPLES: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)
BOOTSTRAP_RESAMPLES = 2000
LEVEL = 0.95


def returns_of(traj: Any) -> np.ndarray:
    """Per-bar simple returns of a trajectory's equity."""
    return metrics.period_returns(traj.equity_curve)


def statistics(returns: np.ndarray, periods_per_year: float, n_trials: int = 1, sr_variance: float | None = None,
               seed: int = 0) -> dict[str, Any]:
    """Sharpe with its block-bootstrap interval, return and drawdown intervals, PSR, DSR and the verdict."""
    r = np.asarray(returns, dtype=np.float64)
    boot = stats.block_bootstrap(r, periods_per_year, n_resamples=BOOTSTRAP_RESAMPLES, level=LEVEL, seed=seed)
    sr, skew, kurt = stats.moments(r)
    psr = stats.probabilistic_sharpe(sr, r.size, skew, kurt)
    dsr = stats.deflated_sharpe(sr, r.size, max(1, n_trials), sr_variance, skew, kurt)
    short = None
    if stats.too_short(r.size, periods_per_year):
        short = f"{r.size} bars ({r.size / stats.bars_per_day(periods_per_year):.1f} trading days)"
    word, line = stats.verdict(psr, dsr, LEVEL, short)
    return {
        "sharpe": metrics.sharpe(r, periods_per_year),
        "sharpe_ci": list(boot.sharpe_ci),
        "total_return_ci": list(boot.total_return_ci),
        "max_drawdown_ci": list(boot.max_drawdown_ci),
        "psr": psr, "dsr": dsr, "n_trials": int(max(1, n_trials)),
        "verdict": word, "verdict_line": line,
        "bootstrap": {"block_bars": boot.block, "resamples": boot.n_resamples, "level": boot.level},
        "_bootstrap_sharpes": boot.sharpes,
    }


def analyse(agent: Any, baselines: Mapping[str, Any], periods_per_year: float, n_trials: int = 1,
            sr_variance: float | None = None, agent_returns: np.ndarray | None = None,
            baseline_returns: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The report of ``agent`` beside ``baselines`` (trajectories, or objects with ``equity_curve``, ``position``,
    ``costs``; ``*_returns`` override their per-bar returns, e.g. for a stitched walk-forward)."""
    a_ret = agent_returns if agent_returns is not None else returns_of(agent)
    out = statistics(a_ret, periods_per_year, n_trials, sr_variance)
    out["metrics"] = metrics.compute_metrics(agent, periods_per_year)
    b_rets = {name: (baseline_returns or {}).get(name, returns_of(t) if t is not None else None)
              for name, t in baselines.items()}
    out["baselines"] = {}
    for name, traj in baselines.items():
        b = statistics(b_rets[name], periods_per_year, 1, None, seed=1)
        b.pop("_bootstrap_sharpes")
        b["metrics"] = metrics.compute_metrics(traj, periods_per_year)
        out["baselines"][name] = b
    candidates = {n: v for n, v in out["baselines"].items() if n not in REFERENCE_ONLY}
    if candidates:
        best = max(candidates, key=lambda n: candidates[n]["sharpe"])
        n = min(a_ret.size, b_rets[best].size)
        diff = stats.paired_sharpe_difference_ci(a_ret[:n], b_rets[best][:n], periods_per_year,
                                                 n_resamples=BOOTSTRAP_RESAMPLES, level=LEVEL)
        out["best_baseline"] = best
        out["sharpe_minus_best_baseline_ci"] = list(diff)
        out["beats_best_baseline"] = bool(diff[0] > 0)
        if np.array_equal(a_ret[:n], b_rets[best][:n]):
            how = f"the agent's returns are {best}'s, bar for bar"
        elif out["beats_best_baseline"]:
            how = "the agent beats it beyond the 95 % interval"
        elif out["sharpe"] >= candidates[best]["sharpe"]:
            how = "the agent is higher, but not beyond the 95 % interval"
        else:
            how = f"{best} is higher: the agent does not beat it"
        out["versus_best_baseline_line"] = (
            f"best baseline: {best} (Sharpe {candidates[best]['sharpe']:.2f}) vs the agent's {out['sharpe']:.2f}: "
            f"{how} (Sharpe difference {diff[0]:+.2f} .. {diff[1]:+.2f})")
    return out


BREAK_EVEN_GRID: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 3.0)


def break_even(points: Mapping[float, float]) -> tuple[float | None, bool]:
    """(the cost multiple where total return, by multiple, reaches zero; whether it was extrapolated): linear
    interpolation between the evaluated multiples, or beyond the last two when it is still positive at the last
    (costs enter the return linearly, so the line is close); None when it is negative with no costs at all."""
    xs = sorted(points)
    for a, b in zip(xs[:-1], xs[1:]):
        fa, fb = points[a], points[b]
        if fa == 0:
            return a, False
        if fa > 0 >= fb:
            return a + (b - a) * fa / (fa - fb), False
    if points[xs[0]] < 0:
        return None, False
    a, b = xs[-2], xs[-1]
    slope = (points[b] - points[a]) / (b - a)
    return (b - points[b] / slope, True) if slope < 0 else (None, False)


def cost_sensitivity(run_at: Callable[[float], Any], periods_per_year: float,
                     multiples: tuple[float, ...] = COST_MULTIPLES) -> dict[str, Any]:
    """Re-run a policy at each cost multiple (``run_at(m)`` -> a trajectory, or anything with ``equity_curve``
    and ``costs``): Sharpe and total return per multiple, and the break-even multiple (where the total
    return reaches zero, interpolated on :data:`BREAK_EVEN_GRID`)."""
    runs = {m: run_at(m) for m in sorted(set(multiples) | set(BREAK_EVEN_GRID))}
    table = {f"{m:g}": {"sharpe": metrics.sharpe(returns_of(runs[m]), periods_per_year),
                        "total_return": metrics.total_return(runs[m].equity_curve),
                        "costs_paid": float(np.sum(runs[m].costs))} for m in multiples}
    totals = {m: metrics.total_return(t.equity_curve) for m, t in runs.items()}
    be, extrapolated = break_even(totals)
    note = None
    if be is None:
        note = ("it loses even with no spread or slippage" if totals[0.0] < 0 else
                "costs do not lower its return")
    elif extrapolated:
        note = f"extrapolated beyond x{max(totals):g} from the last two multiples"
    return {"cost_sensitivity": {k: v["sharpe"] for k, v in table.items()},
            "cost_sensitivity_table": table, "break_even_cost_multiple": be, "break_even_note": note}


def json_safe(x: Any) -> Any:
    """Strict-JSON values: tuples become lists, numpy scalars floats, non-finite floats None; private keys dropped."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items() if not str(k).startswith("_")}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


BAR_COLUMNS = ("strategy", "time", "close", "position", "equity", "return", "costs", "swap", "trade")


def write_bars(path: str | Path, trajectories: Mapping[str, Any]) -> Path:
    """Per-bar data of every strategy in one long CSV (``BAR_COLUMNS``): pyfolio/quantstats take over from here."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(BAR_COLUMNS)
        for name, t in trajectories.items():
            rets = returns_of(t)
            trades = np.abs(np.diff(np.concatenate([[0.0], t.position]))) > 0
            swap = t.swap if getattr(t, "swap", np.zeros(0)).size == len(t) else np.zeros(len(t))
            times = np.asarray(t.time).astype("datetime64[ns]").astype("datetime64[s]").astype(str)
            equity = np.asarray(t.equity)  # once: a stitched walk-forward computes it from the returns
            for i in range(len(t)):
                w.writerow((name, times[i] + "Z", f"{t.close[i]:.6f}", f"{t.position[i]:.6g}", f"{equity[i]:.6f}",
                            f"{rets[i]:.8g}", f"{t.costs[i]:.6f}", f"{swap[i]:.6f}", int(trades[i])))
    tmp.replace(path)
    return path


def format_report(result: Mapping[str, Any]) -> str:
    """A small text report: verdict, agent vs baselines, cost sensitivity."""
    cols = {"agent": {**result["metrics"], "sharpe_ci": result.get("sharpe_ci"), "psr": result.get("psr")},
            **{n: {**b["metrics"], "sharpe_ci": b.get("sharpe_ci"), "psr": b.get("psr")}
               for n, b in result["baselines"].items()}}
    rows = [("total_return", "{:+.2%}"), ("annualised_return", "{:+.2%}"), ("sharpe", "{:.2f}"),
            ("sharpe_ci", "{}"), ("psr", "{:.3f}"), ("max_drawdown", "{:.2%}"), ("profit_factor", "{:.2f}"),
            ("n_trades", "{:d}"), ("exposure", "{:.1%}"), ("turnover", "{:.1f}"), ("costs_paid", "{:.2f}")]
    width = 15
    lines = [result.get("verdict_line", ""), f"trials behind it: {result.get('n_trials', 1)}"]
    if "versus_best_baseline_line" in result:
        lines.append(result["versus_best_baseline_line"])
    for seed, r in (result.get("per_seed") or {}).items():
        if len(result["per_seed"]) > 1:
            lines.append(f"  seed {seed}: Sharpe {r['sharpe']:.2f} ({r['sharpe_ci'][0]:.1f}..{r['sharpe_ci'][1]:.1f}), "
                         f"DSR {r['dsr']:.3f}, {r['n_trades']} trades, exposure {r['exposure']:.1%}: {r['verdict']}")
    if result.get("gate_psr") is not None:
        total = sum(len(f["seeds"]) for f in result.get("folds", []))
        lines.append(f"gate: {result['gated_flat']} of {total} fold-seeds stayed flat (their validation Sharpe's PSR "
                     f"< {result['gate_psr']:g})")
    note = result["metrics"].get("annualised_note")
    if note:
        lines.append(f"note: {note}")
    lines.append(f"{'':18s}" + "".join(f"{c[:width - 1]:>{width}s}" for c in cols))
    for key, fmt in rows:
        cells = []
        for m in cols.values():
            v = m.get(key)
            if v is None:
                cells.append(f"{'n/a':>{width}s}")
            elif key == "sharpe_ci":
                cells.append(f"{f'{v[0]:.1f}..{v[1]:.1f}':>{width}s}")
            else:
                cells.append(f"{fmt.format(v):>{width}s}")
        lines.append(f"{key:18s}" + "".join(cells))
    if result.get("cost_sensitivity"):
        table = "  ".join(f"x{k}: {v:.2f}" for k, v in result["cost_sensitivity"].items())
        be = result.get("break_even_cost_multiple")
        lines.append(f"Sharpe at cost multiples: {table}; break-even cost multiple: "
                     f"{result.get('break_even_note') if be is None else f'{be:.2f}'}")
    return "\n".join(lines)
