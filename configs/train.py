"""``TrainConfig``: the whole config tree of a training run, as tyro turns it into flags.

The engine's own fields (:class:`engine.config.RunConfig`: env, budget, devices, output ...)
plus one section per registered part: ``--ppo.*`` / ``--a2c.*`` (algorithms), ``--mlp.*`` /
``--model.*`` (policy networks), ``--fx.*`` (the FX env) and ``--hooks.*`` (built-in hooks
and loggers). The engine finds the sections through :mod:`engine.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from algos import A2CConfig, MLPConfig, PPOConfig, TransformerConfig
from engine.config import RunConfig
from envs.fx.config import FxEnvConfig
from hooks.config import HooksConfig


@dataclass
class TrainConfig(RunConfig):
    """Train an RL agent with an explicit rollout -> GAE -> minibatch-epoch loop on Lightning Fabric."""

    env: str = "fx"
    """``fx`` (the FX trading env, see ``--fx.*``) or any gymnasium id, e.g. ``CartPole-v1``."""
    algo: Literal["ppo", "a2c"] = "ppo"
    """Algorithm from ``algos/``: ``ppo`` or ``a2c`` (``python -m engine.a2c`` sets ``a2c``)."""
    policy: Literal["mlp", "transformer"] = "transformer"
    """Policy network: ``mlp`` (any env) or ``transformer`` (multi-branch, Dict observations)."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    a2c: A2CConfig = field(default_factory=A2CConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)
    model: TransformerConfig = field(default_factory=TransformerConfig)
    fx: FxEnvConfig = field(default_factory=FxEnvConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)
