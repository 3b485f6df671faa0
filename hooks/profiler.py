"""ProfilerHook: ``torch.profiler`` over a few training cycles, saved as a Chrome trace.

Profiling starts at the rollout of cycle number ``start_cycle`` (counted from 0 in this
process) and stops after ``num_cycles`` complete cycles; the trace is written to
``<out_dir>/profiler/trace_rank<r>_cycles<a>-<b>.json`` (open in chrome://tracing or
Perfetto) and a table of the top operators to ``.txt`` next to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from engine.events import Hook


class ProfilerHook(Hook):
    """Profiles cycles ``start_cycle`` .. ``start_cycle + num_cycles - 1``."""

    def __init__(self, start_cycle: int = 2, num_cycles: int = 2, out_dir: str | Path | None = None) -> None:
        if start_cycle < 0 or num_cycles < 1:
            raise ValueError(
                f"ProfilerHook: need start_cycle >= 0 and num_cycles >= 1, got {start_cycle}, {num_cycles}"
            )
        self.start_cycle = start_cycle
        self.num_cycles = num_cycles
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.rank = 0
        self.cycle = 0  # cycles started in this process
        self.prof: profile | None = None
        self.trace_path: Path | None = None

    def on_training_start(self, run: Any) -> None:
        if self.out_dir is None:
            self.out_dir = Path(run.out_dir) / "profiler"
        fabric = getattr(run, "fabric", None)
        self.rank = int(getattr(fabric, "global_rank", 0) or 0)

    def on_rollout_start(self, info: dict) -> None:
        if self.cycle == self.start_cycle and self.prof is None and self.trace_path is None:
            activities = [ProfilerActivity.CPU]
            if torch.cuda.is_available():
                activities.append(ProfilerActivity.CUDA)
            self.prof = profile(activities=activities, record_shapes=True)
            self.prof.start()
        self.cycle += 1

    def on_cycle_complete(self, info: dict) -> None:
        if self.prof is not None and self.cycle >= self.start_cycle + self.num_cycles:
            self._finish()

    def on_training_end(self, summary: dict) -> None:
        if self.prof is not None:
            self._finish()
        if self.trace_path is not None and isinstance(summary, dict):
            summary.setdefault("profiler_trace", str(self.trace_path))

    def _finish(self) -> None:
        prof, self.prof = self.prof, None
        prof.stop()
        last = self.cycle - 1
        self.out_dir.mkdir(parents=True, exist_ok=True)
        stem = f"trace_rank{self.rank}_cycles{self.start_cycle}-{last}"
        self.trace_path = self.out_dir / f"{stem}.json"
        prof.export_chrome_trace(str(self.trace_path))
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30)
        (self.out_dir / f"{stem}.txt").write_text(table)
