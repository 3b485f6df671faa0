"""PPO (Schulman et al. 2017): clipped surrogate, optional value clipping, entropy bonus.

``ppo_loss`` is a pure function (unit-tested with known values); ``PPO.update`` runs
``update_epochs`` passes of shuffled minibatches (``randperm(...).split(...)``) with an
optional target-KL early stop, and optional gradient accumulation over groups of
consecutive minibatches (``accumulate_grad_batches``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from tensordict import TensorDict
from torch import nn

from algos.base import Algorithm, need
from engine import keys as K


@dataclass
class PPOConfig:
    """Proximal Policy Optimisation (clipped surrogate)."""

    RANGES: ClassVar[dict[str, str]] = {
        "learning_rate": "(0, 1]", "lr_final": "[0, 1]", "lr_warmup": "[0, 1)", "gamma": "(0, 1]",
        "gae_lambda": "[0, 1]", "update_epochs": "[1, 10000]", "num_minibatches": "[1, 16777216]",
        "clip_coef": "(0, 10]", "ent_coef": "[0, 1000]", "ent_coef_final": "[0, 1000]", "ent_anneal_start": "[0, 1)",
        "vf_coef": "[0, 1000]", "max_grad_norm": "(0, 1e9]", "target_kl": "(0, 1000]",
        "accumulate_grad_batches": "[1, 16777216]",
    }
    """Allowed values (:mod:`engine.ranges`): a gradient clip <= 0 would flip or freeze every update."""

    learning_rate: float = 2.5e-4
    """Adam learning rate (the schedule's start, after warmup)."""
    lr_schedule: Literal["linear", "cosine", "constant"] = "linear"
    """Learning-rate schedule over the run: linear or cosine from learning-rate down to lr-final, or constant
    (see algos/schedules.py; a resume that changes --total-steps continues it without a jump)."""
    lr_final: float = 0.0
    """The learning rate at the end of a linear or cosine schedule (the floor)."""
    lr_warmup: float = 0.0
    """Fraction of the run's updates over which the learning rate first rises linearly to learning-rate."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda (1.0 = Monte-Carlo returns, 0.0 = one-step TD)."""
    update_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 4
    """Minibatches per epoch (rollout_steps * num_envs must be divisible by it)."""
    clip_coef: float = 0.2
    """Surrogate clipping epsilon."""
    anneal_clip: bool = False
    """Anneal the clipping epsilon linearly to 0 with the learning rate."""
    clip_vloss: bool = True
    """Clip the value loss around the old value estimate."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient (at the start of the run when ``ent_coef_final`` is set)."""
    ent_coef_final: float | None = None
    """Anneal the entropy bonus linearly from ``ent_coef`` to this value over the run (None: constant).
    A strong bonus early keeps exploring; a weak one late lets the policy commit, so the
    deterministic policy that is evaluated is the one the values were learned for."""
    ent_anneal_start: float = 0.0
    """Fraction of the run after which the entropy annealing starts (constant ``ent_coef`` before)."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip (``fabric.clip_gradients``)."""
    target_kl: float | None = None
    """Stop the epochs of an update early once the approximate KL exceeds this."""
    accumulate_grad_batches: int = 1
    """Gradient accumulation: sum the gradients of this many consecutive minibatches (losses scaled by 1/k) and
    step once per group, the same update as num-minibatches / k minibatches (advantages normalised over the
    group) computed in smaller pieces (less memory). num-minibatches must be divisible by it."""


def ppo_loss(
    new_log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    new_value: torch.Tensor,
    old_value: torch.Tensor,
    value_target: torch.Tensor,
    entropy: torch.Tensor,
    clip_coef: float,
    clip_vloss: bool,
    vf_coef: float,
    ent_coef: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its parts. ``advantages`` are used as given (normalise before)."""
    log_ratio = new_log_prob - old_log_prob
    ratio = log_ratio.exp()
    pg_loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip_coef, 1 + clip_coef)).mean()
    v_loss_unclipped = (new_value - value_target) ** 2
    if clip_vloss:
        v_clipped = old_value + (new_value - old_value).clamp(-clip_coef, clip_coef)
        v_loss = 0.5 * torch.max(v_loss_unclipped, (v_clipped - value_target) ** 2).mean()
    else:
        v_loss = 0.5 * v_loss_unclipped.mean()
    entropy_mean = entropy.mean()
    loss = pg_loss - ent_coef * entropy_mean + vf_coef * v_loss
    with torch.no_grad():
        stats = {
            "total_loss": loss.detach(),
            "policy_loss": pg_loss.detach(),
            "value_loss": v_loss.detach(),
            "entropy": entropy_mean.detach(),
            "approx_kl": ((ratio - 1) - log_ratio).mean(),
            "clipfrac": ((ratio - 1.0).abs() > clip_coef).float().mean(),
        }
    return loss, stats


def normalize_advantages(adv: torch.Tensor) -> torch.Tensor:
    if adv.numel() < 2:
        return adv
    return (adv - adv.mean()) / (adv.std() + 1e-8)


def entropy_coefficient(cfg: PPOConfig, progress: float) -> float:
    """``ent_coef``, or with ``ent_coef_final`` set: constant until ``ent_anneal_start`` of the
    run, then linear to ``ent_coef_final`` at its end."""
    start = cfg.ent_anneal_start
    if cfg.ent_coef_final is None or progress <= start:
        return cfg.ent_coef
    return cfg.ent_coef + (cfg.ent_coef_final - cfg.ent_coef) * (progress - start) / (1.0 - start)


ADAM_IMPL: str = "fused"
"""Adam's implementation: ``fused`` (one kernel for all parameters), ``foreach`` or ``default`` (torch's per-tensor
loop on the CPU). Measured by ``python -m engine.bench adam`` on this project's CPU (2026-11-24, torch 2.13, one
thread): an optimizer step costs 200 µs default, 146 foreach, 53 fused (CartPole MLP); 1,264 / 804 / 269 (fx
transformer); the cartpole preset trains 1.07x faster fused than default."""


def adam_kwargs(impl: str) -> dict[str, bool]:
    """``torch.optim.Adam`` keyword arguments for ``impl`` (fused only where torch has the kernel)."""
    if impl == "fused":
        try:
            from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

            return {"fused": True} if "cpu" in _get_fused_kernels_supported_devices() else {}
        except ImportError:  # an older torch
            return {}
    return {"foreach": True} if impl == "foreach" else {}


class PPO(Algorithm):
    name = "ppo"
    OVERRIDES = ("lr_scale", "ent_coef", "clip_coef")

    @classmethod
    def check_config(cls, cfg: PPOConfig, batch_size: int, prefix: str = "--ppo") -> None:
        super().check_config(cfg, batch_size, prefix)
        need(batch_size % cfg.num_minibatches == 0, f"{prefix}.num-minibatches",
             f"rollout_steps * num_envs = {batch_size} is not divisible by {cfg.num_minibatches}")
        need(cfg.num_minibatches % cfg.accumulate_grad_batches == 0,
             f"{prefix}.accumulate-grad-batches",
             f"must be >= 1 and divide num-minibatches = {cfg.num_minibatches} (got {cfg.accumulate_grad_batches})")

    def make_optimizer(self, policy: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(policy.parameters(), lr=self.cfg.learning_rate, eps=1e-5, **adam_kwargs(ADAM_IMPL))

    def update(self, batch: TensorDict) -> dict[str, float]:
        cfg = self.cfg
        # look the leaves up once per update (a TensorDict key lookup costs ~10 µs), then slice them
        leaves = [batch.get(k) for k in (K.OBS, K.ACTION, K.LOG_PROB, K.VALUE, K.ADVANTAGE, K.VALUE_TARGET)]
        batch_size = batch.shape[0]
        mb_size = max(1, batch_size // cfg.num_minibatches)
        k = cfg.accumulate_grad_batches
        clip = self.overrides["clip_coef"]
        if clip is None:
            clip = cfg.clip_coef * (self.lr_fraction if cfg.anneal_clip else 1.0)
        ent_coef = self.overrides["ent_coef"]
        if ent_coef is None:
            ent_coef = entropy_coefficient(cfg, self.progress)
        sums: torch.Tensor | None = None
        n_mb = skipped = n_steps = 0
        acc_grad_norm = torch.zeros(())  # with accumulation: summed over optimizer steps
        epochs_run = 0
        for _epoch in range(cfg.update_epochs):
            epochs_run += 1
            chunks = torch.randperm(batch_size, device=batch.device).split(mb_size)
            for g in range(0, len(chunks), k):
                group = chunks[g:g + k]
                accumulate = len(group) > 1
                adv_mean = adv_std = None
                if accumulate:
                    self.optimizer.zero_grad(set_to_none=True)
                    if cfg.norm_adv:  # normalise over the group: the larger minibatch's statistics
                        group_adv = leaves[4][torch.cat(group)]
                        adv_mean, adv_std = group_adv.mean(), group_adv.std()
                    group_kl = torch.zeros(())
                for j, idx in enumerate(group):
                    obs, action, old_log_prob, old_value, adv, value_target = (x[idx] for x in leaves)
                    new_log_prob, entropy, new_value = self.evaluate_actions(obs, action)
                    if cfg.norm_adv:
                        adv = normalize_advantages(adv) if adv_mean is None else (adv - adv_mean) / (adv_std + 1e-8)
                    loss, stats = ppo_loss(new_log_prob, old_log_prob, adv, new_value, old_value, value_target,
                                           entropy, clip, cfg.clip_vloss, cfg.vf_coef, ent_coef)
                    if not accumulate:
                        stepped, grad_norm = self.optimizer_step(loss, cfg.max_grad_norm)
                        skipped += int(not stepped)
                        stats["grad_norm"] = grad_norm
                        group_kl = stats["approx_kl"]
                    else:
                        last = j == len(group) - 1
                        self.backward(loss / len(group), sync=last)
                        group_kl = group_kl + stats["approx_kl"] / len(group)
                        if last:
                            stepped, grad_norm = self.step_accumulated(cfg.max_grad_norm, loss)
                            skipped += int(not stepped)
                            acc_grad_norm = acc_grad_norm + grad_norm
                            n_steps += 1
                    vec = torch.stack([v.float() for v in stats.values()])  # summed on-device, read once
                    sums = vec if sums is None else sums + vec
                    n_mb += 1
            if cfg.target_kl is not None and group_kl.item() > cfg.target_kl:
                break
        self.end_update()
        out = dict(zip(stats.keys(), (sums / n_mb).tolist()))
        if n_steps:
            out["grad_norm"] = (acc_grad_norm / n_steps).item()
        out.update(skipped_updates=float(skipped), clip_coef=clip, ent_coef=ent_coef, epochs_run=float(epochs_run))
        return out
