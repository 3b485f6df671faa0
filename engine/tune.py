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
``<out-dir>/tune_results.csv`` (with ``fail_reason`` for the failed ones).

Nothing in the study is touched before every flag is checked: the search's own, the trainer's
(:func:`engine.launch.validate`), and the search space against the trainer (each choice and both
ends of each range must make a valid config). A trial that fails is marked FAILED with its reason
(the user attribute ``fail_reason``); a diverged trial (non-finite losses) does not stop the study,
any other failure does. Trials send a heartbeat to the storage (``--heartbeat-interval``); a trial
left RUNNING by a process that died (SIGKILL, a lost node) is marked FAILED when the study is next
opened. SIGTERM/SIGINT stop the running trial after its current cycle (with a checkpoint), mark it
FAILED ("stopped by SIGTERM") and end the study (exit 128 + signal).
"""

from __future__ import annotations

if __name__ == "__main__":  # Ctrl-C during the imports below: one line, exit 130
    from engine.startup import quiet_interrupts

    quiet_interrupts()

import dataclasses
import logging
import math
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import optuna
import tyro

from configs import TrainConfig, presets
from engine.cli import exit_code, one_line, run_command
from engine.errors import NonFiniteLossError
from engine.ranges import check_numbers
from hooks.optuna_pruning import OptunaHook

DEFAULT_TOTAL_STEPS = 20_000
RESULTS_FILE = "tune_results.csv"


@dataclass(frozen=True)
class FloatRange:
    """A float sampled uniformly (or log-uniformly) from ``[low, high]``."""

    RANGES: ClassVar[dict[str, str]] = {"low": "(-inf, inf)", "high": "(-inf, inf)"}
    """Any finite numbers (``check`` compares them; the trainer's ranges are checked by :func:`check_space`)."""

    low: float
    """Smallest value."""
    high: float
    """Largest value."""
    log: bool = False
    """Sample the logarithm uniformly."""

    def check(self, name: str) -> None:
        if not all(map(math.isfinite, (self.low, self.high))) or not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"--space.{name.replace('_', '-')}: need finite low < high (and low > 0 with log), "
                             f"got low={self.low}, high={self.high}, log={self.log}")

    def sample(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Choice:
    """One of a few values."""

    RANGES: ClassVar[dict[str, str]] = {"values": "(-inf, inf)"}
    """Any integers (the trainer's ranges are checked by :func:`check_space`)."""

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

    RANGES: ClassVar[dict[str, str]] = {"n_trials": "[1, 1000000]", "n_startup_trials": "[0, 1000000]",
                                        "warmup_fraction": "[0, 1)", "sampler_seed": "[0, 4294967295]",
                                        "heartbeat_interval": "[0, 86400]"}
    """Allowed values (:mod:`engine.ranges`)."""
    FLAT_SECTIONS: ClassVar[tuple[str, ...]] = ("train",)
    """The trainer's flags carry no ``--train.`` prefix."""

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
    heartbeat_interval: int = 60
    """Seconds between a running trial's heartbeats to the storage (0 = none; SQL storages only). A trial
    without a heartbeat for twice as long is taken for dead (its process was killed) and marked FAILED."""
    space: SearchSpace = field(default_factory=SearchSpace)
    """The search space."""
    train: Annotated[_Trainer, tyro.conf.arg(name=""), tyro.conf.OmitSubcommandPrefixes] = field(
        default_factory=lambda: _PRESETS["cartpole"])
    """The trainer's config: a preset subcommand and its flags (``--out-dir`` is the study directory)."""

    def check(self) -> None:
        """The search's own flags: every number's range (the trainer's too), and the search space."""
        check_numbers(self)
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


SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def _note_stale(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    print(f"note: trial {trial.number} was left RUNNING by a process that stopped sending heartbeats (killed?): "
          f"marked FAILED", file=sys.stderr)


def make_storage(url: str | None, heartbeat_interval: int = 60) -> optuna.storages.BaseStorage | None:
    """The study's storage (None: in memory). A SQL URL gets heartbeats every ``heartbeat_interval`` seconds;
    a trial without one for twice as long is failed when a study is next opened. Raises one line naming
    ``--storage`` when the URL cannot be opened."""
    if url is None:
        return None
    try:
        if heartbeat_interval > 0 and url.split(":", 1)[0].split("+", 1)[0] in SQL_SCHEMES:
            with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_interval,
                                                  grace_period=2 * heartbeat_interval,
                                                  heartbeat_stale_trial_callback=_note_stale)
        return optuna.storages.get_storage(url)
    except Exception as exc:  # noqa: BLE001  (sqlalchemy and optuna raise many types for a bad URL)
        raise ValueError(f"--storage {url}: cannot open it as an Optuna storage: {one_line(exc)}") from None


def open_study(study_name: str, storage: str | optuna.storages.BaseStorage | None, direction: str,
               pruner: optuna.pruners.BasePruner, seed: int) -> optuna.Study:
    """Create the study or continue the one already in ``storage``; trials a dead process left RUNNING are
    failed now (when the storage has heartbeats)."""
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)
    study = optuna.create_study(study_name=study_name, storage=storage, direction=direction, pruner=pruner,
                                sampler=sampler, load_if_exists=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return study


def check_space(base: Any, space: SearchSpace, section: str = "ppo") -> None:
    """Every value the search may sample must make a valid trainer config: each choice, and both ends of each
    range, applied to ``base`` and checked like a training command checks its flags (one line naming the
    ``--space`` flag otherwise), so no trial fails for a value the space should not hold."""
    from engine import registry

    algo = registry.algorithm(base.algo)
    probes: list[tuple[str, dict[str, Any]]] = []
    for name, dist in space.items():
        flag = f"--space.{name.replace('_', '-')}"
        if isinstance(dist, Choice):
            probes += [(f"{flag}.values", {name: v}) for v in dist.values]
        else:
            probes += [(f"{flag}.low", {name: dist.low}), (f"{flag}.high", {name: dist.high})]
    for flag, params in probes:
        cfg = apply_params(base, params, section)
        try:
            check_numbers(cfg)
            algo.cls.check_config(registry.section(cfg, algo.section), cfg.rollout_steps * cfg.num_envs,
                                  f"--{algo.section}")
        except ValueError as exc:
            value = next(iter(params.values()))
            raise ValueError(f"{flag}: {value!r} makes an invalid trainer config ({exc})") from None


def make_objective(*, base: Any, metric: str, direction: str, space: SearchSpace,
                   train_fn: Callable[..., dict[str, Any]], section: str = "ppo") -> Callable[[optuna.Trial], float]:
    """The function Optuna calls once per trial: apply the sample to ``base``, train, return the metric."""
    mode = "max" if direction == "maximize" else "min"
    out_dir = Path(base.out_dir)

    def objective(trial: optuna.Trial) -> float:
        try:
            return run_trial(trial)
        except optuna.TrialPruned:
            raise
        except BaseException as exc:  # recorded on the trial (still RUNNING, so it can be), then Optuna fails it
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {one_line(exc)}"[:1000])
            raise

    def run_trial(trial: optuna.Trial) -> float:
        cfg = dataclasses.replace(base, out_dir=str(out_dir / f"trial_{trial.number}"))
        cfg = apply_params(cfg, sample_params(trial, space), section)
        hook = OptunaHook(trial, metric, mode)
        summary = train_fn(cfg, hooks=[hook])
        if hook.pruned:
            raise optuna.TrialPruned(f"pruned at {metric}={hook.last_value}")
        if hook.last_value is None:
            raise ValueError(
                f"tune: metric {metric!r} never appeared in the metrics of trial {trial.number} "
                f"(keys seen: {', '.join(hook.seen_keys) or 'none'}); choose another --metric"
            )
        if not math.isfinite(hook.last_value):
            raise NonFiniteLossError(f"tune: trial {trial.number} ended with {metric} = {hook.last_value}")
        if isinstance(summary, Mapping):
            trial.set_user_attr("global_step", int(summary.get("global_step", 0) or 0))
        return hook.last_value

    return objective


def results_table(study: optuna.Study) -> Any:
    """One row per trial: number, state, value, params, duration, user attributes (a pandas DataFrame); a
    failed trial without a recorded reason was failed for its missing heartbeat."""
    df = study.trials_dataframe(attrs=("number", "state", "value", "params", "duration", "user_attrs"))
    if "duration" in df:
        df["duration"] = df["duration"].dt.total_seconds()
    if "state" in df and (df["state"] == "FAIL").any():
        if "user_attrs_fail_reason" not in df:
            df["user_attrs_fail_reason"] = None
        stale = (df["state"] == "FAIL") & df["user_attrs_fail_reason"].isna()
        df.loc[stale, "user_attrs_fail_reason"] = "no heartbeat: its process stopped (killed?) while it ran"
    return df


def write_results(study: optuna.Study, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    results_table(study).to_csv(path, index=False)
    return path


def best_trial_text(study: optuna.Study, metric: str) -> str:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    failed = sum(t.state == optuna.trial.TrialState.FAIL for t in study.trials)
    head = f"{len(study.trials)} trials: {len(done)} complete, {pruned} pruned" + (f", {failed} failed" if failed
                                                                                     else "")
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
    metric = args.metric or default_metric(args.train)
    url = None if args.storage == "memory" else args.storage or default_storage(out_dir)
    warmup = int(args.warmup_fraction * args.train.total_steps)
    pruner = make_pruner(args.pruner, args.n_startup_trials, warmup)
    out_dir.mkdir(parents=True, exist_ok=True)
    study = open_study(args.study_name, make_storage(url, args.heartbeat_interval), args.direction, pruner,
                       args.sampler_seed)
    objective = make_objective(base=args.train, metric=metric, direction=args.direction, space=args.space,
                               train_fn=train_fn)
    try:  # a diverged trial is a result of its sample: the study goes on; anything else ends it
        study.optimize(objective, n_trials=args.n_trials, gc_after_trial=gc_after_trial, catch=(NonFiniteLossError,))
    finally:
        write_results(study, out_dir / RESULTS_FILE)
    return study


class _ExpectedErrorsInOneLine(logging.Filter):
    """Optuna logs a failed trial with its traceback; an expected error (bad input, divergence, a signal: what
    :func:`engine.cli.exit_code` knows) is one line, as everywhere else. A bug keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and exit_code(exc) is not None:
            record.exc_info, record.exc_text = None, None
        return True


def main(argv: Sequence[str] | None = None, train_fn: Callable[..., dict[str, Any]] | None = None) -> int:
    """Check every flag (the search's, the trainer's, the space against the trainer) before the study is
    touched, then tune; errors end as one line (:func:`engine.cli.run_command`). Returns 0."""
    def body() -> int:
        optimize_log = logging.getLogger("optuna.study._optimize")  # where Optuna logs a failed trial
        if not any(isinstance(f, _ExpectedErrorsInOneLine) for f in optimize_log.filters):
            optimize_log.addFilter(_ExpectedErrorsInOneLine())
        args = parse_cli(argv)
        args.check()
        if train_fn is None:
            from engine.launch import validate

            validate(args.train)  # a bad trainer setting fails before the study is touched
        check_space(args.train, args.space)
        study = tune(args, train_fn=train_fn)
        metric = args.metric or default_metric(args.train)
        print(best_trial_text(study, metric))
        print(f"results: {Path(args.train.out_dir) / RESULTS_FILE}")
        return 0

    return run_command(body)


if __name__ == "__main__":
    raise SystemExit(main())
