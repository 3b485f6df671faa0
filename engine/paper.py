"""``python -m engine.paper --ckpt CKPT --feed FILE|- --out-dir DIR``: paper-trade a trained FX agent, crash-safe.

    python -m engine.paper --ckpt runs/eurusd/checkpoints/last.ckpt --feed EURUSD_2018.csv --out-dir paper/
    tail -f bars.csv | python -m engine.paper --ckpt eurusd.onnx --feed - --out-dir paper/

Every bar, decision, order, fill and equity row goes to ``DIR/journal.sqlite`` before it is acted on;
``DIR/summary.json`` holds the final position, equity and order count. Kill it at any moment and run the
same command again: it resumes from the journal with no order lost or sent twice. Hands off to
:func:`envs.fx.live.paper.run_paper`.
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
from envs.fx.live.paper import PaperArgs, run_paper


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Errors end as one line with the exit codes of :mod:`engine.errors` (:func:`engine.cli.run_command`); a
    second paper trader on the same ``--out-dir`` is refused (exit 3)."""
    return run_command(lambda: run_paper(tyro.cli(PaperArgs, args=argv, prog="python -m engine.paper")))


if __name__ == "__main__":
    main()
