"""OptunaHook: report a monitored metric to an Optuna trial and stop the run when the trial is pruned.

The metric is reported at every cycle whose metrics dict holds it (with the global step
as Optuna's step, so trials are compared at equal amounts of experience); NaN values are
not reported (a pruner would prune on them). When
``trial.should_prune()`` says so, the hook requests a stop and sets ``pruned``; the tuning
loop then raises ``optuna.TrialPruned``.
"""

from __future__ import annotations

import math
from typing import Any

from engine.events import Hook
from hooks._util import better, check_mode, to_float


class OptunaHook(Hook):
    """Reports ``monitor`` to ``trial``; ``last_value``/``best_value`` hold what was reported."""

    def __init__(self, trial: Any, monitor: str, mode: str = "max") -> None:
        self.trial = trial
        self.monitor = monitor
        self.mode = check_mode(mode, "OptunaHook")
        self.pruned = False
        self.last_value: float | None = None
        self.best_value: float | None = None
        self.reports = 0
        self.seen_keys: list[str] = []
        self.run: Any = None

    def on_training_start(self, run: Any) -> None:
        self.run = run

    def on_metrics_computed(self, metrics: dict) -> bool | None:
        self.seen_keys = sorted(metrics)
        if self.monitor not in metrics or self.pruned:
            return None
        value = to_float(metrics[self.monitor])
        if value is None:
            raise ValueError(f"OptunaHook: metric {self.monitor!r} is not a number: {metrics[self.monitor]!r}")
        if math.isnan(value):  # e.g. no episode finished yet; a NaN report would make pruners prune
            return None
        step = int(self.run.global_step) if self.run is not None else self.reports
        self.trial.report(value, step)
        self.reports += 1
        self.last_value = value
        if self.best_value is None or better(value, self.best_value, self.mode):
            self.best_value = value
        if self.trial.should_prune():
            self.pruned = True
            if self.run is not None:
                self.run.request_stop(f"optuna pruned trial {self.trial.number} at step {step} ({self.monitor}={value:.6g})")
            return False
        return None
