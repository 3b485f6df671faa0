"""What the engine knows of an algorithm: act, value, update, state_dict.

The loop (``engine/loop.py``) collects rollouts with :meth:`Algorithm.act`, bootstraps
with :meth:`Algorithm.value`, computes GAE with the algorithm's ``gamma``/``gae_lambda``
and hands the flattened [time*env] TensorDict to :meth:`Algorithm.update`. Swapping PPO
for A2C (or your own) is a matter of subclassing this and registering it with
``engine.registry.register_algorithm`` (see ``algos/__init__.py``).

The base class owns what every policy-gradient update shares: the Fabric-wrapped policy
and optimizer, the run's progress and learning-rate schedule (:mod:`algos.schedules`:
linear, cosine with a floor or constant, with warmup, continuous across a resume that
changes ``--total-steps``), *overrides* that a hook may set for the rest of the run (a
learning-rate scale, the entropy bonus, the clip range: the training-phase hook uses them),
and a guarded optimizer step that skips optimizer steps whose gradients are NaN/Inf; an update
(one rollout's) with any skipped step counts as non-finite, and ``max_nonfinite`` non-finite
updates in a row stop the run (:class:`engine.errors.NonFiniteLossError`): one bad rollout costs
one update, not the run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import gymnasium as gym
import torch
from tensordict import TensorDict
from lightning.fabric.plugins.precision import MixedPrecision, Precision
from torch import nn

from algos.schedules import LR_SCHEDULES, LRSchedule
from engine.distributions import deterministic_action, make_distribution
from engine.errors import NonFiniteLossError

__all__ = ["Algorithm", "NonFiniteLossError", "need"]


def need(ok: bool, flag: str, msg: str) -> None:
    """Raise ValueError naming ``flag`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{flag}: {msg}")


class Algorithm(ABC):
    name: str = "base"
    OVERRIDES: tuple[str, ...] = ("lr_scale", "ent_coef")
    """What :meth:`set_overrides` accepts for this algorithm."""

    def __init__(self, cfg: Any, policy: nn.Module, action_space: gym.Space, fabric: Any,
                 num_updates: int, max_nonfinite: int = 5) -> None:
        self.cfg = cfg
        self.fabric = fabric
        self.action_space = action_space
        self.gamma: float = cfg.gamma
        self.gae_lambda: float = cfg.gae_lambda
        self.num_updates = max(1, int(num_updates))
        self.max_nonfinite = max_nonfinite
        self.nonfinite_in_a_row = 0  # consecutive updates with a skipped (non-finite) optimizer step
        self.nonfinite_total = 0
        self._skipped_steps = 0  # in the current update
        self._last_nonfinite = (float("nan"), float("nan"))  # (loss, grad norm) of the last skipped step
        optimizer = self.make_optimizer(policy)
        self._raw_policy = policy
        self.policy, self.optimizer = fabric.setup(policy, optimizer)
        # The Fabric module wrapper is what makes DDP sync gradients and casts inputs for "-true"
        # precisions; on one process with a mixed/full precision it only adds ~40 µs a forward
        # (measured), so the update then calls the module itself under fabric.autocast().
        plain = fabric.world_size == 1 and type(fabric.strategy.precision) in (Precision, MixedPrecision)
        self._train_forward = self._raw_policy if plain else self.policy
        self._act_forward: Any = self._raw_policy
        self.overrides: dict[str, float | None] = {name: None for name in self.OVERRIDES}
        self.lr_schedule = LRSchedule(getattr(cfg, "lr_schedule", "constant"), cfg.learning_rate,
                                      getattr(cfg, "lr_final", 0.0), getattr(cfg, "lr_warmup", 0.0), self.num_updates)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda u: self._lr_factor(u))

    def compile(self) -> None:
        """``torch.compile`` the policy's forward for acting and (on one process) for training, with static shapes:
        one graph for the rollout's batch of envs and one for the minibatch, each compiled on first use.
        Checkpoints keep saving the plain module (the compiled one shares its parameters)."""
        compiled = torch.compile(self._raw_policy, dynamic=False)
        self._act_forward = compiled
        if self._train_forward is self._raw_policy:
            self._train_forward = compiled

    def _lr_factor(self, update: int) -> float:
        scale = self.overrides.get("lr_scale")
        return self.lr_schedule.factor(update) * (1.0 if scale is None else scale)

    def _apply_lr(self) -> None:
        """Set every param group's learning rate for the current update (after a load or an override)."""
        factor = self._lr_factor(self.scheduler.last_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor

    def set_overrides(self, **values: float | None) -> None:
        """Override settings for the coming updates (``None`` = back to the configured schedule):
        ``lr_scale`` multiplies the scheduled learning rate; ``ent_coef`` (and for PPO ``clip_coef``)
        replace the configured (annealed) value. Part of the algorithm's state (checkpointed)."""
        unknown = sorted(set(values) - set(self.OVERRIDES))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no override {unknown}; it accepts {list(self.OVERRIDES)}")
        self.overrides.update(values)
        self._apply_lr()

    @classmethod
    def check_config(cls, cfg: Any, batch_size: int, prefix: str) -> None:
        """Reject bad settings before any work (``prefix`` is the flag prefix, e.g. ``--ppo``);
        ``batch_size`` is the rollout's rollout_steps x num_envs. Each number's own range is in its config's
        ``RANGES`` (checked by :func:`engine.ranges.check_numbers`); here: what the flags ask of each other."""
        if hasattr(cfg, "lr_schedule"):
            need(cfg.lr_schedule in LR_SCHEDULES, f"{prefix}.lr-schedule",
                 f"must be one of {', '.join(LR_SCHEDULES)} (got {cfg.lr_schedule!r})")
            need(0 <= cfg.lr_final <= cfg.learning_rate, f"{prefix}.lr-final",
                 f"must be in [0, learning-rate = {cfg.learning_rate}] (got {cfg.lr_final})")

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
            params, value = self._act_forward(obs)
        dist = make_distribution(self.action_space, params)
        action = dist.sample()
        return action, dist.log_prob(action), value.float()

    @torch.no_grad()
    def value(self, obs: Any) -> torch.Tensor:
        with self.fabric.autocast():
            return self._act_forward(obs)[1].float()

    @torch.no_grad()
    def act_deterministic(self, obs: Any) -> torch.Tensor:
        with self.fabric.autocast():
            params, _ = self._act_forward(obs)
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
        """The run's progress in [0, 1] (see :mod:`algos.schedules`; continuous across resumes)."""
        return self.lr_schedule.progress.at(self.scheduler.last_epoch)

    @property
    def lr_fraction(self) -> float:
        """The scheduled learning rate as a fraction of ``learning_rate`` (without an ``lr_scale`` override)."""
        return self.lr_schedule.factor(self.scheduler.last_epoch)

    def backward(self, loss: torch.Tensor, sync: bool = True) -> None:
        """Add ``loss``'s gradients to the accumulated ones; ``sync=False`` skips DDP's all-reduce
        (gradient accumulation: only the last backward before a step needs it)."""
        if sync or self.fabric.world_size == 1:
            self.fabric.backward(loss)
        else:
            with self.fabric.no_backward_sync(self.policy):
                self.fabric.backward(loss)

    def optimizer_step(self, loss: torch.Tensor, max_grad_norm: float) -> tuple[bool, torch.Tensor]:
        """backward + clip + step; skips the step when the gradients are not finite.

        A NaN/Inf loss makes the gradient norm NaN too, so one check covers both. Backward
        always runs (DDP ranks stay in lock-step) and the decision uses the all-reduced
        gradient norm, so every rank skips together. Returns (stepped, grad_norm tensor).
        """
        self.optimizer.zero_grad(set_to_none=True)
        self.fabric.backward(loss)
        return self.step_accumulated(max_grad_norm, loss)

    def step_accumulated(self, max_grad_norm: float, loss: torch.Tensor | None = None) -> tuple[bool, torch.Tensor]:
        """clip + step on the gradients accumulated since they were last zeroed (skipped, and zeroed,
        when not finite). Returns (stepped, grad_norm tensor)."""
        grad_norm = self.fabric.clip_gradients(self.policy, self.optimizer, max_norm=max_grad_norm,
                                               error_if_nonfinite=False)
        grad_norm = grad_norm.detach().float() if grad_norm is not None else torch.zeros(())
        if not bool(torch.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            self._skipped_steps += 1
            self._last_nonfinite = (loss.item() if loss is not None else float("nan"), grad_norm.item())
            return False, grad_norm
        self.optimizer.step()
        return True, grad_norm

    def end_update(self) -> None:
        """Close the update: advance the schedule, count it as non-finite when any of its optimizer steps was
        skipped, and stop the run after ``max_nonfinite`` such updates in a row."""
        self.scheduler.step()
        skipped, self._skipped_steps = self._skipped_steps, 0
        if not bool(torch.stack([p.detach().isfinite().all() for p in self._raw_policy.parameters()]).all()):
            raise NonFiniteLossError("the update made the policy's weights non-finite (finite gradients, but too large "
                                     "a step): lower the learning rate or --ppo.max-grad-norm; the last checkpoint "
                                     "holds finite weights")
        if not skipped:
            self.nonfinite_in_a_row = 0
            return
        self.nonfinite_in_a_row += 1
        self.nonfinite_total += 1
        if self.nonfinite_in_a_row >= self.max_nonfinite:
            loss, norm = self._last_nonfinite
            raise NonFiniteLossError(
                f"{self.nonfinite_in_a_row} consecutive updates had a non-finite loss or gradient "
                f"(limit --max-nonfinite-updates={self.max_nonfinite}; the last one skipped {skipped} optimizer "
                f"step(s), loss={loss}, grad_norm={norm}). Try a lower learning rate, --norm-obs, or --detect-anomaly.")

    def state_dict(self) -> dict[str, Any]:
        return {
            "scheduler": self.scheduler.state_dict(),
            "lr_schedule": self.lr_schedule.state_dict(),
            "overrides": {k: v for k, v in self.overrides.items() if v is not None},
            "nonfinite_in_a_row": self.nonfinite_in_a_row,
            "nonfinite_total": self.nonfinite_total,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore, then re-plan the schedule continuously when this run's horizon differs (see
        :mod:`algos.schedules`) and set the learning rate for the current update."""
        self.scheduler.load_state_dict(state["scheduler"])
        self.lr_schedule.load_state_dict(state["lr_schedule"])
        if self.lr_schedule.progress.horizon != self.num_updates:
            self.lr_schedule.progress.replan(self.scheduler.last_epoch, self.num_updates)
        self.overrides = {name: None for name in self.OVERRIDES}
        self.overrides.update({k: float(v) for k, v in state.get("overrides", {}).items() if k in self.overrides})
        self.nonfinite_in_a_row = int(state["nonfinite_in_a_row"])
        self.nonfinite_total = int(state["nonfinite_total"])
        self._apply_lr()
