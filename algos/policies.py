"""The MLP actor-critic: separate actor and critic networks over a flattened observation.

Works for any Box or Dict-of-Box observation space (Dict keys are flattened and
concatenated in sorted order) and any Discrete or Box action space.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from algos.distributions import ActionHead, layer_init


@dataclass
class MLPConfig:
    """Separate actor and critic MLPs (for generic envs and speed)."""

    RANGES: ClassVar[dict[str, str]] = {"hidden": "[1, 65536]"}
    """Allowed values (:mod:`engine.ranges`; for every layer)."""

    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Activation function."""


def flat_obs_dim(space: gym.Space) -> int:
    if isinstance(space, gym.spaces.Dict):
        return sum(flat_obs_dim(s) for _, s in sorted(space.spaces.items()))
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    raise TypeError(f"unsupported observation space {space!r}: use Box, Discrete or a Dict of them")


def flatten_obs(obs: torch.Tensor | Mapping[str, torch.Tensor], space: gym.Space) -> torch.Tensor:
    """[B, ...] observation (or dict of them) -> [B, D] float tensor."""
    if isinstance(space, gym.spaces.Dict):
        return torch.cat([flatten_obs(obs[k], s) for k, s in sorted(space.spaces.items())], dim=-1)
    if isinstance(space, gym.spaces.Discrete):
        return nn.functional.one_hot(obs.long(), int(space.n)).float()
    return obs.reshape(obs.shape[0], -1).float()


def _mlp(sizes: list[int], act: type[nn.Module]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        layers += [layer_init(nn.Linear(i, o)), act()]
    return layers


class MLPActorCritic(nn.Module):
    """forward(obs) -> (dist_params [B, D], value [B])."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 hidden: tuple[int, ...] = (64, 64), activation: str = "tanh") -> None:
        super().__init__()
        self.observation_space = observation_space
        act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
        sizes = [flat_obs_dim(observation_space), *hidden]
        self.actor_body = nn.Sequential(*_mlp(sizes, act))
        self.actor_head = ActionHead(action_space, sizes[-1], init_std=0.01)
        self.critic = nn.Sequential(*_mlp(sizes, act), layer_init(nn.Linear(sizes[-1], 1), std=1.0))

    def forward(self, obs: torch.Tensor | Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x = flatten_obs(obs, self.observation_space)
        return self.actor_head(self.actor_body(x)), self.critic(x).squeeze(-1)
