"""Fabric loggers for a run: CSV, TensorBoard, MLflow and Weights & Biases (offline unless asked).

:func:`make_loggers` builds the loggers named on the command line. A run keeps one of each
across all its sessions (:mod:`engine.rundir`): the CSV and TensorBoard loggers write to
``logs/<kind>/<name>/version_<version>`` (the run's log version), W&B resumes the run id
``run_id`` and MLflow the run id its logger reported in the checkpoint. When a session
continues a checkpoint at step S, what an earlier (killed) session logged after S is dropped:
CSV rows with ``step > S`` and TensorBoard events (``purge_step``), so each step appears once.

* CSV: Fabric's ``CSVLogger`` plus ``hparams.json`` next to ``metrics.csv``.
* TensorBoard: Fabric's ``TensorBoardLogger``; hyper-parameters go to the HParams tab together
  with the monitored metrics (the tab needs at least one).
* MLflow: Lightning's ``MLFlowLogger`` (params are immutable in MLflow: a continued run logs
  only new keys, and changed values as tags ``changed/<key>``). Default store: ``sqlite:///<out_dir>/mlflow.db`` with
  artifacts in ``<out_dir>/mlartifacts`` (MLflow 3 refuses a plain ``./mlruns`` file store
  unless ``MLFLOW_ALLOW_FILE_STORE`` is set; a local SQLite file needs no server); any
  tracking URI (``http://host:5000``) with ``--hooks.mlflow-tracking-uri``.
* W&B: Lightning's ``WandbLogger``, in ``mode="offline"`` (files under ``<out_dir>/wandb``,
  upload later with ``wandb sync``) unless ``online``; tags and notes from the CLI; the
  options are set on its own ``wandb.Settings``, never in the process environment; the run
  is finished when training ends (several runs in one process stay apart).
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.fabric.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.rank_zero import rank_zero_only

LOGGER_KINDS: tuple[str, ...] = ("csv", "tensorboard", "wandb", "mlflow")


def flatten_hparams(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> flat ``{"a/b": value}`` of numbers, strings and bools (other values via ``str``)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_hparams(value, f"{name}/"))
        elif isinstance(value, (bool, int, float, str)) or value is None:
            out[name] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
            out[name] = str(list(value))
        else:
            out[name] = str(value)
    return out


class HParamsCSVLogger(CSVLogger):
    """Fabric's CSVLogger plus ``log_hyperparams`` (writes ``hparams.json`` next to ``metrics.csv``).

    ``keep_until_step``: this logger continues a run at that step: the rows of ``metrics.csv`` up
    to it are kept (Fabric's writer would delete the file), later ones dropped. It happens in
    ``log_hyperparams``, which the engine calls before logging anything."""

    def __init__(self, *args: Any, keep_until_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_until_step = keep_until_step
        self._carried = False

    def _earlier_rows(self) -> list[dict[str, float]]:
        path = Path(self.log_dir) / "metrics.csv"
        if self.keep_until_step is None or not path.is_file():
            return []
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        kept = []
        for row in rows:
            values = {k: float(v) for k, v in row.items() if k and v not in ("", None)}
            if "step" in values and values["step"] <= self.keep_until_step:
                kept.append(values)
        return kept

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
        rows = [] if self._carried else self._earlier_rows()
        with warnings.catch_warnings():  # continuing: the rows worth keeping are in `rows`, written back below
            if self.keep_until_step is not None:
                warnings.filterwarnings("ignore", message="Experiment logs directory")
            experiment = self.experiment  # creates the version directory (and drops an old metrics.csv)
        if not self._carried:
            self._carried = True
            for row in rows:
                step = int(row.pop("step"))
                experiment.log_metrics(row, step)
            if rows:
                experiment.save()
        log_dir = Path(self.log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        tmp = log_dir / "hparams.json.tmp"
        tmp.write_text(json.dumps(flatten_hparams(dict(params)), indent=2, sort_keys=True))
        tmp.replace(log_dir / "hparams.json")


class HParamsTensorBoardLogger(TensorBoardLogger):
    """Fabric's TensorBoardLogger whose ``log_hyperparams(params)`` fills the HParams tab, with
    ``metric_names`` as its metric columns (their values come from the logged scalars)."""

    def __init__(self, *args: Any, metric_names: Sequence[str] = ("episode/return_mean",), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metric_names = tuple(metric_names)

    @rank_zero_only
    def log_hyperparams(self, params: Any, metrics: dict[str, Any] | None = None, step: int | None = None) -> None:
        if metrics is None:
            metrics = {name: float("nan") for name in self.metric_names}
        super().log_hyperparams(flatten_hparams(dict(params)), metrics, step)


def _wandb_logger_class() -> type:
    from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger

    class WandbLogger(LightningWandbLogger):
        """Lightning's WandbLogger that finishes its run when training ends and says where its files are."""

        started = False

        @property
        @rank_zero_experiment
        def experiment(self) -> Any:
            run = LightningWandbLogger.experiment.fget(self)
            self.started = True
            return run

        @property
        def run_dir(self) -> Path | None:
            """The local run directory (``<save_dir>/wandb/offline-run-...``) once the run has started."""
            return Path(self.experiment.dir).parent if self.started else None

        @rank_zero_only
        def finalize(self, status: str) -> None:
            super().finalize(status)
            if self.started:
                self.experiment.finish(exit_code=0 if status == "success" else 1)

    return WandbLogger


def make_wandb_logger(save_dir: str | Path, name: str, *, run_id: str | None = None, project: str = "fxai",
                      online: bool = False, tags: Sequence[str] = (), notes: str | None = None,
                      config: Mapping[str, Any] | None = None) -> Logger:
    """A W&B logger for run ``run_id`` (resumed when it exists), offline unless ``online``."""
    import wandb

    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(mode="online" if online else "offline", silent=True, console="off",
                              x_disable_stats=True, disable_git=True, save_code=False)
    return _wandb_logger_class()(name=name, save_dir=str(save_dir), id=run_id, project=project, offline=False,
                                 settings=settings, tags=list(tags) or None, notes=notes, config=dict(config or {}),
                                 reinit="create_new", resume="allow")


def _mlflow_logger_class() -> type:
    from lightning.pytorch.loggers import MLFlowLogger as LightningMLFlowLogger

    class MLFlowLogger(LightningMLFlowLogger):
        """Lightning's MLFlowLogger for a run that may be continued: MLflow params cannot change, so a later
        session logs only new keys, and a value that changed as the tag ``changed/<key>``."""

        @rank_zero_only
        def log_hyperparams(self, params: Any) -> None:
            flat = flatten_hparams(dict(params))
            logged = self.experiment.get_run(self.run_id).data.params
            for key, value in flat.items():
                if key in logged and logged[key] != str(value)[:250]:
                    self.experiment.set_tag(self.run_id, f"changed/{key}", str(value)[:250])
            super().log_hyperparams({k: v for k, v in flat.items() if k not in logged})

    return MLFlowLogger  # same class name as Lightning's: the checkpoint keys logger versions by class name


def make_mlflow_logger(out_dir: str | Path, name: str, *, tracking_uri: str | None = None,
                       experiment: str = "fxai", run_id: str | None = None) -> Logger:
    """An MLflow logger: the run ``run_id`` when given (continued), else a new run named ``name``."""
    out_dir = Path(out_dir).resolve()
    uri = tracking_uri or f"sqlite:///{out_dir / 'mlflow.db'}"
    artifacts = None if tracking_uri else (out_dir / "mlartifacts").as_uri()
    return _mlflow_logger_class()(experiment_name=experiment, run_name=name, tracking_uri=uri, run_id=run_id,
                                  artifact_location=artifacts)


def make_loggers(
    kinds: Sequence[str],
    out_dir: str | Path,
    run_name: str,
    hparams: Mapping[str, Any] | None = None,
    *,
    run_id: str | None = None,
    version: int = 0,
    resume_step: int | None = None,
    versions: Mapping[str, str] | None = None,
    online: bool = False,
    project: str = "fxai",
    tags: Sequence[str] = (),
    notes: str | None = None,
    mlflow_tracking_uri: str | None = None,
    mlflow_experiment: str = "fxai",
    hparam_metrics: Sequence[str] = ("episode/return_mean",),
    is_global_zero: bool = True,
) -> list[Logger]:
    """Loggers for ``kinds`` (any of :data:`LOGGER_KINDS`); ``hparams``, when given, are logged now
    (the engine logs the run's config itself once Fabric has launched).

    The run's identity (:class:`engine.rundir.RunPlan`): ``run_id`` (W&B), ``version`` (CSV and
    TensorBoard), ``versions`` (logger class name -> version from the checkpoint: MLflow's run id),
    ``resume_step`` (the continued checkpoint's step). ``online``/``project``/``tags``/``notes``: W&B;
    ``mlflow_*``: MLflow's store and experiment; ``hparam_metrics``: TensorBoard's HParams columns.
    Every logger writes on rank 0 only; a caller that knows it is not rank 0 gets no W&B or MLflow logger.
    """
    unknown = [k for k in kinds if k not in LOGGER_KINDS]
    if unknown:
        raise ValueError(f"--hooks.loggers: unknown logger(s) {unknown}; choose from {list(LOGGER_KINDS)}")
    out_dir = Path(out_dir)
    versions = dict(versions or {})
    flat = flatten_hparams(dict(hparams or {}))
    loggers: list[Logger] = []
    for kind in dict.fromkeys(kinds):  # de-duplicate, keep order
        if kind == "csv":
            logger: Logger = HParamsCSVLogger(root_dir=out_dir / "logs" / "csv", name=run_name, version=version,
                                              keep_until_step=resume_step)
        elif kind == "tensorboard":
            extra = {} if resume_step is None else {"purge_step": resume_step + 1}
            logger = HParamsTensorBoardLogger(root_dir=out_dir / "logs" / "tensorboard", name=run_name,
                                              version=version, default_hp_metric=False,
                                              metric_names=hparam_metrics, **extra)
        elif not is_global_zero:
            continue
        elif kind == "wandb":
            logger = make_wandb_logger(out_dir, run_name, run_id=run_id, project=project, online=online, tags=tags,
                                       notes=notes, config=flat)
        else:
            logger = make_mlflow_logger(out_dir, run_name, tracking_uri=mlflow_tracking_uri,
                                        experiment=mlflow_experiment, run_id=versions.get("MLFlowLogger"))
        if is_global_zero and hparams is not None:
            logger.log_hyperparams(flat)
        loggers.append(logger)
    return loggers
