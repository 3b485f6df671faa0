"""Hyper-parameter search with Optuna: ``python -m engine.tune``.

    python -m engine.tune --n-trials 8                                   # CartPole, 20k steps a trial
    python -m engine.tune --n-trials 8 fx --total-steps 100000 --hooks.eval-every 2
    python -m engine.tune --space.learning-rate.high 1e-2 --space.fixed ent_coef cartpole

The command line is the training command's (a preset subcommand and its flags, parsed once,
so a typo fails before the study is touched) plus the search's own flags and the search space
(``--space.*``, shown in ``--help``). Each trial trains a copy of that config with the sampled
PPO fields (``cfg.ppo.<field>``) into ``<out-dir>/trial_<n>``, with an
:class:`hooks.OptunaHook` that reports the monitored metric at every cycle where it appears
(Optuna's step = the global env step) and stops the run when the pruner says so. The
objective is the metric's last reported value.

The study lives in SQLite (``sqlite:///<out-dir>/study.db`` by default) and is opened with
``load_if_exists=True``, so running the same command again adds trials to the same study.
At the end the best trial is printed and every trial is written to
``<out-dir>/tune_results.csv``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import optuna
import tyro

from configs import TrainConfig, presets
from hooks.optuna_pruning import OptunaHook

DEFAULT_TOTAL_STEPS = 20_000
RESULTS_FILE = "tune_results.csv"


@dataclass(frozen=True)
class FloatRange:
    """A float sampled uniformly (or log-uniformly) from ``[low, high]``."""

    low: float
    """Smallest value."""
    high: float
    """Largest value."""
    log: bool = False
    """Sample the logarithm uniformly."""

    def check(self, name: str) -> None:
        if not self.low < self.high or (self.log and self.low <= 0) or not all(map(math.isfinite, (self.low, self.high))):
            raise ValueError(f"--space.{name.replace('_', '-')}: need finite low < high (and low > 0 with log), "
                             f"got low={self.low}, high={self.high}, log={self.log}")

    def sample(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Choice:
    """One of a few values."""

    values: tuple[int, ...]
    """The values to choose from."""

    def check(self, name: str) -> None:
        if not self.values:
            raise ValueError(f"--space.{name.replace('_', '-')}.values: needs at least one value")

    def sample(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))


@dataclass
class SearchSpace:
    """The PPO fields searched (``cfg.ppo.<name>``); change a range with its flags, leave fields out with --space.fixed."""

    learning_rate: FloatRange = FloatRange(1e-4, 3e-3, log=True)
    """Adam learning rate."""
    ent_coef: FloatRange = FloatRange(1e-5, 3e-2, log=True)
    """Entropy bonus."""
    clip_coef: FloatRange = FloatRange(0.1, 0.3)
    """Surrogate clipping epsilon."""
    gae_lambda: FloatRange = FloatRange(0.8, 0.99)
    """GAE lambda."""
    num_minibatches: Choice = Choice((1, 2, 4))
    """Minibatches per epoch (more minibatches multiply the update cost)."""
    fixed: tuple[str, ...] = ()
    """Fields left at the trainer's value instead of searched."""

    def items(self) -> Iterator[tuple[str, FloatRange | Choice]]:
        for f in dataclasses.fields(self):
            if f.name != "fixed" and f.name not in self.fixed:
                yield f.name, getattr(self, f.name)

    def check(self) -> None:
        names = {f.name for f in dataclasses.fields(self)} - {"fixed"}
        unknown = sorted(set(self.fixed) - names)
        if unknown:
            raise ValueError(f"--space.fixed: {unknown} are not searched fields; choose from {sorted(names)}")
        for name, dist in self.items():
            dist.check(name)


def _tune_presets() -> dict[str, TrainConfig]:
    """The training presets with a tuning budget and quiet trials; ``cartpole`` first (the default)."""
    table = presets("ppo")
    order = ["cartpole", *[n for n in table if n != "cartpole"]]
    return {name: dataclasses.replace(table[name](), total_steps=DEFAULT_TOTAL_STEPS, out_dir="runs/tune",
                                      hooks=dataclasses.replace(table[name]().hooks, progress=False))
            for name in order}


_PRESETS = _tune_presets()
_Trainer = tyro.extras.subcommand_type_from_defaults(_PRESETS, {n: f"tune on the {n} preset" for n in _PRESETS})


@dataclass
class TuneArgs:
    """Optuna search over PPO hyper-parameters: the training command's flags, plus the search's own."""

    n_trials: int = 8
    """Trials to run in this call (added to the study in the storage)."""
    storage: str | None = None
    """Optuna storage URL (default sqlite:///<out-dir>/study.db; ``memory`` = not persisted)."""
    study_name: str = "fxai-tune"
    """Study name inside the storage."""
    pruner: Literal["median", "hyperband", "none"] = "median"
    """Prune trials below the median of earlier ones at the same step, with Hyperband, or never."""
    n_startup_trials: int = 2
    """Median pruner: complete trials before pruning starts."""
    warmup_fraction: float = 0.25
    """Median pruner: no pruning in the first fraction of --total-steps (early returns are noise)."""
    metric: str | None = None
    """Objective metric (default: the trainer's --hooks.monitor when it is available, else episode/return_mean)."""
    direction: Literal["maximize", "minimize"] = "maximize"
    """Whether a larger or smaller metric is better."""
    sampler_seed: int = 0
    """Seed of the TPE sampler (--seed is the trainer's)."""
    space: SearchSpace = field(default_factory=SearchSpace)
    """The search space."""
    train: Annotated[_Trainer, tyro.conf.arg(name=""), tyro.conf.OmitSubcommandPrefixes] = field(
        default_factory=lambda: _PRESETS["cartpole"])
    """The trainer's config: a preset subcommand and its flags (``--out-dir`` is the study directory)."""

    def check(self) -> None:
        if self.n_trials < 1:
            raise ValueError(f"--n-trials: must be >= 1 (got {self.n_trials})")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"--warmup-fraction: must be in [0, 1) (got {self.warmup_fraction})")
        if self.n_startup_trials < 0:
            raise ValueError(f"--n-startup-trials: must be >= 0 (got {self.n_startup_trials})")
        self.space.check()


def parse_cli(argv: Sequence[str] | None = None) -> TuneArgs:
    return tyro.cli(TuneArgs, args=list(sys.argv[1:] if argv is None else argv), prog="python -m engine.tune",
                    config=(tyro.conf.CascadeSubcommandArgs,))


def sample_params(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """One value per searched field of ``space``, drawn through ``trial``."""
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


def default_metric(cfg: Any) -> str:
    """The config's ``--hooks.monitor`` (``val/sharpe`` in the FX presets) when it evaluates, else the
    training episode return."""
    hooks = cfg.hooks
    return hooks.monitor if hooks.eval_every > 0 or not hooks.monitor.startswith("val/") else "episode/return_mean"


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


def open_study(study_name: str, storage: str | None, direction: str, pruner: optuna.pruners.BasePruner,
               seed: int) -> optuna.Study:
    """Create the study or continue the one already in ``storage``."""
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)
    return optuna.create_study(study_name=study_name, storage=storage, direction=direction, pruner=pruner,
                               sampler=sampler, load_if_exists=True)


def make_objective(*, base: Any, metric: str, direction: str, space: SearchSpace,
                   train_fn: Callable[..., dict[str, Any]], section: str = "ppo") -> Callable[[optuna.Trial], float]:
    """The function Optuna calls once per trial: apply the sample to ``base``, train, return the metric."""
    mode = "max" if direction == "maximize" else "min"
    out_dir = Path(base.out_dir)

    def objective(trial: optuna.Trial) -> float:
        cfg = dataclasses.replace(base, out_dir=str(out_dir / f"trial_{trial.number}"))
        cfg = apply_params(cfg, sample_params(trial, space), section)
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


def tune(args: TuneArgs, *, train_fn: Callable[..., dict[str, Any]] | None = None,
         gc_after_trial: bool = True) -> optuna.Study:
    """Run ``args.n_trials`` trials (adding to an existing study) and write the results table.

    ``train_fn(cfg, hooks=[...])`` defaults to :func:`engine.cli.train`."""
    if train_fn is None:
        from engine.cli import train as train_fn
    args.check()
    out_dir = Path(args.train.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metric = args.metric or default_metric(args.train)
    storage = None if args.storage == "memory" else args.storage or default_storage(out_dir)
    warmup = int(args.warmup_fraction * args.train.total_steps)
    study = open_study(args.study_name, storage, args.direction,
                       make_pruner(args.pruner, args.n_startup_trials, warmup), args.sampler_seed)
    objective = make_objective(base=args.train, metric=metric, direction=args.direction, space=args.space,
                               train_fn=train_fn)
    study.optimize(objective, n_trials=args.n_trials, gc_after_trial=gc_after_trial)
    write_results(study, out_dir / RESULTS_FILE)
    return study


def main(argv: Sequence[str] | None = None, train_fn: Callable[..., dict[str, Any]] | None = None) -> int:
    args = parse_cli(argv)
    try:
        args.check()
        if train_fn is None:
            from engine.launch import validate

            validate(args.train)  # a bad trainer setting fails before the study is touched
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    study = tune(args, train_fn=train_fn)
    metric = args.metric or default_metric(args.train)
    print(best_trial_text(study, metric))
    print(f"results: {Path(args.train.out_dir) / RESULTS_FILE}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return 0 if done and math.isfinite(study.best_value) else 1


if __name__ == "__main__":
    raise SystemExit(main())
