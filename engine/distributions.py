"""The policy contract shared by every algorithm and network: distribution params -> actions.

A policy's ``forward(obs)`` returns ``(dist_params, value)`` as plain tensors (so it stays
DDP- and autocast-friendly); :func:`make_distribution` turns the params into a
``torch.distributions`` object whose ``log_prob``/``entropy`` have shape [B], and
:func:`deterministic_action` picks the mode (evaluation, backtests, deployment).

* ``Discrete(n)``: params are the n logits -> ``Categorical``.
* ``Box`` (continuous): params are ``[mean, log_std]`` concatenated -> diagonal ``Normal``;
  actions are sampled unbounded and clipped to the box by the env wrapper (the log-prob is
  of the unclipped sample, as in CleanRL/SB3).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch.distributions import Categorical, Distribution, Independent, Normal


def action_dim(space: gym.Space) -> int:
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    raise TypeError(f"unsupported action space {space!r}: use Discrete or Box")



def make_distribution(action_space: gym.Space, params: torch.Tensor) -> Distribution:
    """Distribution over actions from head params; computed in fp32 even under autocast.

    Argument validation is off: it costs time on every step, and a NaN loss must reach the
    update's non-finite guard (which skips and counts it) instead of raising inside torch.
    """
    params = params.float()
    if isinstance(action_space, gym.spaces.Discrete):
        return Categorical(logits=params, validate_args=False)
    mean, log_std = params.chunk(2, dim=-1)
    return Independent(Normal(mean, log_std.clamp(-20.0, 2.0).exp(), validate_args=False), 1, validate_args=False)



def deterministic_action(action_space: gym.Space, params: torch.Tensor) -> torch.Tensor:
    """The mode: argmax logits, or the Gaussian mean."""
    params = params.float()
    if isinstance(action_space, gym.spaces.Discrete):
        return params.argmax(dim=-1)
    return params.chunk(2, dim=-1)[0]
