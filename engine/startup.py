"""Ctrl-C while a command is still importing (torch alone takes seconds): one ``stopped:`` line and exit 130,
not a ``KeyboardInterrupt`` traceback from inside some import. Light on purpose: it imports nothing heavy.

A command module calls :func:`quiet_interrupts` first thing when run as ``python -m engine.<name>``;
:func:`engine.cli.run_command` gives SIGINT back to Python's own handler once the body starts (its
``KeyboardInterrupt`` branch, then :mod:`engine.signals` during training, take over from there)."""

from __future__ import annotations

import os
import signal
import sys


def _while_starting(signum: int, frame: object) -> None:
    print("stopped: interrupted (SIGINT) while starting; nothing was saved", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # os._exit, not SystemExit: the handler can run inside Python code that torch's C++ import machinery called,
    # where an exception cannot unwind and becomes std::terminate (SIGABRT, a C++ stack dump). Nothing is open yet.
    os._exit(128 + signal.SIGINT)


def quiet_interrupts() -> None:
    """SIGINT ends the process with one line until :func:`restore` (called by ``run_command``)."""
    signal.signal(signal.SIGINT, _while_starting)


def restore() -> None:
    """Python's own SIGINT handler again, if :func:`quiet_interrupts` had replaced it (main thread only)."""
    if signal.getsignal(signal.SIGINT) is _while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)
