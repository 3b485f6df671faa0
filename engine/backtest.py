"""``python -m engine.backtest --ckpt CKPT``: backtest a trained FX checkpoint against baselines.

    python -m engine.backtest --ckpt runs/default/checkpoints/last.ckpt --split test [--data FILE]

Hands off to :func:`envs.fx.research.backtest.backtest_checkpoint`; writes ``report.json`` and PNGs.
Errors end as one line with the exit codes of :mod:`engine.errors` (:func:`engine.cli.run_command`).
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
from envs.fx.research.backtest import BacktestArgs, backtest_checkpoint


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return run_command(lambda: backtest_checkpoint(tyro.cli(BacktestArgs, args=argv,
                                                            prog="python -m engine.backtest")))


if __name__ == "__main__":
    main()
