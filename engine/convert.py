"""``python -m engine.convert OLD NEW``: rewrite a checkpoint of an older format in the current one.

    python -m engine.convert runs/old/checkpoints/last.ckpt runs/old/checkpoints/last-v3.ckpt

Reading a checkpoint converts it anyway (``--resume``, ``engine.backtest`` accept old files);
this command stores the conversion, so the steps need not run again and older FxAI versions'
files can be retired. The conversion steps (:mod:`engine.formats`) are registered by the
packages that own what changed; importing ``configs`` registers them all. NEW is written
atomically (a temp file of its own + rename) with a fresh content hash, and never over an existing
file unless ``--overwrite``. A corrupt OLD (its stored hash does not match) is refused.
"""

from __future__ import annotations

if __name__ == "__main__":  # Ctrl-C during the imports below: one line, exit 130
    from engine.startup import quiet_interrupts

    quiet_interrupts()

import io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

import configs  # noqa: F401  (registers every conversion step)
from engine.checkpoint import read_checkpoint, seal
from engine.cli import run_command
from engine.files import write_atomic
from engine.formats import CHECKPOINT_FORMAT


@dataclass
class ConvertArgs:
    """Convert a checkpoint to the current format."""

    old: tyro.conf.Positional[str]
    """The checkpoint to read (any format up to the current one)."""
    new: tyro.conf.Positional[str]
    """Where to write the converted checkpoint."""
    overwrite: bool = False
    """Replace NEW if it exists."""


def convert_file(old: str | os.PathLike, new: str | os.PathLike, overwrite: bool = False) -> int:
    """Write ``old`` converted to ``new``; returns the format ``old`` had. Errors name the file."""
    old, new = Path(old), Path(new)
    if new.exists() and not overwrite:
        raise ValueError(f"{new} exists; choose another NEW or pass --overwrite")
    if new.resolve() == old.resolve():
        raise ValueError(f"NEW {new} is OLD; write the converted checkpoint next to it")
    ckpt = read_checkpoint(old)
    found = ckpt.pop("converted_from", CHECKPOINT_FORMAT)  # read_checkpoint records an older file's format
    new.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(seal(ckpt), buf)
    write_atomic(new, buf.getvalue())
    return found


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        args = tyro.cli(ConvertArgs, args=list(sys.argv[1:] if argv is None else argv),
                        prog="python -m engine.convert")
        found = convert_file(args.old, args.new, args.overwrite)
        print(f"{args.old}: format {found} -> {CHECKPOINT_FORMAT}, written to {args.new}")
        return 0

    return run_command(body)


if __name__ == "__main__":
    raise SystemExit(main())
