"""Hyper-parameter search with Optuna: ``python -m engine.tune``.

Each trial parses the usual training flags (``engine.ppo.parse_args``), overwrites the
sampled PPO fields (``cfg.ppo.<field>``), trains into ``<out-dir>/trial_<n>`` with an
:class:`hooks.OptunaHook` that reports the monitored metric at every cycle where it
appears (Optuna's step = the global env step) and stops the run when the pruner says so.
The objective is the metric's last reported value.

The study lives in SQLite (``sqlite:///<out-dir>/study.db`` by default) and is opened with
``load_if_exists=True``, so running the same command again adds trials to the same study.
At the end the best trial is printed and every trial is written to
``<out-dir>/tune_results.csv``.

Examples::

    python -m engine.tune --n-trials 8                       # CartPole, 20k steps a trial
    python -m engine.tune --preset fx --metric val/sharpe --total-steps 100000 -- --hooks.eval-every 2

Arguments after ``--`` (or any flag this script does not know) go to the trainer unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from hooks.optuna_pruning import OptunaHook


@dataclass(frozen=True)
class FloatRange:
    """A float sampled uniformly (or log-uniformly) from ``[low, high]``."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"FloatRange: need 0 < low < high for log ranges and low < high otherwise, got {self}")

    def sample(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Choice:
    """One of a few values (ints, floats, strings or bools)."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("Choice: needs at least one value")

    def sample(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))


SearchSpace = Mapping[str, "FloatRange | Choice"]

#: PPO fields searched by default (names are fields of ``engine.config.PPOConfig``).
DEFAULT_SPACE: dict[str, FloatRange | Choice] = {
    "learning_rate": FloatRange(1e-4, 3e-3, log=True),
    "ent_coef": FloatRange(1e-5, 3e-2, log=True),
    "clip_coef": FloatRange(0.1, 0.3),
    "gae_lambda": FloatRange(0.8, 0.99),
    "num_minibatches": Choice((1, 2, 4)),  # more minibatches multiply the update cost
}

DEFAULT_TOTAL_STEPS = 20_000
RESULTS_FILE = "tune_results.csv"


def sample_params(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """One value per field of ``space``, drawn through ``trial``."""
    return {name: dist.sample(trial, name) for name, dist in space.items()}


def apply_params(cfg: Any, params: Mapping[str, Any], section: str = "ppo") -> Any:
    """``cfg`` with ``cfg.<section>.<field>`` set to ``params`` (a new config; unknown fields raise)."""
    sub = getattr(cfg, section, None)
    if sub is None or not dataclasses.is_dataclass(sub):
        raise ValueError(f"tune: the training config has no dataclass section {section!r}")
    known = {f.name for f in dataclasses.fields(sub)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"tune: search-space field(s) {unknown} are not fields of cfg.{section}; known: {sorted(known)}"
        )
    return dataclasses.replace(cfg, **{section: dataclasses.replace(sub, **params)})


def default_metric(preset: str | None) -> str:
    """``val/sharpe`` for FX presets, else the training episode return."""
    return "val/sharpe" if preset is not None and preset.startswith("fx") else "episode/return_mean"


def make_pruner(name: str, n_startup_trials: int = 2, n_warmup_steps: int = 0) -> optuna.pruners.BasePruner:
    """``median`` (prunes below the median of earlier trials at the same step, from step
    ``n_warmup_steps`` on), ``hyperband`` or ``none``."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"--pruner {name!r}: choose median, hyperband or none")


def default_storage(out_dir: str | Path) -> str:
    return f"sqlite:///{Path(out_dir).resolve() / 'study.db'}"


def open_study(
    study_name: str,
    storage: str | None,
    direction: str,
    pruner: optuna.pruners.BasePruner,
    seed: int,
) -> optuna.Study:
    """Create the study or continue the one already in ``storage``."""
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)
    return optuna.create_study(
        study_name=study_name, storage=storage, direction=direction, pruner=pruner,
        sampler=sampler, load_if_exists=True,
    )


def make_objective(
    *,
    base_args: Sequence[str],
    out_dir: str | Path,
    metric: str,
    direction: str,
    space: SearchSpace,
    parse_fn: Callable[[list[str]], Any],
    train_fn: Callable[..., dict[str, Any]],
    section: str = "ppo",
) -> Callable[[optuna.Trial], float]:
    """The function Optuna calls once per trial: parse, apply the sample, train, return the metric."""
    mode = "max" if direction == "maximize" else "min"

    def objective(trial: optuna.Trial) -> float:
        params = sample_params(trial, space)
        cfg = parse_fn([*base_args, f"--out-dir={Path(out_dir) / f'trial_{trial.number}'}"])
        cfg = apply_params(cfg, params, section)
        hook = OptunaHook(trial, metric, mode)
        summary = train_fn(cfg, hooks=[hook])
        if hook.pruned:
            raise optuna.TrialPruned(f"pruned at {metric}={hook.last_value}")
        if hook.last_value is None:
            raise RuntimeError(
                f"tune: metric {metric!r} never appeared in the metrics of trial {trial.number} "
                f"(keys seen: {', '.join(hook.seen_keys) or 'none'}); choose another --metric"
            )
        if isinstance(summary, Mapping):
            trial.set_user_attr("global_step", int(summary.get("global_step", 0) or 0))
        return hook.last_value

    return objective


def results_table(study: optuna.Study) -> Any:
    """One row per trial: number, state, value, params, duration (a pandas DataFrame)."""
    df = study.trials_dataframe(attrs=("number", "state", "value", "params", "duration", "user_attrs"))
    if "duration" in df:
        df["duration"] = df["duration"].dt.total_seconds()
    return df


def write_results(study: optuna.Study, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    results_table(study).to_csv(path, index=False)
    return path


def best_trial_text(study: optuna.Study, metric: str) -> str:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    head = f"{len(study.trials)} trials: {len(done)} complete, {pruned} pruned"
    if not done:
        return head + "; no complete trial yet"
    best = study.best_trial
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
    return f"{head}\nbest trial #{best.number}: {metric} = {best.value:.6g}\n  {params}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m engine.tune",
        description="Optuna search over PPO hyper-parameters; unknown flags are passed to the trainer.",
        allow_abbrev=False,  # a trainer flag must never be taken for an abbreviation of one of ours
    )
    p.add_argument("--n-trials", type=int, default=8, help="trials to run in this call (default 8)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default sqlite:///<out-dir>/study.db; 'memory' = not persisted)")
    p.add_argument("--study-name", default="fxai-tune", help="study name inside the storage")
    p.add_argument("--pruner", default="median", choices=("median", "hyperband", "none"))
    p.add_argument("--n-startup-trials", type=int, default=2, help="median pruner: trials before pruning starts")
    p.add_argument("--warmup-fraction", type=float, default=0.25,
                   help="median pruner: no pruning in the first fraction of --total-steps (early returns are noise)")
    p.add_argument("--out-dir", default="runs/tune", help="study directory; trial n trains in <out-dir>/trial_n")
    p.add_argument("--preset", default="cartpole", help="training preset (see configs/)")
    p.add_argument("--total-steps", type=int, default=DEFAULT_TOTAL_STEPS, help="env steps per trial")
    p.add_argument("--metric", default=None,
                   help="objective metric (default: val/sharpe for fx presets, else episode/return_mean)")
    p.add_argument("--direction", default="maximize", choices=("maximize", "minimize"))
    p.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler (--seed goes to the trainer)")
    return p


def parse_cli(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """Tune options and the flags to pass to the trainer (after ``--`` or not known here)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, passthrough = argv[:i], argv[i + 1:]
    args, unknown = build_parser().parse_known_args(argv)
    if args.n_trials < 1:
        raise SystemExit(f"--n-trials must be >= 1, got {args.n_trials}")
    if args.total_steps is not None and args.total_steps < 1:
        raise SystemExit(f"--total-steps must be >= 1, got {args.total_steps}")
    if not 0.0 <= args.warmup_fraction < 1.0:
        raise SystemExit(f"--warmup-fraction must be in [0, 1), got {args.warmup_fraction}")
    return args, [*unknown, *passthrough]


def trainer_args(args: argparse.Namespace, extra: Sequence[str]) -> list[str]:
    """The trainer flags shared by every trial (the trial's ``--out-dir`` is added per trial)."""
    base: list[str] = []
    if args.preset:
        base += ["--preset", args.preset]
    if args.total_steps is not None:
        base.append(f"--total-steps={args.total_steps}")
    base.append("--hooks.no-progress")
    return [*base, *extra]


def tune(
    args: argparse.Namespace,
    extra: Sequence[str] = (),
    *,
    space: SearchSpace = DEFAULT_SPACE,
    parse_fn: Callable[[list[str]], Any] | None = None,
    train_fn: Callable[..., dict[str, Any]] | None = None,
    gc_after_trial: bool = True,
) -> optuna.Study:
    """Run ``args.n_trials`` trials (adding to an existing study) and write the results table.

    ``parse_fn``/``train_fn`` default to ``engine.ppo.parse_args``/``engine.ppo.train``.
    """
    if parse_fn is None or train_fn is None:
        import engine.ppo as ppo

        parse_fn = parse_fn or ppo.parse_args
        train_fn = train_fn or ppo.train
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metric = args.metric or default_metric(args.preset)
    storage = None if args.storage == "memory" else args.storage or default_storage(out_dir)
    warmup = int(args.warmup_fraction * args.total_steps) if args.total_steps else 0
    study = open_study(
        args.study_name, storage, args.direction,
        make_pruner(args.pruner, args.n_startup_trials, warmup), args.sampler_seed,
    )
    objective = make_objective(
        base_args=trainer_args(args, extra), out_dir=out_dir, metric=metric, direction=args.direction,
        space=space, parse_fn=parse_fn, train_fn=train_fn,
    )
    study.optimize(objective, n_trials=args.n_trials, gc_after_trial=gc_after_trial)
    write_results(study, out_dir / RESULTS_FILE)
    return study


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_cli(argv)
    study = tune(args, extra)
    metric = args.metric or default_metric(args.preset)
    print(best_trial_text(study, metric))
    print(f"results: {Path(args.out_dir) / RESULTS_FILE}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return 0 if done and math.isfinite(study.best_value) else 1


if __name__ == "__main__":
    raise SystemExit(main())
