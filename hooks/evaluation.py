"""EvaluationHook: every N cycles and after the last one, run deterministic evaluation episodes and add
``val/<key>`` metrics.

The last cycle is evaluated too (when the run knows its ``total_steps``), so the final policy is always a
candidate for the best checkpoint: with 391 cycles and an evaluation every 100, a quarter of the training
would otherwise never be scored.

It runs inside ``on_metrics_computed`` so the ``val/`` keys land in the same metrics dict
that is then logged and seen by the hooks after it (early stopping, top-k checkpoints),
which is why it must come before those in the hook list.
"""

from __future__ import annotations

from typing import Any

from engine.events import Hook
from hooks._util import to_float


class EvaluationHook(Hook):
    """Calls ``run.evaluate(num_episodes)`` every ``every_n_cycles`` cycles and on the last cycle."""

    def __init__(self, every_n_cycles: int = 10, num_episodes: int = 5) -> None:
        if every_n_cycles < 1:
            raise ValueError(f"EvaluationHook: every_n_cycles must be >= 1, got {every_n_cycles}")
        if num_episodes < 1:
            raise ValueError(f"EvaluationHook: num_episodes must be >= 1, got {num_episodes}")
        self.every_n_cycles = every_n_cycles
        self.num_episodes = num_episodes
        self.cycles_seen = 0
        self.last_metrics: dict[str, float] = {}
        self.last_step: int = -1
        self.run: Any = None

    def on_training_start(self, run: Any) -> None:
        self.run = run

    def on_metrics_computed(self, metrics: dict) -> None:
        self.cycles_seen += 1
        run = self.run
        total = getattr(run, "total_steps", None)
        last = total is not None and run.global_step >= total
        if self.cycles_seen % self.every_n_cycles != 0 and not last:
            return
        where = {"cycle": int(run.cycle), "global_step": int(run.global_step)}
        run.fire("on_evaluation_start", dict(where))
        results = run.evaluate(self.num_episodes)
        val: dict[str, float] = {}
        for key, value in results.items():
            v = to_float(value)
            if v is not None:
                val[key if key.startswith("val/") else f"val/{key}"] = v
        metrics.update(val)
        self.last_metrics = val
        self.last_step = where["global_step"]
        run.fire("on_evaluation_end", {**where, "metrics": dict(val)})

    def state_dict(self) -> dict[str, Any]:
        return {"cycles_seen": self.cycles_seen, "last_metrics": dict(self.last_metrics), "last_step": self.last_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cycles_seen = int(state["cycles_seen"])
        self.last_metrics = {k: float(v) for k, v in state["last_metrics"].items()}
        self.last_step = int(state["last_step"])
