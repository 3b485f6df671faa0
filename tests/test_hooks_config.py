"""HooksConfig validation and flags, and the order of build_default_hooks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import tyro

from engine.events import HookBus
from hooks import (CheckpointHook, EarlyStoppingHook, EvaluationHook, HooksConfig, MetricsHook, ProgressBarHook,
                   build_default_hooks)


def _names(hooks: list) -> list[str]:
    return [type(h).__name__ for h in hooks]


def test_flags_parse_through_tyro() -> None:
    cfg = tyro.cli(HooksConfig, args=["--loggers", "csv", "wandb", "--eval-every", "3", "--no-progress",
                                      "--monitor-mode", "min", "--eval-episodes", "7"])
    assert cfg.loggers == ("csv", "wandb") and cfg.eval_every == 3 and not cfg.progress
    assert cfg.monitor_mode == "min" and cfg.eval_episodes == 7


@pytest.mark.parametrize(("changes", "flag"), [
    ({"loggers": ("csv", "neptune")}, "--hooks.loggers"),
    ({"checkpoint_every_minutes": -1.0}, "--hooks.checkpoint-every-minutes"),
    ({"histogram_every": -2}, "--hooks.histogram-every"),
    ({"phases": ("warmup",)}, "--hooks.phases"),
    ({"eval_every": -1}, "--hooks.eval-every"),
    ({"save_top_k": -2}, "--hooks.save-top-k"),
    ({"monitor_mode": "best"}, "--hooks.monitor-mode"),
    ({"eval_episodes": 0}, "--hooks.eval-episodes"),
    ({"profile_cycles": 0}, "--hooks.profile-cycles"),
    ({"min_delta": -0.1}, "--hooks.min-delta"),
])
def test_bad_values_name_the_flag(changes: dict, flag: str) -> None:
    with pytest.raises(ValueError, match=flag):
        HooksConfig(**changes).check()
    with pytest.raises(ValueError, match=flag):  # no hooks from a bad config
        build_default_hooks(HooksConfig(**changes), has_eval=True)


def test_full_default_list_order() -> None:
    cfg = HooksConfig(early_stopping_patience=3, episode_log_every=5, profile=True, eval_every=2)
    hooks = build_default_hooks(cfg, has_eval=True)
    assert _names(hooks) == ["MetricsHook", "RewardComponentsHook", "LearningRateMonitor", "EvaluationHook",
                             "EarlyStoppingHook", "CheckpointHook", "ContinuousTrainingHook",
                             "EpisodeMetricsHook", "ProfilerHook", "ProgressBarHook"]
    HookBus(hooks)  # all method names are real events
    ev, es, ck = (next(h for h in hooks if isinstance(h, t)) for t in (EvaluationHook, EarlyStoppingHook, CheckpointHook))
    assert ev.every_n_cycles == 2 and es.monitor == ck.monitor == "val/sharpe" and es.patience == 3


def test_minimal_list_and_monitor_fallback_without_evaluation() -> None:
    cfg = HooksConfig(progress=False)
    with pytest.warns(UserWarning, match="episode/return_mean"):
        hooks = build_default_hooks(cfg, has_eval=False)
    assert _names(hooks) == ["MetricsHook", "RewardComponentsHook", "LearningRateMonitor", "CheckpointHook",
                             "ContinuousTrainingHook"]
    assert hooks[3].monitor == "episode/return_mean"
    assert isinstance(hooks[0], MetricsHook)
    hooks[0].on_training_start(SimpleNamespace(cfg=SimpleNamespace(metrics_window=7)))
    assert hooks[0].window == 7  # one window for the engine's episode/return_mean and the hook: --metrics-window


def test_non_val_monitor_needs_no_evaluation() -> None:
    hooks = build_default_hooks(HooksConfig(monitor="episode/return_mean", eval_every=0), has_eval=True)
    assert not any(isinstance(h, EvaluationHook) for h in hooks)
    assert isinstance(hooks[-1], ProgressBarHook)
