"""``python -m engine.backtest --ckpt CKPT``: backtest a trained FX checkpoint against baselines.

    python -m engine.backtest --ckpt runs/default/checkpoints/last.ckpt --split test [--data FILE]

Hands off to :func:`envs.fx.research.backtest.backtest_checkpoint`; writes ``report.json`` and PNGs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import tyro

import configs  # noqa: F401  (registers the algorithms, policies and the FX env family)
from engine.checkpoint import CheckpointError
from envs.fx.research.backtest import BacktestArgs, backtest_checkpoint


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = tyro.cli(BacktestArgs, args=argv, prog="python -m engine.backtest")
    try:
        return backtest_checkpoint(args)
    except (ValueError, OSError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
