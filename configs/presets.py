"""The presets themselves, one small function each."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from configs.fx import fx, fx_ou, fx_randomwalk
from engine.config import A2CConfig, PPOConfig, TrainConfig
from hooks.config import HooksConfig

# gymnasium envs: no validation split, so hooks monitor the training return
_GYM_HOOKS = HooksConfig(monitor="episode/return_mean", eval_every=0, checkpoint_every=0, save_top_k=0)


def cartpole() -> TrainConfig:
    """CartPole-v1 solved (mean return >= 475) within 100k steps (rl-zoo style settings)."""
    return TrainConfig(
        env="CartPole-v1", preset="cartpole", policy="mlp", total_steps=100_000, num_envs=8, rollout_steps=32,
        ppo=PPOConfig(learning_rate=1e-3, gamma=0.98, gae_lambda=0.8, update_epochs=20, num_minibatches=1,
                      clip_coef=0.2, anneal_clip=True, clip_vloss=False, ent_coef=0.0, max_grad_norm=0.5),
        hooks=_GYM_HOOKS,
    )


def cartpole_a2c() -> TrainConfig:
    """A2C on CartPole-v1."""
    return dataclasses.replace(cartpole(), preset="cartpole-a2c", algo="a2c", rollout_steps=5,
                               a2c=A2CConfig(learning_rate=2e-3, gamma=0.99, gae_lambda=1.0, ent_coef=0.0))


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "cartpole": cartpole,
    "cartpole-a2c": cartpole_a2c,
    "fx": fx,
    "fx-ou": fx_ou,
    "fx-randomwalk": fx_randomwalk,
}
