"""SIGTERM and SIGINT: stop after the current cycle with a checkpoint; a second signal ends the process at once.

Schedulers (SLURM, Kubernetes) send SIGTERM some seconds before they kill; Ctrl-C sends SIGINT.
While :class:`StopOnSignals` is active (the whole of a training command, in the main thread), the
first signal prints one line and asks the attached run to stop: the loop finishes the cycle it is
in (rollout and update: the run's state is only whole between cycles), then writes ``last.ckpt``,
flushes the loggers and ``summary.json`` (``stopped_early``, ``signal``) and the command exits with
128 + the signal number; ``--resume auto`` continues from exactly that step. Before a run exists
(still validating or building), the first signal raises :class:`engine.errors.Interrupted` at
once: there is nothing to save. A second signal restores the default action and re-sends itself:
the process ends immediately (atomic checkpoint writes keep the previous checkpoint whole).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from engine.errors import Interrupted, signal_name

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_ACTIVE: list[StopOnSignals] = []


def attach(run: Any) -> None:
    """Let the innermost active :class:`StopOnSignals` of this process stop ``run`` (no-op when none is)."""
    if _ACTIVE:
        _ACTIVE[-1].attach(run)


def detach() -> None:
    if _ACTIVE:
        _ACTIVE[-1].detach()


class StopOnSignals:
    """Context manager installing the handlers (a no-op outside the main thread, where Python cannot).

    ``attach(run)`` makes a signal call ``run.request_stop(...)`` and set ``run.stop_signal``;
    ``received`` is the first signal's number (None if none came)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._run: Any = None
        self._trained = False
        self._previous: dict[int, Any] = {}

    def attach(self, run: Any) -> None:
        self._run = run
        if self.received is not None:  # a signal came while the run was being built: stop at once
            self._stop_run(self.received)

    def detach(self) -> None:
        self._run = None
        self._trained = True

    def _stop_run(self, signum: int) -> None:
        self._run.stop_signal = signum
        self._run.request_stop(f"{signal_name(signum)} received")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:  # the second one: no more waiting
            print(f"\n{signal_name(signum)} again: exiting now (the last checkpoint written stays valid)",
                  file=sys.stderr, flush=True)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received = signum
        if self._run is None and self._trained:  # training is over, the command is finishing: let it
            return
        if self._run is None:
            raise Interrupted(signum, f"{signal_name(signum)} received before training started; nothing was saved")
        if getattr(self._run, "is_global_zero", True):
            print(f"\n{signal_name(signum)} received: finishing the current cycle, then writing a checkpoint "
                  f"(send it again to exit at once)", file=sys.stderr, flush=True)
        self._stop_run(signum)

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
            _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        if self in _ACTIVE:
            _ACTIVE.remove(self)
