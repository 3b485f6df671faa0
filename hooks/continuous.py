"""Continuous training: the history of a run's sessions, kept in its checkpoints.

Which checkpoint a command continues, and the run's identity across sessions (``run_id``, log
``version``, ``resumes``), are the engine's (:mod:`engine.rundir`, ``run.run_record()``); the
engine also adds ``training/version``, ``training/resumes`` and ``training/resumed`` to every
cycle's metrics. :class:`ContinuousTrainingHook` keeps the list of resumes
(``{"resume", "resumed_from", "global_step", "time"}``) in its state, so it survives every
checkpoint, and writes it to the summary as ``resume_history``.
"""

from __future__ import annotations

import time
from typing import Any

from engine.events import Hook


class ContinuousTrainingHook(Hook):
    """Resume history; ``resumes`` = how many sessions continued the run (the engine's count, see above)."""

    def __init__(self) -> None:
        self.resumes = 0
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
            summary["resume_history"] = [dict(h) for h in self.history]

    def _bump(self, entry: dict[str, Any]) -> None:
        self.resumes += 1
        self.history.append({"resume": self.resumes, **entry})

    def state_dict(self) -> dict[str, Any]:
        return {"resumes": self.resumes, "history": [dict(e) for e in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.resumes = int(state.get("resumes", state.get("version", 0)))  # "version" in format-2 checkpoints
        self.history = [{("resume" if k == "version" else k): v for k, v in e.items()} for e in state["history"]]
        # If the load event fired before the state was restored, count it again on top.
        for entry in self._session:
            if not any(h.get("time") == entry["time"] and h.get("resumed_from") == entry["resumed_from"]
                       and h.get("global_step") == entry["global_step"] for h in self.history):
                self._bump(entry)
