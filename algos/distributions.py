"""Building blocks of the policy networks: orthogonal layer init and the action head.

The head's output follows the policy contract of :mod:`engine.distributions`.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn

from engine.distributions import action_dim


def layer_init(layer: nn.Linear, std: float = math.sqrt(2), bias: float = 0.0) -> nn.Linear:
    """Orthogonal weights and constant bias (the PPO implementation-detail default)."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


class ActionHead(nn.Module):
    """Maps features [B, F] to distribution params for ``action_space``."""

    def __init__(self, action_space: gym.Space, in_features: int, init_std: float = 0.01,
                 init_log_std: float = 0.0) -> None:
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.linear = layer_init(nn.Linear(in_features, action_dim(action_space)), std=init_std)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((action_dim(action_space),), float(init_log_std)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.linear(features)
        if self.discrete:
            return out
        return torch.cat([out, self.log_std.to(out.dtype).expand_as(out)], dim=-1)
