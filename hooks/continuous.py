"""Continuous training: a version history across resumes.

(Which checkpoint ``--resume`` means is :func:`engine.checkpoint.resolve_resume`'s business.)
:class:`ContinuousTrainingHook` counts how many times the run has been resumed (its
*version*) and keeps the history in its state, so the count survives every checkpoint.
"""

from __future__ import annotations

import time
from typing import Any

from engine.events import Hook


class ContinuousTrainingHook(Hook):
    """Version counter and resume history (``{"version", "resumed_from", "global_step", "time"}``)."""

    def __init__(self) -> None:
        self.version = 0
        self.history: list[dict[str, Any]] = []
        self._session: list[dict[str, Any]] = []  # loads seen in this process
        self.run: Any = None

    @property
    def resumed_from(self) -> str | None:
        """The checkpoint this process resumed from, if any."""
        return self._session[-1]["resumed_from"] if self._session else None

    def on_training_start(self, run: Any) -> None:
        self.run = run

    def on_checkpoint_loaded(self, info: dict) -> None:
        entry = {
            "resumed_from": str(info.get("path", "")),
            "global_step": int(info.get("global_step", 0)),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self._session.append(entry)
        self._bump(entry)

    def on_training_end(self, summary: dict) -> None:
        if isinstance(summary, dict):
            summary.setdefault("resumed_from", self.resumed_from)
            summary.setdefault("version", self.version)

    def _bump(self, entry: dict[str, Any]) -> None:
        self.version += 1
        self.history.append({"version": self.version, **entry})

    def state_dict(self) -> dict[str, Any]:
        return {"version": self.version, "history": [dict(e) for e in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.version = int(state["version"])
        self.history = [dict(e) for e in state["history"]]
        # If the load event fired before the state was restored, count it again on top.
        for entry in self._session:
            if not any(h.get("time") == entry["time"] and h.get("resumed_from") == entry["resumed_from"]
                       and h.get("global_step") == entry["global_step"] for h in self.history):
                self._bump(entry)
