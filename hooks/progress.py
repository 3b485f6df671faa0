"""ProgressBarHook: a tqdm bar over the run's total steps (steps/s, return, val sharpe, ETA), rank 0 only.

When the stream is not a terminal (CI, ``nohup``, log files) no bar is drawn: the hook
prints one short line each time another ``quiet_every_percent`` of the run is done.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from engine.events import Hook
from hooks._util import is_finite, to_float

_RETURN_KEY = "episode/return_mean"
_SPS_KEY = "perf/sps"


def _fmt_eta(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class ProgressBarHook(Hook):
    """Progress over ``run.total_steps``; ``val_key`` is shown once an evaluation has produced it."""

    def __init__(
        self,
        stream: TextIO | None = None,
        is_tty: bool | None = None,
        quiet_every_percent: float = 10.0,
        val_key: str = "val/sharpe",
    ) -> None:
        if not 0 < quiet_every_percent <= 100:
            raise ValueError(f"ProgressBarHook: quiet_every_percent must be in (0, 100], got {quiet_every_percent}")
        self.stream = stream
        self.is_tty = is_tty
        self.quiet_every_percent = quiet_every_percent
        self.val_key = val_key
        self.bar: tqdm | None = None
        self.enabled = False
        self.total = 0
        self.step = 0
        self._start_step = 0
        self._t0 = 0.0
        self._next_mark = 0.0
        self._postfix: dict[str, float] = {}

    def on_training_start(self, run: Any) -> None:
        self.enabled = bool(getattr(run, "is_global_zero", True))
        if not self.enabled:
            return
        stream = self.stream if self.stream is not None else sys.stderr
        self.stream = stream
        tty = self.is_tty if self.is_tty is not None else bool(getattr(stream, "isatty", lambda: False)())
        self.is_tty = tty
        self.total = int(run.total_steps)
        self.step = self._start_step = int(run.global_step)
        self._t0 = time.perf_counter()
        pct = 100.0 * self.step / max(self.total, 1)
        self._next_mark = (int(pct // self.quiet_every_percent) + 1) * self.quiet_every_percent
        if tty:
            self.bar = tqdm(total=self.total, initial=self.step, unit="step", unit_scale=True,
                            dynamic_ncols=True, file=stream, smoothing=0.1)

    def on_cycle_complete(self, info: dict) -> None:
        if not self.enabled:
            return
        metrics = info.get("metrics") or {}
        for key, label in ((_SPS_KEY, "sps"), (_RETURN_KEY, "return"), (self.val_key, self.val_key)):
            v = to_float(metrics.get(key))
            if is_finite(v):  # NaN: no episode has ended yet (long episodes)
                self._postfix[label] = v
        new_step = int(info.get("global_step", self.step))
        if self.bar is not None:
            self.bar.update(max(new_step - self.step, 0))
            self.step = new_step
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in self._postfix.items()}, refresh=False)
            return
        self.step = new_step
        pct = 100.0 * self.step / max(self.total, 1)
        if pct + 1e-9 >= self._next_mark:
            self._print_line(pct)
            while self._next_mark <= pct + 1e-9:
                self._next_mark += self.quiet_every_percent

    def _print_line(self, pct: float) -> None:
        elapsed = time.perf_counter() - self._t0
        done = self.step - self._start_step
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"[fxai] {min(pct, 100.0):3.0f}% step {self.step}/{self.total}"]
        parts += [f"{k} {v:.4g}" for k, v in self._postfix.items()]
        if rate > 0 and self.step < self.total:
            parts.append(f"eta {_fmt_eta((self.total - self.step) / rate)}")
        print(" | ".join(parts), file=self.stream, flush=True)

    def on_training_end(self, summary: dict) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
