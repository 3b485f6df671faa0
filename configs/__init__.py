"""The composition root: the config tree (:class:`configs.train.TrainConfig`), the named presets,
and the registrations they need.

Importing ``configs`` registers the built-in algorithms and policies (``algos``) and the FX
env family (``envs.fx.family``) with the engine. A preset is a function returning a
``TrainConfig``; the command modules offer each as a tyro subcommand
(``python -m engine.ppo fx-randomwalk --seed 3``), flags after it override its values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import algos  # noqa: F401  (registers ppo, a2c, mlp, transformer)
import configs.conversions  # noqa: F401  (registers the config tree's checkpoint conversion steps)
import envs.fx.family  # noqa: F401  (registers --env fx)
from configs.fx import fx, fx_h1, fx_m15, fx_randomwalk, preset_for_data
from configs.gym import cartpole, cartpole_a2c, gym
from configs.train import TrainConfig

PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "fx": fx,
    "fx-m15": fx_m15,
    "fx-h1": fx_h1,
    "fx-randomwalk": fx_randomwalk,
    "cartpole": cartpole,
    "gym": gym,
}
"""PPO presets by name; the first is the default job."""

A2C_PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "cartpole": cartpole_a2c,
    "fx": lambda: dataclasses.replace(fx(), algo="a2c"),
    "gym": lambda: dataclasses.replace(gym(), algo="a2c", preset="gym-a2c"),
}
"""``python -m engine.a2c`` presets: the same markets with ``--algo a2c`` (CartPole with its tuned A2C settings)."""


def presets(algo: str = "ppo") -> dict[str, Callable[[], TrainConfig]]:
    """The presets of ``python -m engine.<algo>`` (first = default)."""
    return A2C_PRESETS if algo == "a2c" else PRESETS


def get_preset(name: str, algo: str = "ppo") -> TrainConfig:
    table = presets(algo)
    if name not in table:
        raise ValueError(f"preset {name!r} is unknown; choose from: {', '.join(table)}")
    return table[name]()


def refine(cfg: TrainConfig) -> tuple[TrainConfig, str] | None:
    """A preset that depends on the data (``fx`` with ``--data``): the preset to parse with instead, and a line
    saying so; None when the parsed config stands."""
    return preset_for_data(cfg)


__all__ = ["A2C_PRESETS", "PRESETS", "TrainConfig", "get_preset", "presets", "refine"]
