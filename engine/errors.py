"""What can go wrong in a command, and the exit code each kind of failure gets.

========  ================================================================================
exit      meaning
========  ================================================================================
0         done (a run that reached --total-steps, or stopped early by a hook: see summary.json)
1         an unexpected error (a bug): the traceback, then where the last good checkpoint is
2         bad input: a flag, data file, checkpoint or out dir; found before any work, nothing
          saved was changed (one ``error:`` line naming the flag, file, row or column)
3         the run directory is in use by another live run (its lock names the pid and host)
4         training diverged: too many consecutive updates with a non-finite loss or gradient
          (--max-nonfinite-updates); the last good checkpoint is named
5         the machine failed the run: an accelerator/device error or an I/O error (disk full)
          while training; the last good checkpoint is named
130, 143  stopped by SIGINT (Ctrl-C) or SIGTERM (a scheduler's preemption) after finishing the
          current cycle and writing a checkpoint: ``--resume auto`` continues exactly there
========  ================================================================================

A second SIGINT/SIGTERM ends the process at once, by the signal itself (a shell shows 130/143,
Python's ``subprocess`` a negative return code).
"""

from __future__ import annotations

import signal

OK = 0
UNEXPECTED = 1
BAD_INPUT = 2
RUN_DIR_BUSY = 3
DIVERGED = 4
MACHINE = 5

EXIT_CODES: dict[int, str] = {
    OK: "done",
    UNEXPECTED: "unexpected error (a bug): traceback and the last good checkpoint",
    BAD_INPUT: "bad input (flag, data, checkpoint, out dir), found before any work",
    RUN_DIR_BUSY: "the run directory is in use by another live run",
    DIVERGED: "training diverged (non-finite loss or gradients, --max-nonfinite-updates)",
    MACHINE: "accelerator/device or I/O failure while training",
    128 + signal.SIGINT: "stopped by SIGINT after a checkpoint (continue with --resume auto)",
    128 + signal.SIGTERM: "stopped by SIGTERM after a checkpoint (continue with --resume auto)",
}


class NonFiniteLossError(RuntimeError):
    """Raised after ``max_nonfinite`` consecutive updates had NaN/Inf loss or gradients (exit 4)."""

    exit_code = DIVERGED


class RunDirBusy(RuntimeError):
    """Another live run holds the run directory's lock (exit 3)."""

    exit_code = RUN_DIR_BUSY


class Interrupted(Exception):
    """A run stopped by SIGINT/SIGTERM, after its checkpoint (exit 128 + signal). ``summary``: what it wrote."""

    def __init__(self, signum: int, message: str, summary: dict | None = None) -> None:
        super().__init__(message)
        self.signum = signum
        self.summary = summary
        self.exit_code = 128 + signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
