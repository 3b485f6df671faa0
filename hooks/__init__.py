"""FxAI's built-in training hooks (one per file), their config and the loggers.

Every hook listens to some of the 16 events of :mod:`engine.events`; see
:func:`hooks.factory.build_default_hooks` for the default list and its order.
"""

from hooks.checkpoint import CheckpointHook
from hooks.config import HooksConfig
from hooks.continuous import ContinuousTrainingHook
from hooks.early_stopping import EarlyStoppingHook
from hooks.episode_metrics import EpisodeMetricsHook
from hooks.evaluation import EvaluationHook
from hooks.factory import build_default_hooks
from hooks.loggers import make_loggers
from hooks.lr_monitor import LearningRateMonitor
from hooks.metrics import MetricsHook
from hooks.optuna_pruning import OptunaHook
from hooks.profiler import ProfilerHook
from hooks.progress import ProgressBarHook
from hooks.reward_components import RewardComponentsHook

__all__ = [
    "CheckpointHook",
    "ContinuousTrainingHook",
    "EarlyStoppingHook",
    "EpisodeMetricsHook",
    "EvaluationHook",
    "HooksConfig",
    "LearningRateMonitor",
    "MetricsHook",
    "OptunaHook",
    "ProfilerHook",
    "ProgressBarHook",
    "RewardComponentsHook",
    "build_default_hooks",
    "make_loggers",
]
