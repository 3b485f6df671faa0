"""LearningRateMonitor: adds the optimizer's current learning rate(s) to the metrics as ``train/lr``.

One param group -> ``train/lr``; several -> ``train/lr/pg0``, ``train/lr/pg1``, ...
"""

from __future__ import annotations

from typing import Any

from engine.events import Hook


class LearningRateMonitor(Hook):
    """Reads ``run.algo.optimizer.param_groups[i]["lr"]`` once per cycle."""

    def __init__(self) -> None:
        self.run: Any = None

    def on_training_start(self, run: Any) -> None:
        self.run = run

    def on_metrics_computed(self, metrics: dict) -> None:
        groups = self.run.algo.optimizer.param_groups
        if len(groups) == 1:
            metrics["train/lr"] = float(groups[0]["lr"])
        else:
            for i, group in enumerate(groups):
                metrics[f"train/lr/pg{i}"] = float(group["lr"])
