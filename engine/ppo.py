"""``python -m engine.ppo``: train an agent (PPO by default) from the command line.

    python -m engine.ppo                                   # FX default job (transformer, synthetic market)
    python -m engine.ppo --env CartPole-v1 --total-steps 100000 --seed 1 --out-dir runs/cp
    python -m engine.ppo --preset fx-ou --devices 2 --precision bf16-mixed

``parse_args(argv)`` is exactly the command line's parsing; ``train(cfg, hooks)`` runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import tyro

from configs import PRESET_FOR_ENV, get_preset
from engine.checkpoint import CheckpointError
from engine.config import TrainConfig
from engine.launch import train

__all__ = ["main", "parse_args", "train"]


def _find_flag(argv: Sequence[str], flag: str) -> str | None:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def parse_args(argv: Sequence[str] | None = None, algo: str | None = None) -> TrainConfig:
    """Parse a command line into a :class:`TrainConfig`.

    ``--preset NAME`` (or, without it, the preset registered for ``--env``) supplies the
    defaults; every flag given explicitly overrides them.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    preset = _find_flag(argv, "--preset")
    if preset is None:
        env = _find_flag(argv, "--env") or TrainConfig.env
        preset = PRESET_FOR_ENV.get(env)
    default = get_preset(preset) if preset else TrainConfig()
    if algo is not None and _find_flag(argv, "--algo") is None:
        argv = [*argv, "--algo", algo]
    return tyro.cli(TrainConfig, args=argv, default=default,
                    description=(__doc__ or "").strip().splitlines()[0])


def main(argv: Sequence[str] | None = None, algo: str | None = None) -> dict[str, Any]:
    try:
        cfg = parse_args(argv, algo=algo)
        summary = train(cfg)
    except (ValueError, OSError, CheckpointError) as exc:  # bad input: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return summary


if __name__ == "__main__":
    main()
