"""HooksConfig: the ``--hooks.*`` flags that choose and configure the built-in hooks and loggers.

:func:`hooks.factory.build_default_hooks` turns it into the hook list.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from engine.ranges import check_numbers
from hooks.loggers import LOGGER_KINDS

@dataclass(frozen=True)
class HooksConfig:
    """Built-in hooks: logging, checkpoints, evaluation, early stopping, phases, progress, profiling."""

    SESSION_FIELDS: ClassVar[tuple[str, ...]] = (
        "progress", "loggers", "wandb_online", "wandb_project", "wandb_tags", "wandb_notes", "wandb_artifacts",
        "mlflow_tracking_uri", "mlflow_experiment", "histogram_every", "checkpoint_every",
        "checkpoint_every_minutes", "episode_log_every", "profile", "profile_start", "profile_cycles")
    """Fields a later session of the same run may change (they do not change what is learned)."""
    RANGES: ClassVar[dict[str, str]] = {
        "histogram_every": "[0, 1e9]", "checkpoint_every": "[0, 1e9]", "checkpoint_every_minutes": "[0, 1e6]",
        "save_top_k": "[-1, 1e6]", "eval_every": "[0, 1e9]", "eval_episodes": "[1, 1e6]",
        "early_stopping_patience": "[0, 1e9]", "min_delta": "[0, 1e12]", "episode_log_every": "[0, 1e9]",
        "profile_start": "[0, 1e9]", "profile_cycles": "[1, 1e6]",
    }
    """Allowed values (:mod:`engine.ranges`; 0 turns a periodic hook off, -1 top-k keeps every checkpoint)."""

    progress: bool = True
    """Show a progress bar (one short line per 10% when stderr is not a terminal)."""
    loggers: tuple[str, ...] = ("csv",)
    """Loggers to write to: any of csv, tensorboard, wandb, mlflow."""
    wandb_online: bool = False
    """Let W&B upload to the server (default: offline, files under <out_dir>/wandb)."""
    wandb_project: str = "fxai"
    """W&B project name."""
    wandb_tags: tuple[str, ...] = ()
    """W&B run tags."""
    wandb_notes: str | None = None
    """W&B run notes (a description of the run)."""
    wandb_artifacts: bool = True
    """At the end of training, log the last and best checkpoints and the report directory (if any) to W&B as
    artifacts, and the report's PNGs as images (needs --hooks.loggers wandb)."""
    mlflow_tracking_uri: str | None = None
    """MLflow tracking URI (default: a local store, sqlite:///<out_dir>/mlflow.db; e.g. http://host:5000)."""
    mlflow_experiment: str = "fxai"
    """MLflow experiment name."""
    histogram_every: int = 0
    """Every this many cycles, log histograms of the rollout's actions and values to W&B and TensorBoard
    (0 = never)."""
    checkpoint_every: int = 10
    """Write last.ckpt every this many cycles (0 = not by cycles)."""
    checkpoint_every_minutes: float = 10.0
    """Also write last.ckpt when this many minutes of wall time passed since the last one (0 = not by time):
    a killed run loses at most one interval."""
    save_top_k: int = 3
    """Keep the k best checkpoints by --hooks.monitor (0 = none, -1 = all)."""
    monitor: str = "val/sharpe"
    """Metric for top-k checkpoints and early stopping (a val/ key needs evaluation on)."""
    monitor_mode: Literal["min", "max"] = "max"
    """Whether a larger (max) or smaller (min) monitored value is better."""
    eval_every: int = 10
    """Evaluate every this many cycles (0 = no evaluation)."""
    eval_episodes: int = 5
    """Episodes per evaluation of a gymnasium env (an env family may evaluate differently: the FX env
    runs one pass over its validation split)."""
    early_stopping_patience: int = 0
    """Stop after this many evaluations without improvement of the monitor (0 = off)."""
    min_delta: float = 0.0
    """Smallest change of the monitor that counts as an improvement."""
    episode_log_every: int = 0
    """Log every k-th finished episode individually (0 = off)."""
    profile: bool = False
    """Profile a few cycles with torch.profiler (trace in <out_dir>/profiler)."""
    profile_start: int = 2
    """First profiled cycle (counted from 0)."""
    profile_cycles: int = 2
    """Number of profiled cycles."""
    phases: tuple[str, ...] = ()
    """Training phases, in order, as NAME:TRIGGER[:SETTINGS] (none = off; see hooks/phases.py). TRIGGER: a
    fraction of --total-steps (0.2), or METRIC>=VALUE / METRIC<=VALUE on the cycle's metrics
    (episode/return_mean>=400); the first phase starts at once. SETTINGS: comma-separated lr=SCALE (times the
    scheduled learning rate), ent=COEF, clip=COEF (PPO). E.g. warmup:0:lr=0.1 exploration:0.05:ent=0.05
    exploitation:0.5:ent=0.005 fine_tuning:episode/return_mean>=450:lr=0.2,clip=0.1"""

    def check(self) -> None:
        """Raise one ``ValueError`` naming the ``--hooks.*`` flag of the first bad value (the commands call it
        before any work, through :func:`engine.launch.validate`; :func:`hooks.factory.build_default_hooks` too)."""
        def bad(flag: str, why: str) -> ValueError:
            return ValueError(f"--hooks.{flag}: {why}")

        unknown = [k for k in self.loggers if k not in LOGGER_KINDS]
        if unknown:
            raise bad("loggers", f"unknown logger(s) {unknown}; choose from {list(LOGGER_KINDS)}")
        if self.monitor_mode not in ("min", "max"):
            raise bad("monitor-mode", f"must be min or max, got {self.monitor_mode!r}")
        check_numbers(self, "--hooks.")
        if self.phases:
            from hooks.phases import parse_phases

            parse_phases(self.phases)  # raises ValueError naming --hooks.phases
        if not self.monitor:
            raise bad("monitor", "must not be empty")

    def replace(self, **changes: Any) -> HooksConfig:
        return dataclasses.replace(self, **changes)
