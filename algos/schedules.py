"""The run's progress and the learning-rate schedule on it: linear, cosine with a floor, constant; warmup.

Every annealed quantity (learning rate, entropy bonus, clip range) is a function of the run's
*progress* ``p`` in [0, 1], and ``p`` is a function of the number of updates done, ``u``:

    p(u) = p0 + (1 - p0) * (u - u0) / (H - u0)        (clamped to [p0, 1])

from an *anchor* ``(u0, p0)`` to the *horizon* ``H`` (the run's number of updates, from
``--total-steps``). A fresh run anchors at ``(0, 0)``. **Continuity rule**: when a resumed run
has another horizon (``--total-steps`` raised to extend a run, or lowered), the anchor moves to
the current update and its current progress, so the progress (and with it the learning rate
and every annealed coefficient) continues from the value it had and reaches its end value at
the new horizon; nothing jumps. Extending a finished run therefore keeps its end values (a
linear schedule to 0 stays at 0: give a floor with ``--ppo.lr-final``, or use ``constant``).

The learning rate at update ``u`` is ``learning_rate * warmup(u) * shape(q)`` with
``q = (p - w) / (1 - w)`` the progress after the warmup fraction ``w``:

* ``linear``: ``f + (1 - f) * (1 - q)``; ``cosine``: ``f + (1 - f) * (1 + cos(pi q)) / 2``;
  ``constant``: 1, with ``f = lr_final / learning_rate`` (the floor);
* ``warmup(u) = min(1, (u + 1) / W)``, ``W = ceil(w * H)`` updates of the first horizon.

All of it is plain numbers in ``state_dict`` (resumable exactly).
"""

from __future__ import annotations

import math
from typing import Any

LR_SCHEDULES = ("linear", "cosine", "constant")


class Progress:
    """Piecewise-linear progress over updates, re-planned (continuously) when the horizon changes."""

    def __init__(self, horizon: int) -> None:
        self.horizon = max(1, int(horizon))
        self.anchor_update = 0
        self.anchor_progress = 0.0

    def at(self, update: int) -> float:
        span = self.horizon - self.anchor_update
        if update <= self.anchor_update or span <= 0:
            return self.anchor_progress
        return min(1.0, self.anchor_progress + (1.0 - self.anchor_progress) * (update - self.anchor_update) / span)

    def replan(self, update: int, horizon: int) -> None:
        """Keep ``at(update)`` and reach 1 at ``horizon`` from there."""
        p = self.at(update)
        self.anchor_update, self.anchor_progress, self.horizon = int(update), p, max(1, int(horizon))

    def state_dict(self) -> dict[str, Any]:
        return {"horizon": self.horizon, "anchor_update": self.anchor_update, "anchor_progress": self.anchor_progress}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.horizon = int(state["horizon"])
        self.anchor_update = int(state["anchor_update"])
        self.anchor_progress = float(state["anchor_progress"])


class LRSchedule:
    """Learning-rate factor (of ``learning_rate``) at update ``u``; ``kind`` is one of :data:`LR_SCHEDULES`."""

    def __init__(self, kind: str, learning_rate: float, lr_final: float, warmup: float, horizon: int) -> None:
        if kind not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {kind!r}")
        self.kind = kind
        self.floor = lr_final / learning_rate if learning_rate > 0 else 0.0
        self.warmup = float(warmup)
        self.progress = Progress(horizon)
        self.warmup_updates = math.ceil(self.warmup * self.progress.horizon) if self.warmup > 0 else 0

    def shape(self, p: float) -> float:
        if self.kind == "constant":
            return 1.0
        q = min(1.0, max(0.0, (p - self.warmup) / (1.0 - self.warmup))) if self.warmup < 1 else 1.0
        if self.kind == "linear":
            return self.floor + (1.0 - self.floor) * (1.0 - q)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * q))

    def factor(self, update: int) -> float:
        warm = min(1.0, (update + 1) / self.warmup_updates) if update < self.warmup_updates else 1.0
        return warm * self.shape(self.progress.at(update))

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "progress": self.progress.state_dict(), "warmup_updates": self.warmup_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.progress.load_state_dict(state["progress"])
        self.warmup_updates = int(state["warmup_updates"])
