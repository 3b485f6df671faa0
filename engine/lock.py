"""One live run per run directory: ``<out_dir>/.fxai.lock``.

The lock is an exclusive ``flock`` on that file, held by the run's first process (global rank 0)
for its whole life; the file names the owner (pid, host, start time, command) for the one line
that refuses a second run:

    error: --out-dir runs/x is in use by another run (pid 4242 on node7, started 2024-05-01 10:00:00:
    python -m engine.ppo ...); wait for it, stop it, or choose another --out-dir

The kernel releases an ``flock`` when its process dies, however it dies, so a lock file left by a
killed run is taken over by the next one (saying whose it was); there is no stale state to clean by
hand. Between machines the lock works where the shared file system supports ``flock`` (local
disks, NFSv4). When the run ends the file is removed.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from engine.errors import RunDirBusy
from engine.files import pid_alive

LOCK_NAME = ".fxai.lock"


def read_owner(path: str | os.PathLike) -> dict[str, Any]:
    """What a lock file says about its owner (empty when unreadable)."""
    try:
        data = json.loads(Path(path).read_text() or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def describe(owner: dict[str, Any]) -> str:
    if not owner:
        return "owner unknown"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(owner.get("started", 0) or 0)))
    command = owner.get("command") or ""
    return (f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, started {started}"
            + (f": {command[:120]}" if command else ""))


class RunLock:
    """Context manager holding the lock of ``out_dir`` (raises :class:`engine.errors.RunDirBusy` when a live run
    holds it). ``previous``: what a taken-over lock file said about its dead owner (None if there was none)."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / LOCK_NAME
        self.previous: dict[str, Any] | None = None
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        for _ in range(10):  # the file may be replaced between open and flock: try again on a new inode
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                owner = read_owner(self.path)
                raise RunDirBusy(f"--out-dir {self.out_dir} is in use by another run ({describe(owner)}); wait for "
                                 f"it, stop it, or choose another --out-dir") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the owner removed the file as we opened it
                os.close(fd)
                continue
            self._fd = fd
            self._claim()
            return self
        raise RunDirBusy(f"--out-dir {self.out_dir}: its lock file {self.path} keeps changing; another run is "
                         f"starting or stopping there")

    def _claim(self) -> None:
        old = os.pread(self._fd, 65536, 0)
        try:
            previous = json.loads(old or b"{}")
            self.previous = previous if isinstance(previous, dict) and previous else None
        except ValueError:
            self.previous = None
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
              "command": " ".join([os.path.basename(sys.executable), *sys.argv])}
        data = json.dumps(me).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def stale_note(self) -> str | None:
        """A line about the dead run whose lock was taken over (None when the lock file was new)."""
        if not self.previous:
            return None
        pid = int(self.previous.get("pid", 0) or 0)
        here = self.previous.get("host") == socket.gethostname()
        state = "no longer running" if here and not pid_alive(pid) else "its lock was released"
        return f"took over the lock of an earlier run in {self.out_dir} ({describe(self.previous)}; {state})"

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it: a waiting opener retries on the new inode
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
