"""Checkpoint I/O on top of ``fabric.save``/``fabric.load``: atomic writes and finding the newest good file.

A checkpoint is written to ``<name>.tmp`` and renamed into place only once complete, so a
crash (even SIGKILL) mid-write can never leave a half-written file under the final name.
Every value in a checkpoint is a tensor, number, string or container of those (RNG states
are stored as tensors), so it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

CKPT_SUFFIX = ".ckpt"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the run (the message names the file)."""


def save_atomic(fabric: Any, path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """``fabric.save`` into a temp file, fsync, then rename over ``path`` (rank 0 writes).

    Every rank must call this (Fabric synchronises inside ``save``).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if fabric.is_global_zero:
        path.parent.mkdir(parents=True, exist_ok=True)
    fabric.barrier()
    fabric.save(tmp, state)
    if fabric.is_global_zero:
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        try:  # make the rename itself durable
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    fabric.barrier()
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint file into a plain dict, or raise :class:`CheckpointError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, wrong format ...
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {type(exc).__name__}: {exc}") from exc
    if not isinstance(ckpt, dict) or "global_step" not in ckpt:
        raise CheckpointError(f"checkpoint {path} is not an FxAI checkpoint (no 'global_step' entry)")
    return ckpt


def is_valid_checkpoint(path: str | os.PathLike) -> bool:
    try:
        read_checkpoint(path)
        return True
    except CheckpointError:
        return False


def find_latest_valid(directory: str | os.PathLike) -> Path | None:
    """The newest readable checkpoint under ``directory`` (recursively), by modification time.

    Unreadable or truncated files are skipped with a warning; ``None`` when there is none.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    candidates = sorted(
        (p for p in directory.rglob(f"*{CKPT_SUFFIX}") if p.is_file()),
        key=lambda p: p.stat().st_mtime_ns,
        reverse=True,
    )
    for p in candidates:
        try:
            read_checkpoint(p)
            return p
        except CheckpointError as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
    return None
