"""HooksConfig: the ``--hooks.*`` flags that choose and configure the built-in hooks and loggers.

:func:`hooks.factory.build_default_hooks` turns it into the hook list.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from hooks.loggers import LOGGER_KINDS

@dataclass(frozen=True)
class HooksConfig:
    """Built-in hooks: logging, checkpoints, evaluation, early stopping, progress, profiling."""

    progress: bool = True
    """Show a progress bar (one short line per 10% when stderr is not a terminal)."""
    loggers: tuple[str, ...] = ("csv",)
    """Loggers to write to: any of csv, tensorboard, wandb."""
    wandb_online: bool = False
    """Let W&B upload to the server (default: offline, files under <out_dir>/wandb)."""
    wandb_project: str = "fxai"
    """W&B project name."""
    checkpoint_every: int = 10
    """Write last.ckpt every this many cycles (0 = only at the end of training)."""
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

    def __post_init__(self) -> None:
        def bad(flag: str, why: str) -> ValueError:
            return ValueError(f"--hooks.{flag}: {why}")

        unknown = [k for k in self.loggers if k not in LOGGER_KINDS]
        if unknown:
            raise bad("loggers", f"unknown logger(s) {unknown}; choose from {list(LOGGER_KINDS)}")
        if self.monitor_mode not in ("min", "max"):
            raise bad("monitor-mode", f"must be min or max, got {self.monitor_mode!r}")
        for name in ("checkpoint_every", "eval_every", "early_stopping_patience", "episode_log_every",
                     "profile_start"):
            if getattr(self, name) < 0:
                raise bad(name.replace("_", "-"), f"must be >= 0, got {getattr(self, name)}")
        if self.save_top_k < -1:
            raise bad("save-top-k", f"must be >= -1, got {self.save_top_k}")
        if self.eval_episodes < 1:
            raise bad("eval-episodes", f"must be >= 1, got {self.eval_episodes}")
        if self.min_delta < 0:
            raise bad("min-delta", f"must be >= 0, got {self.min_delta}")
        if self.profile_cycles < 1:
            raise bad("profile-cycles", f"must be >= 1, got {self.profile_cycles}")
        if not self.monitor:
            raise bad("monitor", "must not be empty")

    def replace(self, **changes: Any) -> HooksConfig:
        return dataclasses.replace(self, **changes)
