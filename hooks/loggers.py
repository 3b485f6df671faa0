"""Fabric loggers for a run: CSV, TensorBoard and Weights & Biases (offline unless asked).

:func:`make_loggers` builds the loggers named on the command line, each already holding the
run's configuration as hyper-parameters. The W&B logger never touches the network unless
``wandb_online=True``: it runs in ``mode="offline"`` with its files under
``<out_dir>/wandb`` (upload later with ``wandb sync``), and it sets these options on its own
``wandb.Settings`` instead of in the process environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.fabric.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.rank_zero import rank_zero_only

LOGGER_KINDS: tuple[str, ...] = ("csv", "tensorboard", "wandb")


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
    """Fabric's CSVLogger plus ``log_hyperparams``, which writes ``hparams.json`` next to ``metrics.csv``."""

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
        _ = self.experiment  # creates the version directory first (its existence check would warn otherwise)
        log_dir = Path(self.log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "hparams.json", "w") as fh:
            json.dump(flatten_hparams(dict(params)), fh, indent=2, sort_keys=True)


class WandbLogger(Logger):
    """A thin Fabric logger over ``wandb``; offline by default, the run starts on first use."""

    def __init__(
        self,
        save_dir: str | Path,
        name: str,
        project: str = "fxai",
        online: bool = False,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._save_dir = Path(save_dir)
        self._name = name
        self._project = project
        self._online = online
        self._config = dict(config or {})
        self._run: Any = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        return self._run.id if self._run is not None else ""

    @property
    def root_dir(self) -> str:
        return str(self._save_dir)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The ``wandb`` run (started on first access, on rank 0 only)."""
        if self._run is None:
            import wandb

            self._save_dir.mkdir(parents=True, exist_ok=True)
            settings = wandb.Settings(
                mode="online" if self._online else "offline",
                silent=True,
                console="off",
                x_disable_stats=True,
                disable_git=True,
                save_code=False,
            )
            self._run = wandb.init(
                project=self._project,
                name=self._name,
                dir=str(self._save_dir),
                config=self._config,
                settings=settings,
                reinit="create_new",
            )
        return self._run

    @property
    def run_dir(self) -> Path | None:
        """The local run directory (``<save_dir>/wandb/offline-run-...``) once the run has started."""
        return Path(self._run.dir).parent if self._run is not None else None

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.experiment.log(dict(metrics), step=step)

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> None:
        self.experiment.config.update(flatten_hparams(dict(params)), allow_val_change=True)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._run is not None:
            self._run.finish(exit_code=0 if status == "success" else 1)


def make_loggers(
    kinds: Sequence[str],
    out_dir: str | Path,
    run_name: str,
    hparams: Mapping[str, Any] | None = None,
    *,
    online: bool = False,
    project: str = "fxai",
    is_global_zero: bool = True,
) -> list[Logger]:
    """Loggers for ``kinds`` (any of "csv", "tensorboard", "wandb"); ``hparams``, when given, are logged now
    (the engine logs the run's config itself once Fabric has launched).

    ``online``: let W&B upload (default offline); ``project``: the W&B project.

    Files go under ``<out_dir>/logs/csv/<run_name>/version_<n>`` (CSV; a resumed run gets the next
    version instead of overwriting), ``<out_dir>/logs/tensorboard/<run_name>/version_<n>`` and
    ``<out_dir>/wandb``. Every logger writes on rank 0 only (Lightning's ``rank_zero_only``); a
    caller that already knows it is not rank 0 gets no W&B logger at all.
    """
    unknown = [k for k in kinds if k not in LOGGER_KINDS]
    if unknown:
        raise ValueError(f"--hooks.loggers: unknown logger(s) {unknown}; choose from {list(LOGGER_KINDS)}")
    out_dir = Path(out_dir)
    flat = flatten_hparams(dict(hparams or {}))
    loggers: list[Logger] = []
    for kind in dict.fromkeys(kinds):  # de-duplicate, keep order
        if kind == "csv":
            logger: Logger = HParamsCSVLogger(root_dir=out_dir / "logs" / "csv", name=run_name)
        elif kind == "tensorboard":
            logger = TensorBoardLogger(root_dir=out_dir / "logs" / "tensorboard", name=run_name, default_hp_metric=False)
        else:
            if not is_global_zero:
                continue
            logger = WandbLogger(out_dir, run_name, project, online, config=flat)
        if is_global_zero and hparams is not None:
            logger.log_hyperparams(flat)
        loggers.append(logger)
    return loggers
