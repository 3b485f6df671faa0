"""The built-in hook list for a :class:`hooks.config.HooksConfig`.

:func:`build_default_hooks` orders the hooks so that each sees what it needs in the
per-cycle metrics dict: the training-phase hook first (every other hook sees the phase in
``on_update_start``), statistics, then evaluation (adds ``val/`` keys), then the
hooks that read monitored keys (early stopping, top-k checkpoints), then the
per-episode/profiling hooks, and the progress bar last.
"""

from __future__ import annotations

import warnings
from typing import Any

from hooks.checkpoint import CheckpointHook
from hooks.config import HooksConfig
from hooks.continuous import ContinuousTrainingHook
from hooks.early_stopping import EarlyStoppingHook
from hooks.episode_metrics import EpisodeMetricsHook
from hooks.evaluation import EvaluationHook
from hooks.histograms import HistogramHook
from hooks.lr_monitor import LearningRateMonitor
from hooks.metrics import MetricsHook
from hooks.phases import PhaseHook, parse_phases
from hooks.profiler import ProfilerHook
from hooks.progress import ProgressBarHook
from hooks.reward_components import RewardComponentsHook
from hooks.wandb_artifacts import WandbArtifactsHook

FALLBACK_MONITOR = "episode/return_mean"


def build_default_hooks(hcfg: HooksConfig, *, has_eval: bool) -> list[Any]:
    """The built-in hooks for ``hcfg``, in dispatch order.

    ``has_eval``: whether the run can evaluate (``run.evaluate``). Without evaluation, a
    ``val/`` monitor could never appear, so top-k checkpoints and early stopping fall back
    to ``episode/return_mean`` (with a warning).
    """
    hcfg.check()
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
    hooks: list[Any] = [PhaseHook(parse_phases(hcfg.phases))] if hcfg.phases else []
    hooks += [MetricsHook(), RewardComponentsHook(), LearningRateMonitor()]
    if evaluating:
        hooks.append(EvaluationHook(every_n_cycles=hcfg.eval_every, num_episodes=hcfg.eval_episodes))
    if hcfg.early_stopping_patience > 0:
        hooks.append(EarlyStoppingHook(monitor, hcfg.early_stopping_patience, hcfg.min_delta, hcfg.monitor_mode))
    hooks.append(CheckpointHook(every_n_cycles=hcfg.checkpoint_every, monitor=monitor, mode=hcfg.monitor_mode,
                                save_top_k=hcfg.save_top_k, every_minutes=hcfg.checkpoint_every_minutes))
    hooks.append(ContinuousTrainingHook())
    if hcfg.histogram_every > 0:
        hooks.append(HistogramHook(every_n_cycles=hcfg.histogram_every))
    if hcfg.episode_log_every > 0:
        hooks.append(EpisodeMetricsHook(every_k=hcfg.episode_log_every))
    if hcfg.profile:
        hooks.append(ProfilerHook(start_cycle=hcfg.profile_start, num_cycles=hcfg.profile_cycles))
    if hcfg.progress:
        hooks.append(ProgressBarHook(val_key=monitor if monitor.startswith("val/") else "val/sharpe"))
    return hooks


def build_final_hooks(hcfg: HooksConfig) -> list[Any]:
    """Built-in hooks that run after the env family's hooks (they use what those write at the end)."""
    return [WandbArtifactsHook()] if "wandb" in hcfg.loggers and hcfg.wandb_artifacts else []
