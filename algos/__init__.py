"""Algorithms and policy networks, registered with the engine by name (``--algo``, ``--policy``).

Importing this package registers PPO and A2C (settings in the ``ppo`` / ``a2c`` config
sections) and the MLP and multi-branch transformer policies (``mlp`` / ``model``). Add your
own with :func:`engine.registry.register_algorithm` / :func:`engine.registry.register_policy`.
"""

import gymnasium as gym

import algos.conversions  # noqa: F401  (registers the algorithms' checkpoint conversion steps)
from algos.a2c import A2C, A2CConfig
from algos.base import Algorithm, NonFiniteLossError
from algos.policies import MLPActorCritic, MLPConfig
from algos.ppo import PPO, PPOConfig
from algos.transformer import MultiBranchTransformer, TransformerConfig
from engine.registry import register_algorithm, register_policy


def build_mlp(observation_space: gym.Space, action_space: gym.Space, cfg: MLPConfig) -> MLPActorCritic:
    return MLPActorCritic(observation_space, action_space, tuple(cfg.hidden), cfg.activation)


def build_transformer(observation_space: gym.Space, action_space: gym.Space,
                      cfg: TransformerConfig) -> MultiBranchTransformer:
    cfg.check()
    if not isinstance(observation_space, gym.spaces.Dict):
        raise ValueError(f"--policy transformer needs a Dict observation space (this env has "
                         f"{type(observation_space).__name__}); use --policy mlp")
    return MultiBranchTransformer(observation_space, action_space, cfg)


register_algorithm("ppo", PPO, section="ppo")
register_algorithm("a2c", A2C, section="a2c")
register_policy("mlp", build_mlp, section="mlp")
register_policy("transformer", build_transformer, section="model")

__all__ = ["A2C", "A2CConfig", "Algorithm", "MLPConfig", "NonFiniteLossError", "PPO", "PPOConfig",
           "TransformerConfig", "build_mlp", "build_transformer"]
