"""Generalised Advantage Estimation over a [time, env] buffer.

Per env and step t (Schulman et al. 2016), with d_t = done after step t:
    r'_t    = r_t + gamma * V(final_obs_t)      if step t ended by truncation (time limit)
    delta_t = r'_t + gamma * V(s_{t+1}) * (1 - d_t) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - d_t) * A_{t+1}
A terminated episode bootstraps from nothing; a truncated one from the value of its real
final observation (the env already auto-reset, so s_{t+1} belongs to the next episode).
The last step of the buffer bootstraps from V(s_T), the observation after the rollout.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    truncated_values: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and value targets, shapes [T, N], computed in float32.

    rewards, values, dones, truncated_values: [T, N]; next_value: [N] = V(s_T).
    ``truncated_values`` holds V(final_obs) where a step was truncated, 0 elsewhere.
    """
    rewards = rewards.float() + gamma * truncated_values.float()
    values = values.float()
    not_done = 1.0 - dones.float()
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value, dtype=torch.float32)
    for t in reversed(range(T)):
        v_next = next_value.float() if t == T - 1 else values[t + 1]
        delta = rewards[t] + gamma * v_next * not_done[t] - values[t]
        last = delta + gamma * lam * not_done[t] * last
        adv[t] = last
    return adv, adv + values
