"""Named presets: ``python -m engine.ppo --preset NAME``; flags given with it override it.

A preset is a function returning a :class:`engine.config.TrainConfig`. ``PRESET_FOR_ENV``
picks a preset automatically when only ``--env`` is given (``--env CartPole-v1`` trains with
the tuned CartPole settings).
"""

from __future__ import annotations


from configs.presets import PRESETS
from engine.config import TrainConfig

PRESET_FOR_ENV: dict[str, str] = {"CartPole-v1": "cartpole", "fx": "fx"}


def get_preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"--preset {name!r} is unknown; choose from: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]()


__all__ = ["PRESETS", "PRESET_FOR_ENV", "get_preset"]
