"""``python -m engine.a2c``: the same engine with A2C (default: the ``cartpole`` preset with its tuned A2C settings).

    python -m engine.a2c --total-steps 100000 --seed 1
    python -m engine.a2c fx --out-dir runs/fx-a2c

Swapping algorithms needs no change to the loop: ``--algo a2c`` on ``engine.ppo`` trains the
same way with the A2C defaults; this command's presets carry A2C settings.
"""

from __future__ import annotations

if __name__ == "__main__":  # Ctrl-C during the imports below: one line, exit 130
    from engine.startup import quiet_interrupts

    quiet_interrupts()

from engine.cli import main

if __name__ == "__main__":
    main(algo="a2c", description=(__doc__ or "").strip().splitlines()[0])
