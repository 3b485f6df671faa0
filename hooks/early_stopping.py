"""EarlyStoppingHook: stop training after ``patience`` evaluations of a metric without improvement.

An *evaluation* is a cycle whose metrics dict holds the monitored key (e.g. ``val/sharpe``
appears only on cycles where the evaluation hook ran). A NaN value never counts as an
improvement.
"""

from __future__ import annotations

import math
from typing import Any

from engine.events import Hook
from hooks._util import better, check_mode, to_float


class EarlyStoppingHook(Hook):
    """Requests a stop (and returns False) once ``patience`` checks in a row did not improve by more than ``min_delta``."""

    def __init__(self, monitor: str, patience: int = 5, min_delta: float = 0.0, mode: str = "max") -> None:
        if patience < 1:
            raise ValueError(f"EarlyStoppingHook: patience must be >= 1, got {patience}")
        if min_delta < 0:
            raise ValueError(f"EarlyStoppingHook: min_delta must be >= 0, got {min_delta}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.mode = check_mode(mode, "EarlyStoppingHook")
        self.best = -math.inf if mode == "max" else math.inf
        self.wait = 0
        self.stopped = False
        self.run: Any = None

    def on_training_start(self, run: Any) -> None:
        self.run = run

    def on_metrics_computed(self, metrics: dict) -> bool | None:
        if self.monitor not in metrics:
            return None
        value = to_float(metrics[self.monitor])
        if value is not None and not math.isnan(value) and better(value, self.best, self.mode, self.min_delta):
            self.best = value
            self.wait = 0
            return None
        self.wait += 1
        if self.wait < self.patience:
            return None
        self.stopped = True
        if self.run is not None:
            self.run.request_stop(
                f"early stopping: {self.monitor} did not improve on {self.best:.6g} for {self.wait} evaluations"
            )
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "stopped": self.stopped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.wait = int(state["wait"])
        self.stopped = bool(state["stopped"])
