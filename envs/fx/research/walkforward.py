"""Walk-forward research: retrain on the past, select on validation, test on the next unseen period, stitch.

The usable bars (after the observation windows are full) are laid out as::

    | train (expanding from the first bar, or a rolling window) |E| val |E| test k |   ... later folds
                                                                 ^ the test periods tile the last ``test_frac``

For fold k the test period is the k-th of ``folds`` equal periods tiling the later part of
the data; its validation period is the ``val_bars`` before it and its training period
everything before that (``expanding``) or the ``train_bars`` before that (``rolling``), with
``E`` = the embargo (the reward horizon) between them. No test bar ever enters training or
selection (the tests check it), and the windows of every period may look back across
the embargo (history is observable).

Each fold and seed is a normal training run in ``<out>/fold_<k>/seed_<s>`` (summary,
checkpoints, logs), with the checkpoint chosen by ``val/sharpe`` on the fold's validation
period, recorded in ``wf_result.json`` there. A finished fold is never retrained: rerunning
the command (``--resume auto`` or nothing) picks up where it stopped, an interrupted training
resumes from its last checkpoint; ``--overwrite`` starts the walk-forward over. The agent's out-of-sample result is the seed-average of the
stitched test returns; the statistics count ``folds x seeds`` trials (plus the Optuna trials
of ``--study``), and the baselines run through the same periods, env and costs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from engine.files import write_json
from envs.fx.market import load_market, make_fx_eval_env
from envs.fx.research import metrics, plots, report, stats
from envs.fx.research.backtest import Trajectory, backtest_batch
from envs.fx.research.baselines import NOT_PLOTTED, BaselineParams, ConstantTarget
from envs.fx.research.spec import norm_from_spec

RESULT_FILE = "wf_result.json"


@dataclass(frozen=True)
class Fold:
    """Bar ranges of one fold: ``(lo, hi)`` of its train, validation and test periods."""

    index: int
    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    @property
    def bounds(self) -> tuple[int, ...]:
        return (*self.train, *self.val, *self.test)


def fold_layout(n: int, valid_from: int, folds: int, embargo: int, test_frac: float = 0.5,
                val_bars: int | None = None, window: str = "expanding", train_bars: int | None = None,
                min_train: int = 2, source: str = "the market", default_val_cap: int | None = None) -> list[Fold]:
    """The folds of a walk-forward over bars ``[valid_from, n)`` (see the module docstring); raises one line
    naming what is too short and the flags that change it."""
    if folds < 1:
        raise ValueError(f"--folds: must be >= 1 (got {folds})")
    if not 0.0 < test_frac < 1.0:
        raise ValueError(f"--test-frac: must be in (0, 1) (got {test_frac})")
    usable = n - valid_from
    t0 = valid_from + int(round((1.0 - test_frac) * usable))
    length = (n - t0) // folds
    val = val_bars if val_bars is not None else min(length, default_val_cap or length)
    out: list[Fold] = []
    for k in range(folds):
        te = (t0 + k * length, n if k == folds - 1 else t0 + (k + 1) * length)
        va = (te[0] - embargo - val, te[0] - embargo)
        out.append(Fold(k, (valid_from, va[0] - embargo), va, te))
    if window == "rolling":  # a fixed length: --train-bars, or the first fold's
        size = train_bars if train_bars is not None else out[0].train[1] - out[0].train[0]
        out = [dataclasses.replace(f, train=(max(valid_from, f.train[1] - size), f.train[1])) for f in out]
    problems = []
    if length < 2:
        problems.append(f"each of the {folds} test periods would hold {length} bars")
    if val < 2:
        problems.append(f"the validation periods would hold {val} bars")
    if out[0].train[1] - out[0].train[0] < min_train:
        problems.append(f"the first fold's training period would hold {out[0].train[1] - out[0].train[0]} bars, "
                        f"fewer than --fx.episode-bars + 1 = {min_train}")
    if problems:
        raise ValueError(f"{source}: {n:,} bars ({valid_from:,} fill the windows) cannot make {folds} folds: "
                         f"{'; '.join(problems)}; use fewer --folds, another --test-frac or --val-bars, a smaller "
                         f"--fx.embargo-bars / --fx.episode-bars, or more data")
    return out


@dataclass
class WalkForwardArgs:
    """Walk-forward: retrain on the past with the normal engine and presets, select on validation, test on the
    next unseen period, stitch the out-of-sample results and say whether there is an edge."""

    RANGES: ClassVar[dict[str, str]] = {"folds": "[1, 1000]", "seeds": "[1, 1000]", "test_frac": "(0, 1)",
                                        "val_bars": "[2, 1e9]", "train_bars": "[2, 1e9]", "eval_every": "[1, 1e9]",
                                        "zscore_window": "[2, 1e9]", "momentum_lookback": "[1, 1e9]",
                                        "gate_psr": "[0, 1]"}
    """Allowed values (:mod:`engine.ranges`)."""
    FLAT_SECTIONS: ClassVar[tuple[str, ...]] = ("train",)
    """The trainer's flags (the ``train`` field the command adds) carry no prefix."""

    folds: int = 4
    """Test periods tiling the later part of the data (one training run per fold and seed)."""
    seeds: int = 1
    """Training seeds per fold (seeds 1..S); the deflated Sharpe ratio counts folds x seeds trials."""
    window: Literal["expanding", "rolling"] = "expanding"
    """Training period: every bar before the fold (expanding) or a fixed-length window (rolling)."""
    test_frac: float = 0.5
    """Fraction of the usable bars tiled by the test periods (the rest is the first fold's past)."""
    val_bars: int | None = None
    """Bars of each validation period (default: as long as a test period, at most the preset's own validation
    split, --fx.val-frac of the data: checkpoint selection backtests it every --eval-every cycles)."""
    train_bars: int | None = None
    """Rolling window length in bars (default: the first fold's training length)."""
    study: str | None = None
    """An Optuna storage (e.g. sqlite:///runs/tune/study.db) whose trials tuned this preset on the same data:
    they count as trials too."""
    eval_every: int = 10
    """Evaluate on the fold's validation period every this many cycles (the checkpoint selection)."""
    zscore_window: int | None = None
    """Bars of the z-score baseline's mean and deviation (default: the preset's --fx.ma-window)."""
    momentum_lookback: int | None = None
    """Bars the momentum baseline looks back over (default: a trading day of bars)."""
    gate_psr: float | None = None
    """Trade a fold's selected checkpoint only if its validation result is evidence of an edge: the probabilistic
    Sharpe ratio of its validation Sharpe (over the validation bars, normal returns assumed) at least this (e.g.
    0.95); otherwise that fold and seed stays flat. Not given: always trade the selected checkpoint. A report-time
    choice: rerunning with another value re-reports without retraining. It needs a long --val-bars to be evidence
    (the README's learning checks: 2 years of 15-minute bars kept a random walk out and let a Sharpe-1.5 edge in;
    3 months could not tell them apart); the validation Sharpe is the best of the evaluated checkpoints, so its PSR
    is optimistic."""


@dataclass
class Stitched:
    """Out-of-sample bars of several folds, joined: the shape :func:`metrics.compute_metrics` reads."""

    time: np.ndarray
    close: np.ndarray
    position: np.ndarray
    returns: np.ndarray
    costs: np.ndarray
    swap: np.ndarray
    initial_equity: float
    terminated: bool = False

    def __len__(self) -> int:
        return int(self.returns.size)

    @property
    def equity(self) -> np.ndarray:
        return self.initial_equity * np.cumprod(1.0 + self.returns)

    @property
    def equity_curve(self) -> np.ndarray:
        return np.concatenate([[self.initial_equity], self.equity])

    @staticmethod
    def join(parts: list[Trajectory], length: list[int]) -> "Stitched":
        """Join fold trajectories; a fold that stopped early (stop-out) is flat for its remaining bars."""
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("time", "close", "position", "returns", "costs", "swap")}
        for t, n in zip(parts, length):
            pad = n - len(t)
            r = metrics.period_returns(t.equity_curve)
            cols["returns"].append(np.r_[r, np.zeros(pad)])
            cols["position"].append(np.r_[t.position, np.zeros(pad)])
            cols["costs"].append(np.r_[t.costs, np.zeros(pad)])
            cols["swap"].append(np.r_[t.swap if t.swap.size == len(t) else np.zeros(len(t)), np.zeros(pad)])
            cols["time"].append(np.r_[t.time, np.full(pad, t.time[-1])])
            cols["close"].append(np.r_[t.close, np.full(pad, t.close[-1])])
        e0 = parts[0].initial_equity
        return Stitched(**{k: np.concatenate(v) for k, v in cols.items()}, initial_equity=e0)

    @staticmethod
    def mean(items: list["Stitched"]) -> "Stitched":
        """The seed-average: an equal-weight portfolio of the seeds' agents, bar by bar."""
        first = items[0]
        avg = lambda k: np.mean([getattr(s, k) for s in items], axis=0)  # noqa: E731
        return Stitched(first.time, first.close, avg("position"), avg("returns"), avg("costs"), avg("swap"),
                        first.initial_equity)


def _flat_policy(env: Any) -> Callable[[Any, Any], Any]:
    """A policy that targets a flat position for every row of the observation batch it is given."""
    action = ConstantTarget(env, 0.0).action

    def flat(obs: Any, info: Any) -> Any:
        n = next(iter(obs.values())).shape[0] if isinstance(obs, dict) else obs.shape[0]
        return action.expand(n, *action.shape[1:])

    return flat


def _iso(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]")) + "Z"


def _study_trials(storage: str | None) -> int:
    if storage is None:
        return 0
    import optuna

    try:
        summaries = optuna.get_all_study_summaries(storage)
    except Exception as exc:  # noqa: BLE001  (optuna raises several types)
        raise ValueError(f"--study {storage}: cannot read it as an Optuna storage: {exc}") from exc
    return sum(s.n_trials for s in summaries)


class WalkForward:
    """One walk-forward over a trainer config (``base``) into ``out`` (see the module docstring)."""

    def __init__(self, base: Any, args: WalkForwardArgs, train_fn: Callable[..., dict[str, Any]],
                 out: str | Path | None = None, log: Any = None) -> None:
        self.base, self.args, self.train_fn = base, args, train_fn
        self.out = Path(out if out is not None else base.out_dir)
        self.log = log or sys.stderr
        fx = base.fx
        market = load_market(dataclasses.replace(fx, split_bounds=None), strict=False)
        self.market = market
        self.folds = fold_layout(len(market.bars), market.valid_from, args.folds, fx.embargo, args.test_frac,
                                 args.val_bars, args.window, args.train_bars, fx.episode_bars + 1, market.bars.source,
                                 default_val_cap=max(2, int(fx.val_frac * (len(market.bars) - market.valid_from))))
        self.seeds = list(range(1, args.seeds + 1))
        self.extra_trials = _study_trials(args.study)

    # -- one fold and seed ----------------------------------------------------------------------
    def run_dir(self, fold: Fold, seed: int) -> Path:
        return self.out / f"fold_{fold.index}" / f"seed_{seed}"

    def fold_cfg(self, fold: Fold, seed: int) -> Any:
        hooks = dataclasses.replace(self.base.hooks, eval_every=self.args.eval_every, monitor="val/sharpe",
                                    monitor_mode="max", save_top_k=1, progress=False)
        fx = dataclasses.replace(self.base.fx, split_bounds=fold.bounds, report_split="none")
        return dataclasses.replace(self.base, fx=fx, seed=seed, out_dir=str(self.run_dir(fold, seed)), hooks=hooks,
                                   resume="auto", overwrite=False)

    def train_and_test(self, fold: Fold, seed: int) -> dict[str, Any]:
        """The fold/seed's result (trained, selected on validation, tested), from disk when already done."""
        d = self.run_dir(fold, seed)
        done = d / RESULT_FILE
        if done.is_file():
            return json.loads(done.read_text())
        cfg = self.fold_cfg(fold, seed)
        summary_file = d / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else None
        if summary is None or summary.get("global_step", 0) < cfg.total_steps:
            summary = self.train_fn(cfg)
        ckpt = Path(summary.get("best_checkpoint") or summary["last_checkpoint"])
        result = {"fold": fold.index, "seed": seed, "checkpoint": str(ckpt), "selected_by": (
            f"val/sharpe {summary['best_score']:.3f}" if summary.get("best_checkpoint") else "last (no evaluation)"),
            "train_steps": summary["global_step"]}
        write_json(done, report.json_safe(result))
        return result

    def fold_policies(self, results: dict[tuple[int, int], dict[str, Any]], fold: Fold,
                      gates: dict[int, dict[str, Any]]) -> tuple[dict[int, Any], Any]:
        """Each seed's selected policy for ``fold`` (obs, info -> actions; a flat one where its ``gates`` entry says
        so), and the factory of the fold's test env (the checkpoints' own feature normalisation: the same for every
        seed of a fold)."""
        from engine.checkpoint import read_checkpoint
        from engine.loop import load_policy

        fx = dataclasses.replace(self.base.fx, split_bounds=fold.bounds)
        norm = norm_from_spec(read_checkpoint(results[fold.index, self.seeds[0]]["checkpoint"]).get("env_spec"))

        def env_factory(num_envs: int = 1) -> Any:
            return make_fx_eval_env(fx, split="test", norm=norm, num_envs=num_envs)

        probe = env_factory()
        policies = {}
        for s in self.seeds:
            if gates[s]["flat"]:
                policies[s] = _flat_policy(probe)
                continue
            _, policy = load_policy(results[fold.index, s]["checkpoint"], env=probe)
            policies[s] = (lambda p: lambda obs, info: p(obs))(policy)
        return policies, env_factory

    def gate(self, fold: Fold, seed: int) -> dict[str, Any]:
        """Whether ``--gate-psr`` keeps this fold and seed flat: the selected checkpoint's validation Sharpe (from
        the run's summary), its PSR over the validation bars (normal returns assumed) and the decision."""
        summary_file = self.run_dir(fold, seed) / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        val_sharpe = summary.get("best_score") if summary.get("best_checkpoint") else None
        out: dict[str, Any] = {"val_sharpe": val_sharpe, "val_psr": None, "flat": False}
        if val_sharpe is None or self.args.gate_psr is None:
            return out
        times = self.market.bars.time[fold.val[0]:fold.val[1]]
        n = len(times)
        per_bar = float(val_sharpe) / np.sqrt(metrics.infer_periods_per_year(times)) if n > 2 else 0.0
        psr = stats.probabilistic_sharpe(per_bar if np.isfinite(per_bar) else 0.0, n)
        out.update(val_psr=psr, flat=bool(psr < self.args.gate_psr))
        return out

    # -- the whole walk-forward -----------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        if getattr(self.base, "overwrite", False) and self.out.exists():  # start over: the old folds go first
            import shutil

            trash = self.out.with_name(f".{self.out.name}.overwritten")
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(self.out, trash)
            shutil.rmtree(trash, ignore_errors=True)
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / "layout.json", self.layout())
        total, t0 = len(self.folds) * len(self.seeds), time.perf_counter()
        results: dict[tuple[int, int], dict[str, Any]] = {}
        for i, (fold, seed) in enumerate((f, s) for f in self.folds for s in self.seeds):
            cached = (self.run_dir(fold, seed) / RESULT_FILE).is_file()
            results[fold.index, seed] = self.train_and_test(fold, seed)
            elapsed = time.perf_counter() - t0
            print(f"[walk-forward] {i + 1}/{total} fold {fold.index} seed {seed} "
                  f"{'(done before)' if cached else 'trained'} | {elapsed / 60:.1f} min", file=self.log, flush=True)
        return self.report(results)

    def layout(self) -> dict[str, Any]:
        t = self.market.bars.time.astype("datetime64[ns]").astype(np.int64)

        def span(r: tuple[int, int]) -> dict[str, Any]:
            return {"bars": [int(r[0]), int(r[1])], "start": _iso(t[r[0]]), "end": _iso(t[r[1] - 1])}

        return {"data": self.market.bars.source, "window": self.args.window, "embargo_bars": self.base.fx.embargo,
                "folds": [{"fold": f.index, "train": span(f.train), "val": span(f.val), "test": span(f.test)}
                          for f in self.folds]}

    def report(self, results: dict[tuple[int, int], dict[str, Any]]) -> dict[str, Any]:
        """Backtest every fold's test period (each seed's agent at every cost multiple and the baselines, in one
        batched pass per fold), stitch, and write the report, bars.csv and the PNGs."""
        ppy = None
        grid = tuple(sorted(set(report.COST_MULTIPLES) | set(report.BREAK_EVEN_GRID)))
        per_seed: dict[tuple[int, float], list[Trajectory]] = {(s, m): [] for s in self.seeds for m in grid}
        base_parts: dict[str, list[Trajectory]] = {}
        lengths, fold_rows, trial_sharpes = [], [], []
        layout = self.layout()["folds"]
        params = BaselineParams(self.args.momentum_lookback, self.args.zscore_window)
        for fold in self.folds:
            gates = {s: self.gate(fold, s) for s in self.seeds}
            policies, env_factory = self.fold_policies(results, fold, gates)
            agents, baselines, _ = backtest_batch(policies, env_factory, params, grid)
            n = max(len(t) for t in [*agents.values(), *baselines.values()])
            lengths.append(n)
            ppy = ppy or metrics.infer_periods_per_year(next(iter(agents.values())).curve_time)
            for (s, m), t in agents.items():
                per_seed[s, m].append(t)
            seed_trajs = {s: agents[s, 1.0] for s in self.seeds}
            for t in seed_trajs.values():
                sr, *_ = report.stats.moments(report.returns_of(t))
                trial_sharpes.append(sr)
            for name, t in baselines.items():
                base_parts.setdefault(name, []).append(t)
            fold_rows.append({**layout[fold.index],
                              "seeds": {str(s): {**metrics.compute_metrics(t, ppy),
                                                 "selected_by": results[fold.index, s]["selected_by"],
                                                 "gate": gates[s]}
                                        for s, t in seed_trajs.items()},
                              "baselines": {k: metrics.compute_metrics(t, ppy) for k, t in baselines.items()}})
        stitched = {key: Stitched.join(parts, lengths) for key, parts in per_seed.items()}
        agent_seeds = [stitched[s, 1.0] for s in self.seeds]
        agent = Stitched.mean(agent_seeds)
        base_st = {k: Stitched.join(v, lengths) for k, v in base_parts.items() if len(v) == len(self.folds)}
        n_trials = len(self.folds) * len(self.seeds) + self.extra_trials
        sr_var = float(np.var(trial_sharpes, ddof=1)) if len(trial_sharpes) > 1 else None
        analysis = report.analyse(agent, base_st, ppy, n_trials, sr_var, agent_returns=agent.returns,
                                  baseline_returns={k: v.returns for k, v in base_st.items()})
        result = {k: v for k, v in analysis.items() if not k.startswith("_")}
        result.update({
            "kind": "walk-forward", "data": self.market.bars.source, "preset": self.base.preset,
            "folds_count": len(self.folds), "seeds": self.seeds, "window": self.args.window,
            "extra_trials_from_study": self.extra_trials, "periods_per_year": ppy, "bars": len(agent),
            "start": _iso(agent.time[0]), "end": _iso(agent.time[-1]),
            "per_seed_sharpe": {str(s): metrics.sharpe(a.returns, ppy) for s, a in zip(self.seeds, agent_seeds)},
            "per_seed": {str(s): self._seed_result(a, ppy, n_trials, sr_var) for s, a in zip(self.seeds, agent_seeds)},
            "reward_weights": self.base.fx.reward_weights(), "folds": fold_rows, "gate_psr": self.args.gate_psr,
            "gated_flat": sum(r["gate"]["flat"] for row in fold_rows for r in row["seeds"].values()),
        })
        result.update(report.cost_sensitivity(
            lambda m: Stitched.mean([stitched[s, m] for s in self.seeds]), ppy))
        write_json(self.out / "report.json", report.json_safe(result))
        report.write_bars(self.out / "bars.csv", {"agent": agent, **base_st})
        self._plots(agent, base_st, analysis, result)
        return report.json_safe(result)

    @staticmethod
    def _seed_result(agent: Stitched, ppy: float, n_trials: int, sr_var: float | None) -> dict[str, Any]:
        """One seed's stitched out-of-sample result on its own: its Sharpe, interval, PSR, DSR (against all the
        walk-forward's trials) and verdict, with its trades and exposure."""
        out = report.statistics(agent.returns, ppy, n_trials, sr_var)
        out.pop("_bootstrap_sharpes")
        m = metrics.compute_metrics(agent, ppy)
        out.update({k: m[k] for k in ("total_return", "max_drawdown", "n_trades", "exposure", "turnover")})
        return out

    def _plots(self, agent: Stitched, baselines: dict[str, Stitched], analysis: dict[str, Any],
               result: dict[str, Any]) -> None:
        curves = {"agent (seed mean)": agent.equity_curve}
        best = result.get("best_baseline")
        for name, b in baselines.items():
            if name not in NOT_PLOTTED and (name == best or name in ("buy_and_hold",)):
                curves[f"{name.replace('_', ' ')}{' (best baseline)' if name == best else ''}"] = b.equity_curve
        times = np.r_[agent.time[0], agent.time]
        starts = [np.datetime64(f["test"]["start"][:-1], "ns") for f in result["folds"]]
        plots.plot_walkforward(times, curves, starts, self.out / "walkforward_equity.png",
                               title=f"Walk-forward: stitched out-of-sample equity ({len(self.folds)} folds, "
                                     f"{len(self.seeds)} seed(s))")
        plots.plot_bootstrap(analysis["_bootstrap_sharpes"], result["sharpe"], tuple(result["sharpe_ci"]),
                             self.out / "bootstrap_sharpe.png", title="Bootstrap distribution of the stitched Sharpe")
        plots.plot_cost_sensitivity(result["cost_sensitivity_table"], self.out / "cost_sensitivity.png",
                                    result["break_even_cost_multiple"], title="Cost sensitivity (walk-forward)")


def fold_bars_never_leak(folds: list[Fold], embargo: int) -> bool:
    """True when no fold's test bars lie in its training or validation period (or within the embargo of them)."""
    for f in folds:
        if f.train[1] + embargo > f.val[0] or f.val[1] + embargo > f.test[0]:
            return False
    return True


__all__ = ["Fold", "RESULT_FILE", "Stitched", "WalkForward", "WalkForwardArgs", "fold_bars_never_leak",
           "fold_layout"]
