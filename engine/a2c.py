"""``python -m engine.a2c``: the same engine and flags as ``engine.ppo``, with ``--algo a2c``.

Swapping algorithms needs no change to the loop: ``--algo a2c`` on ``engine.ppo`` is
equivalent. On CartPole-v1 the ``cartpole-a2c`` preset is used by default.
"""

from __future__ import annotations

import sys

from engine.ppo import main


def _argv() -> list[str]:
    argv = sys.argv[1:]
    if "--preset" not in " ".join(argv) and "--env" in argv and argv[argv.index("--env") + 1] == "CartPole-v1":
        argv = ["--preset", "cartpole-a2c", *argv]
    return argv


if __name__ == "__main__":
    main(_argv(), algo="a2c")
