"""``python -m engine.ppo``: train an agent with PPO (the default job: the ``fx`` preset).

    python -m engine.ppo                                     # FX default job (transformer, synthetic OU market)
    python -m engine.ppo cartpole --total-steps 100000 --seed 1 --out-dir runs/cp
    python -m engine.ppo fx-randomwalk --devices 2 --precision bf16-mixed
    python -m engine.ppo --data eurusd_h1.csv                # the default job on your own bars

A preset is a subcommand; flags after it (or alone, for the default preset) override it.
``parse_args(argv)`` is exactly the command line's parsing; ``train(cfg, hooks)`` runs it.
"""

from __future__ import annotations

if __name__ == "__main__":  # Ctrl-C during the imports below: one line, exit 130
    from engine.startup import quiet_interrupts

    quiet_interrupts()

from engine.cli import main, parse_args, train

__all__ = ["main", "parse_args", "train"]

if __name__ == "__main__":
    main(algo="ppo", description=(__doc__ or "").strip().splitlines()[0])
