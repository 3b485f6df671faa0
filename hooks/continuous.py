"""Continuous training: where to resume from, and a version history across resumes.

:func:`resolve_resume` turns the ``--resume`` flag into a checkpoint path ("auto" = the
newest valid checkpoint under the output directory, or a fresh start when there is none).
:class:`ContinuousTrainingHook` counts how many times the run has been resumed (its
*version*) and keeps the history in its state, so the count survives every checkpoint.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from engine.checkpoint import CheckpointError, find_latest_valid, read_checkpoint
from engine.events import Hook


def resolve_resume(resume: str | os.PathLike | None, out_dir: str | os.PathLike) -> Path | None:
    """The checkpoint to resume from, or ``None`` to start fresh.

    ``None`` or ``""`` -> ``None``; ``"auto"`` -> the newest readable checkpoint under
    ``out_dir`` (``None`` when there is none); anything else is a path that must exist and
    load, else :class:`CheckpointError` naming it.
    """
    if resume is None or str(resume).strip() == "":
        return None
    if str(resume) == "auto":
        return find_latest_valid(out_dir)
    path = Path(resume)
    if not path.exists():
        raise CheckpointError(f"--resume {path}: checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"--resume {path}: {path} is a directory, not a checkpoint file (use --resume auto)")
    read_checkpoint(path)  # raises CheckpointError naming the file when unreadable
    return path


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
