"""``python -m engine.export --ckpt CKPT --format onnx|pt2 --out FILE``: one file to deploy a trained FX agent.

    python -m engine.export --ckpt runs/eurusd/checkpoints/last.ckpt --format onnx --out eurusd.onnx

The artifact holds the feature normalisation, the policy and the mapping to a target position; it
takes raw feature windows (:func:`envs.fx.windows.raw_windows`) and the account. Hands off to
:func:`envs.fx.live.export.export_checkpoint`.
"""

from __future__ import annotations

if __name__ == "__main__":  # Ctrl-C during the imports below: one line, exit 130
    from engine.startup import quiet_interrupts

    quiet_interrupts()

from collections.abc import Sequence
from typing import Any

import tyro

import configs  # noqa: F401  (registers the algorithms, policies and the FX env family)
from engine.cli import run_command
from envs.fx.live.export import ExportArgs, export_checkpoint


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Errors end as one line with the exit codes of :mod:`engine.errors` (:func:`engine.cli.run_command`)."""
    return run_command(lambda: export_checkpoint(tyro.cli(ExportArgs, args=argv, prog="python -m engine.export")))


if __name__ == "__main__":
    main()
