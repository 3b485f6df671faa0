"""Atomic writes with temp files of their own, and the clean-up of temp files a dead writer left.

Every file a run writes whole (checkpoints, ``summary.json``, ``hparams.json``) goes to
``<name>.<pid>.<random>.tmp`` beside it first, then is renamed over the final name. Two writers
(two runs, or a run and a converter) never share a temp file, a crash never leaves a half-written
file under the final name, and a failed write removes its temp file. A process killed mid-write
(SIGKILL, power loss) leaves its temp file behind: :func:`remove_stale_temps` deletes those whose
writer is dead at the next start (the run directory's lock makes sure no live run owns them).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

_TEMP = re.compile(r"^(?P<name>.+?)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def temp_path(path: str | os.PathLike) -> Path:
    """A temp file beside ``path`` that no other writer uses: ``<name>.<pid>.<8 hex>.tmp``."""
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename in ``directory`` durable (ignored where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def nearest_existing(path: str | os.PathLike) -> Path:
    """The closest ancestor of ``path`` (``path`` itself included) that exists: where a file or directory that
    is still to be created would land, checked before any work without creating anything."""
    probe = Path(path)
    while not probe.exists():
        probe = probe.parent
    return probe


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temp file of this writer (removed if the write fails)."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, data: Any, **dumps: Any) -> Path:
    """:func:`write_atomic` of ``data`` as indented JSON (``dumps``: more :func:`json.dumps` arguments)."""
    return write_atomic(path, json.dumps(data, indent=2, **dumps))


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(directory: str | os.PathLike) -> list[tuple[Path, int]]:
    """Delete the temp files under ``directory`` whose writer is no longer alive (and the fixed-name
    ``*.tmp`` files of older FxAI versions); returns ``(path, size)`` of each one removed."""
    removed: list[tuple[Path, int]] = []
    root = Path(directory)
    if not root.is_dir():
        return removed
    for path in root.rglob("*.tmp"):
        if not path.is_file():
            continue
        m = _TEMP.match(path.name)
        if m is not None and pid_alive(int(m.group("pid"))) and int(m.group("pid")) != os.getpid():
            continue
        if m is None and not path.name.endswith((".ckpt.tmp", ".json.tmp")):
            continue  # not ours
        try:
            size = path.stat().st_size
            path.unlink()
            removed.append((path, size))
        except OSError:
            pass
    return removed
