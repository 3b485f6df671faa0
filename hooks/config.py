"""HooksConfig (the ``--hooks.*`` flags) and the default hook list built from it.

:func:`build_default_hooks` orders the hooks so that each sees what it needs in the
per-cycle metrics dict: statistics first, then evaluation (adds ``val/`` keys), then the
hooks that read monitored keys (early stopping, top-k checkpoints), then the
per-episode/profiling hooks, and the progress bar last.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, Literal

from hooks.checkpoint import CheckpointHook
from hooks.continuous import ContinuousTrainingHook
from hooks.early_stopping import EarlyStoppingHook
from hooks.episode_metrics import EpisodeMetricsHook
from hooks.evaluation import EvaluationHook
from hooks.loggers import LOGGER_KINDS
from hooks.lr_monitor import LearningRateMonitor
from hooks.metrics import MetricsHook
from hooks.profiler import ProfilerHook
from hooks.progress import ProgressBarHook
from hooks.reward_components import RewardComponentsHook

FALLBACK_MONITOR = "episode/return_mean"


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
    metrics_window: int = 100
    """Number of recent episodes in the windowed episode/ statistics."""
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
    eval_episodes: int | None = None
    """Episodes per evaluation (default: the evaluator's own choice)."""
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
        if self.metrics_window < 1:
            raise bad("metrics-window", f"must be >= 1, got {self.metrics_window}")
        if self.save_top_k < -1:
            raise bad("save-top-k", f"must be >= -1, got {self.save_top_k}")
        if self.eval_episodes is not None and self.eval_episodes < 1:
            raise bad("eval-episodes", f"must be >= 1, got {self.eval_episodes}")
        if self.min_delta < 0:
            raise bad("min-delta", f"must be >= 0, got {self.min_delta}")
        if self.profile_cycles < 1:
            raise bad("profile-cycles", f"must be >= 1, got {self.profile_cycles}")
        if not self.monitor:
            raise bad("monitor", "must not be empty")

    def replace(self, **changes: Any) -> HooksConfig:
        return dataclasses.replace(self, **changes)


def build_default_hooks(hcfg: HooksConfig, *, has_eval: bool) -> list[Any]:
    """The built-in hooks for ``hcfg``, in dispatch order.

    ``has_eval``: whether the run can evaluate (``run.evaluate``). Without evaluation, a
    ``val/`` monitor could never appear, so top-k checkpoints and early stopping fall back
    to ``episode/return_mean`` (with a warning).
    """
    evaluating = has_eval and hcfg.eval_every > 0
    monitor = hcfg.monitor
    if monitor.startswith("val/") and not evaluating:
        warnings.warn(
            f"--hooks.monitor {monitor} needs evaluation, which is off "
            f"({'no evaluation env' if not has_eval else '--hooks.eval-every 0'}); "
            f"monitoring {FALLBACK_MONITOR} instead",
            stacklevel=2,
        )
        monitor = FALLBACK_MONITOR
    hooks: list[Any] = [MetricsHook(window=hcfg.metrics_window), RewardComponentsHook(), LearningRateMonitor()]
    if evaluating:
        hooks.append(EvaluationHook(every_n_cycles=hcfg.eval_every, num_episodes=hcfg.eval_episodes))
    if hcfg.early_stopping_patience > 0:
        hooks.append(EarlyStoppingHook(monitor, hcfg.early_stopping_patience, hcfg.min_delta, hcfg.monitor_mode))
    hooks.append(CheckpointHook(every_n_cycles=hcfg.checkpoint_every, monitor=monitor, mode=hcfg.monitor_mode,
                                save_top_k=hcfg.save_top_k))
    hooks.append(ContinuousTrainingHook())
    if hcfg.episode_log_every > 0:
        hooks.append(EpisodeMetricsHook(every_k=hcfg.episode_log_every))
    if hcfg.profile:
        hooks.append(ProfilerHook(start_cycle=hcfg.profile_start, num_cycles=hcfg.profile_cycles))
    if hcfg.progress:
        hooks.append(ProgressBarHook(val_key=monitor if monitor.startswith("val/") else "val/sharpe"))
    return hooks
