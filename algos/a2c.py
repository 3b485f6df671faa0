"""A2C (Mnih et al. 2016, synchronous): one RMSprop step on the whole rollout.

It shares everything but the update with PPO, which is the point: the engine's loop
is unchanged when you select it with ``--algo a2c`` or run ``python -m engine.a2c``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from tensordict import TensorDict
from torch import nn

from algos.base import Algorithm
from algos.ppo import normalize_advantages
from engine import keys as K


def a2c_loss(log_prob: torch.Tensor, advantages: torch.Tensor, value: torch.Tensor,
             value_target: torch.Tensor, entropy: torch.Tensor, vf_coef: float,
             ent_coef: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    pg_loss = -(advantages.detach() * log_prob).mean()
    v_loss = 0.5 * ((value - value_target) ** 2).mean()
    ent = entropy.mean()
    loss = pg_loss + vf_coef * v_loss - ent_coef * ent
    return loss, {"total_loss": loss.detach(), "policy_loss": pg_loss.detach(), "value_loss": v_loss.detach(), "entropy": ent.detach()}


@dataclass
class A2CConfig:
    """Advantage Actor-Critic: one synchronous gradient step per rollout."""

    RANGES: ClassVar[dict[str, str]] = {
        "learning_rate": "(0, 1]", "lr_final": "[0, 1]", "lr_warmup": "[0, 1)", "gamma": "(0, 1]",
        "gae_lambda": "[0, 1]", "ent_coef": "[0, 1000]", "vf_coef": "[0, 1000]", "max_grad_norm": "(0, 1e9]",
        "rmsprop_eps": "(0, 1]", "rmsprop_alpha": "(0, 1)",
    }
    """Allowed values (:mod:`engine.ranges`)."""

    learning_rate: float = 7e-4
    """RMSprop learning rate (the schedule's start, after warmup)."""
    lr_schedule: Literal["linear", "cosine", "constant"] = "linear"
    """Learning-rate schedule over the run: linear or cosine from learning-rate down to lr-final, or constant
    (see algos/schedules.py; a resume that changes --total-steps continues it without a jump)."""
    lr_final: float = 0.0
    """The learning rate at the end of a linear or cosine schedule (the floor)."""
    lr_warmup: float = 0.0
    """Fraction of the run's updates over which the learning rate first rises linearly to learning-rate."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 1.0
    """GAE lambda (1.0 = n-step returns, as in the original A2C)."""
    norm_adv: bool = False
    """Normalise advantages over the rollout."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    rmsprop_eps: float = 1e-5
    """RMSprop epsilon."""
    rmsprop_alpha: float = 0.99
    """RMSprop smoothing constant."""


class A2C(Algorithm):
    name = "a2c"

    def make_optimizer(self, policy: nn.Module) -> torch.optim.Optimizer:
        c = self.cfg
        return torch.optim.RMSprop(policy.parameters(), lr=c.learning_rate, alpha=c.rmsprop_alpha, eps=c.rmsprop_eps)

    def update(self, batch: TensorDict) -> dict[str, float]:
        cfg = self.cfg
        log_prob, entropy, value = self.evaluate_actions(batch[K.OBS], batch[K.ACTION])
        adv = batch[K.ADVANTAGE]
        if cfg.norm_adv:
            adv = normalize_advantages(adv)
        ent_coef = cfg.ent_coef if self.overrides["ent_coef"] is None else self.overrides["ent_coef"]
        loss, stats = a2c_loss(log_prob, adv, value, batch[K.VALUE_TARGET], entropy, cfg.vf_coef, ent_coef)
        stepped, grad_norm = self.optimizer_step(loss, cfg.max_grad_norm)
        self.end_update()
        out = {k: v.item() for k, v in stats.items()}
        out.update(grad_norm=grad_norm.item(), skipped_updates=float(not stepped), ent_coef=ent_coef)
        return out
