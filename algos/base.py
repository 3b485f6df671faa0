"""What the engine knows of an algorithm: act, value, update, state_dict.

The loop (``engine/loop.py``) collects rollouts with :meth:`Algorithm.act`, bootstraps
with :meth:`Algorithm.value`, computes GAE with the algorithm's ``gamma``/``gae_lambda``
and hands the flattened [time*env] TensorDict to :meth:`Algorithm.update`. Swapping PPO
for A2C (or your own) is a matter of subclassing this and registering it with
``engine.registry.register_algorithm`` (see ``algos/__init__.py``).

The base class owns what every policy-gradient update shares: the Fabric-wrapped policy
and optimizer, linear LR annealing, and a guarded optimizer step that skips (and counts)
updates whose gradients are NaN/Inf and stops the run after too many in a row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import gymnasium as gym
import torch
from tensordict import TensorDict
from lightning.fabric.plugins.precision import MixedPrecision, Precision
from torch import nn

from engine.distributions import deterministic_action, make_distribution


class NonFiniteLossError(RuntimeError):
    """Raised after ``max_nonfinite`` consecutive updates had NaN/Inf loss or gradients."""


def need(ok: bool, flag: str, msg: str) -> None:
    """Raise ValueError naming ``flag`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{flag}: {msg}")


class Algorithm(ABC):
    name: str = "base"

    def __init__(self, cfg: Any, policy: nn.Module, action_space: gym.Space, fabric: Any,
                 num_updates: int, max_nonfinite: int = 5) -> None:
        self.cfg = cfg
        self.fabric = fabric
        self.action_space = action_space
        self.gamma: float = cfg.gamma
        self.gae_lambda: float = cfg.gae_lambda
        self.num_updates = max(1, int(num_updates))
        self.max_nonfinite = max_nonfinite
        self.nonfinite_in_a_row = 0
        self.nonfinite_total = 0
        optimizer = self.make_optimizer(policy)
        self._raw_policy = policy
        self.policy, self.optimizer = fabric.setup(policy, optimizer)
        # The Fabric module wrapper is what makes DDP sync gradients and casts inputs for "-true"
        # precisions; on one process with a mixed/full precision it only adds ~40 µs a forward
        # (measured), so the update then calls the module itself under fabric.autocast().
        plain = fabric.world_size == 1 and type(fabric.strategy.precision) in (Precision, MixedPrecision)
        self._train_forward = self._raw_policy if plain else self.policy
        anneal = getattr(cfg, "anneal_lr", False)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda u: max(0.0, 1.0 - u / self.num_updates) if anneal else 1.0
        )

    @classmethod
    def check_config(cls, cfg: Any, batch_size: int, prefix: str) -> None:
        """Reject bad settings before any work (``prefix`` is the flag prefix, e.g. ``--ppo``);
        ``batch_size`` is the rollout's rollout_steps x num_envs."""
        need(0 < cfg.gamma <= 1, f"{prefix}.gamma", f"must be in (0, 1] (got {cfg.gamma})")
        need(0 <= cfg.gae_lambda <= 1, f"{prefix}.gae-lambda", f"must be in [0, 1] (got {cfg.gae_lambda})")
        need(cfg.learning_rate > 0, f"{prefix}.learning-rate", f"must be > 0 (got {cfg.learning_rate})")

    @abstractmethod
    def make_optimizer(self, policy: nn.Module) -> torch.optim.Optimizer: ...

    @abstractmethod
    def update(self, batch: TensorDict) -> dict[str, float]:
        """Optimise on a flat [B] batch holding the rollout keys plus advantage and value_target."""

    # -- acting ---------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample actions: (action, log_prob [N], value [N])."""
        with self.fabric.autocast():
            params, value = self._raw_policy(obs)
        dist = make_distribution(self.action_space, params)
        action = dist.sample()
        return action, dist.log_prob(action), value.float()

    @torch.no_grad()
    def value(self, obs: Any) -> torch.Tensor:
        with self.fabric.autocast():
            return self._raw_policy(obs)[1].float()

    @torch.no_grad()
    def act_deterministic(self, obs: Any) -> torch.Tensor:
        with self.fabric.autocast():
            params, _ = self._raw_policy(obs)
        return deterministic_action(self.action_space, params)

    def evaluate_actions(self, obs: Any, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log_prob, entropy, value) of given actions, with gradients."""
        with self.fabric.autocast():
            params, value = self._train_forward(obs)
        dist = make_distribution(self.action_space, params)
        return dist.log_prob(action), dist.entropy(), value.float()

    # -- shared update machinery -----------------------------------------------------------
    @property
    def progress(self) -> float:
        """Fraction of the run's updates already done (0 at the start, 1 at the end)."""
        return min(1.0, self.scheduler.last_epoch / self.num_updates)

    @property
    def lr_fraction(self) -> float:
        return self.scheduler.get_last_lr()[0] / self.optimizer.param_groups[0]["initial_lr"]

    def optimizer_step(self, loss: torch.Tensor, max_grad_norm: float) -> tuple[bool, torch.Tensor]:
        """backward + clip + step; skips the step when the gradients are not finite.

        A NaN/Inf loss makes the gradient norm NaN too, so one check covers both. Backward
        always runs (DDP ranks stay in lock-step) and the decision uses the all-reduced
        gradient norm, so every rank skips together. Returns (stepped, grad_norm tensor).
        """
        self.optimizer.zero_grad(set_to_none=True)
        self.fabric.backward(loss)
        grad_norm = self.fabric.clip_gradients(self.policy, self.optimizer, max_norm=max_grad_norm,
                                               error_if_nonfinite=False)
        grad_norm = grad_norm.detach().float() if grad_norm is not None else torch.zeros(())
        if not bool(torch.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            self.nonfinite_in_a_row += 1
            self.nonfinite_total += 1
            if self.nonfinite_in_a_row >= self.max_nonfinite:
                raise NonFiniteLossError(
                    f"{self.nonfinite_in_a_row} consecutive updates had a non-finite loss or gradient "
                    f"(limit --max-nonfinite-updates={self.max_nonfinite}); last loss={loss.item()}, "
                    f"grad_norm={grad_norm.item()}. Try a lower learning rate, --norm-obs, or --detect-anomaly."
                )
            return False, grad_norm
        self.nonfinite_in_a_row = 0
        self.optimizer.step()
        return True, grad_norm

    def end_update(self) -> None:
        self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "scheduler": self.scheduler.state_dict(),
            "nonfinite_in_a_row": self.nonfinite_in_a_row,
            "nonfinite_total": self.nonfinite_total,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        self.nonfinite_in_a_row = int(state["nonfinite_in_a_row"])
        self.nonfinite_total = int(state["nonfinite_total"])
