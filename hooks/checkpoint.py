"""CheckpointHook: ``last.ckpt`` every N cycles and/or every M minutes, plus the top-k checkpoints by a metric.

The hook decides *when* to save; every save goes through ``run.save_checkpoint(path)``
(:class:`engine.checkpoint.Checkpoints`: atomic, all ranks, rank 0 writes; it returns ``None``
when it refuses a non-finite model, and then nothing changes here). The engine itself writes
``last.ckpt`` once more at the end of training.
The monitored value must be the same on every rank (the engine reduces its metrics),
otherwise ranks would disagree on whether to save.
Top-k files are named after the step and the monitored value, e.g.
``step=000012288-val_sharpe=1.2345.ckpt``; a file that falls out of the top k is deleted
(by rank 0 only). A NaN or infinite value never enters the top k. The best list is part
of the hook's state, so a resumed run keeps ranking against the files it already wrote; the
best file is also recorded by the engine (``--resume best`` continues it). Resumed from an
earlier checkpoint (``--resume best``), the list drops entries whose files are gone.
By wall time: ``last.ckpt`` is written at the end of a cycle once ``every_minutes`` have passed
since the last write (or the start), so a killed run loses at most that much work; with
several ranks, rank 0's clock decides for all (broadcast), since every rank must save together.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.events import Hook
from hooks._util import better, check_mode, to_float


def metric_filename(global_step: int, monitor: str, value: float) -> str:
    """``step=000012288-val_sharpe=1.2345.ckpt`` for step 12288, monitor ``val/sharpe``, value 1.2345."""
    safe = monitor.replace("/", "_").replace("=", "_")
    return f"step={global_step:09d}-{safe}={value:.4f}.ckpt"


class CheckpointHook(Hook):
    """Periodic ``last.ckpt`` and top-k-by-metric checkpoints.

    ``every_n_cycles``: write ``last.ckpt`` after every N-th completed cycle (0 = not by cycles).
    ``every_minutes``: also write it once this much wall time passed since the last write (0 = not by time);
    ``clock`` (seconds, monotonic) is replaceable for tests.
    ``monitor``: metric key for the top k (``None`` = no top k); ``mode``: "max" or "min".
    ``save_top_k``: how many best files to keep (0 = none, -1 = all).
    """

    def __init__(
        self,
        every_n_cycles: int = 1,
        dirpath: str | Path | None = None,
        monitor: str | None = None,
        mode: str = "max",
        save_top_k: int = 3,
        save_last: bool = True,
        every_minutes: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if every_n_cycles < 0:
            raise ValueError(f"CheckpointHook: every_n_cycles must be >= 0, got {every_n_cycles}")
        if every_minutes < 0:
            raise ValueError(f"CheckpointHook: every_minutes must be >= 0, got {every_minutes}")
        if save_top_k < -1:
            raise ValueError(f"CheckpointHook: save_top_k must be >= -1, got {save_top_k}")
        self.every_n_cycles = every_n_cycles
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.monitor = monitor
        self.mode = check_mode(mode, "CheckpointHook")
        self.save_top_k = save_top_k
        self.save_last = save_last
        self.every_minutes = every_minutes
        self.clock = clock
        self._last_write = 0.0
        self.best: list[dict[str, Any]] = []  # {"path", "score", "global_step"}, best first
        self.cycles_seen = 0
        self.last_path: Path | None = None
        self.run: Any = None

    # -- events ---------------------------------------------------------------------------------
    def on_training_start(self, run: Any) -> None:
        self.run = run
        if self.dirpath is None:
            self.dirpath = Path(run.out_dir) / "checkpoints"
        self._last_write = self.clock()
        self.best = [e for e in self.best if Path(e["path"]).exists()]

    def on_cycle_complete(self, info: dict) -> None:
        self.cycles_seen += 1
        step = int(info.get("global_step", self.run.global_step))
        metrics = info.get("metrics") or {}
        if self.monitor is not None and self.save_top_k != 0 and self.monitor in metrics:
            self._consider_top_k(to_float(metrics[self.monitor]), step)
        if not self.save_last:
            return
        due = self.every_n_cycles > 0 and self.cycles_seen % self.every_n_cycles == 0
        if not due and self.every_minutes > 0:
            due = self._time_is_up()
        if due:
            self._save_last()

    def _time_is_up(self) -> bool:
        up = self.clock() - self._last_write >= 60.0 * self.every_minutes
        fabric = getattr(self.run, "fabric", None)
        if fabric is not None and fabric.world_size > 1:
            up = bool(fabric.broadcast(up, src=0))
        return up

    def on_training_end(self, summary: dict) -> None:
        if isinstance(summary, dict) and self.best:
            summary.setdefault("best_checkpoint", self.best[0]["path"])
            summary.setdefault("best_score", self.best[0]["score"])

    # -- work -----------------------------------------------------------------------------------
    def _save_last(self) -> None:
        saved = self.run.save_checkpoint(self.dirpath / "last.ckpt")  # None: refused (non-finite model)
        if saved is not None:
            self.last_path = Path(saved)
            self._last_write = self.clock()

    def _consider_top_k(self, value: float | None, step: int) -> None:
        if value is None or not math.isfinite(value):
            return
        full = self.save_top_k != -1 and len(self.best) >= self.save_top_k
        if full and not better(value, self.best[-1]["score"], self.mode):
            return
        path = self.dirpath / metric_filename(step, self.monitor, value)
        # Update the list before saving so the checkpoint's own hook state already includes it.
        self.best.append({"path": str(path), "score": value, "global_step": step})
        self.best.sort(key=lambda e: e["score"], reverse=self.mode == "max")  # stable: earlier wins ties
        evicted = self.best[self.save_top_k:] if self.save_top_k != -1 else []
        del self.best[len(self.best) - len(evicted):]
        is_best = self.best[0]["path"] == str(path)
        saved = self.run.save_checkpoint(path, best=True) if is_best else self.run.save_checkpoint(path)
        if saved is None:  # refused (non-finite model): keep the old list
            self.best = [e for e in self.best if e["path"] != str(path)] + evicted
            self.best.sort(key=lambda e: e["score"], reverse=self.mode == "max")
            return
        if getattr(self.run, "is_global_zero", True):
            for e in evicted:
                Path(e["path"]).unlink(missing_ok=True)

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"best": [dict(e) for e in self.best], "cycles_seen": self.cycles_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = [
            {"path": str(e["path"]), "score": float(e["score"]), "global_step": int(e["global_step"])}
            for e in state["best"]
        ]
        self.cycles_seen = int(state["cycles_seen"])
