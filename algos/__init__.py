"""Algorithms the engine can run, by name (``--algo``)."""

from algos.a2c import A2C
from algos.base import Algorithm, NonFiniteLossError
from algos.ppo import PPO

ALGORITHMS: dict[str, type[Algorithm]] = {"ppo": PPO, "a2c": A2C}

__all__ = ["ALGORITHMS", "A2C", "Algorithm", "NonFiniteLossError", "PPO"]
