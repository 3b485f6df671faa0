"""Learning-rate schedules (linear, cosine with a floor, constant, warmup), their continuity across a resume
that extends the run, and gradient accumulation equal to the larger minibatch."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
import torch
from lightning.fabric import Fabric
from tensordict import TensorDict

from algos import PPO, PPOConfig
from algos.policies import MLPActorCritic
from algos.schedules import LRSchedule, Progress
from engine import keys as K
from engine.ppo import parse_args, train


def test_cosine_schedule_ends_on_its_floor() -> None:
    s = LRSchedule("cosine", 1e-3, 1e-4, 0.0, horizon=4)
    got = [s.factor(u) for u in range(6)]
    f = 0.1
    expected = [f + (1 - f) * (1 + math.cos(math.pi * q)) / 2 for q in (0, 0.25, 0.5, 0.75, 1.0, 1.0)]
    assert got == pytest.approx(expected, abs=1e-12)
    assert got[1] == pytest.approx(0.8681980515, abs=1e-9) and got[4] == got[5] == pytest.approx(0.1)
    assert [LRSchedule("constant", 1e-3, 0.0, 0.0, 4).factor(u) for u in range(5)] == [1.0] * 5
    assert [LRSchedule("linear", 1e-3, 0.0, 0.0, 4).factor(u) for u in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_warmup_then_linear() -> None:
    s = LRSchedule("linear", 1.0, 0.0, 0.2, horizon=10)  # 2 warmup updates, then linear over progress 0.2..1
    got = [s.factor(u) for u in range(11)]
    assert got == pytest.approx([0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0])


def test_progress_replan_keeps_the_value_and_reaches_one_at_the_new_horizon() -> None:
    p = Progress(4)
    assert [p.at(u) for u in range(5)] == [0, 0.25, 0.5, 0.75, 1.0]
    p.replan(2, 8)  # extended at update 2: from 0.5 to 1 over updates 2..8
    assert [p.at(u) for u in (2, 5, 8, 9)] == pytest.approx([0.5, 0.75, 1.0, 1.0])
    q = Progress(4)
    q.replan(4, 8)  # a finished run extended: stays at its end
    assert q.at(6) == 1.0


class LrProbe:
    def __init__(self):
        self.lrs: list[float] = []
        self.ents: list[float] = []

    def on_metrics_computed(self, metrics):
        self.lrs.append(metrics["train/lr"])
        self.ents.append(metrics["train/ent_coef"])


class StopAfter:
    def __init__(self, cycles):
        self.cycles = cycles

    def on_cycle_complete(self, info):
        return info["cycle"] < self.cycles


CP = ["cartpole", "--num-envs", "4", "--rollout-steps", "32", "--hooks.no-progress", "--ppo.update-epochs", "1",
      "--ppo.learning-rate", "0.001"]


def test_lr_has_no_jump_across_a_resume_that_extends_the_run(tmp_path) -> None:
    before, after = LrProbe(), LrProbe()
    train(parse_args([*CP, "--total-steps", "512", "--out-dir", str(tmp_path)]), hooks=[before, StopAfter(2)])
    train(parse_args([*CP, "--total-steps", "1024", "--out-dir", str(tmp_path), "--resume", "auto"]), hooks=[after])
    lrs = before.lrs + after.lrs
    # 4 updates planned, 2 done (lr 1e-3 -> 0.75, 0.5); extended to 8 updates: from 0.5 down to 0 over the 6 left
    expected = [0.75, 0.5] + [0.5 - 0.5 * i / 6 for i in range(1, 7)]
    assert lrs == pytest.approx([1e-3 * x for x in expected], abs=1e-12)
    steps = [a - b for a, b in zip(lrs, lrs[1:])]
    assert max(steps) <= 0.25e-3 + 1e-12 and min(steps) > 0  # falling all the way, never back up


def test_a_finished_run_extended_stays_at_its_floor(tmp_path) -> None:
    args = [*CP, "--ppo.lr-schedule", "cosine", "--ppo.lr-final", "0.0002", "--ppo.ent-coef", "0.1",
            "--ppo.ent-coef-final", "0.02"]
    first, second = LrProbe(), LrProbe()
    train(parse_args([*args, "--total-steps", "256", "--out-dir", str(tmp_path)]), hooks=[first])
    train(parse_args([*args, "--total-steps", "512", "--out-dir", str(tmp_path), "--resume", "auto"]),
          hooks=[second])
    assert first.lrs == pytest.approx([1e-3 * (0.2 + 0.8 * 0.5), 2e-4])
    assert second.lrs == pytest.approx([2e-4, 2e-4])  # not re-warmed
    assert first.ents == pytest.approx([0.1, 0.06]) and second.ents == pytest.approx([0.02, 0.02])


def _batch(n: int, seed: int) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    return TensorDict({
        K.OBS: torch.randn(n, 4, generator=g), K.ACTION: torch.randint(0, 2, (n,), generator=g),
        K.LOG_PROB: -torch.rand(n, generator=g) - 0.3, K.VALUE: torch.randn(n, generator=g),
        K.ADVANTAGE: torch.randn(n, generator=g), K.VALUE_TARGET: torch.randn(n, generator=g),
    }, batch_size=[n])


def _update(num_minibatches: int, accumulate: int) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    space = gym.spaces.Box(-1, 1, (4,))
    torch.manual_seed(0)
    policy = MLPActorCritic(space, gym.spaces.Discrete(2), (8,))
    fabric = Fabric(accelerator="cpu", devices=1)
    cfg = PPOConfig(learning_rate=0.05, update_epochs=2, num_minibatches=num_minibatches,
                    accumulate_grad_batches=accumulate, max_grad_norm=100.0)
    algo = PPO(cfg, policy, gym.spaces.Discrete(2), fabric, num_updates=10)
    torch.manual_seed(1)  # the same minibatch permutation for every variant
    stats = algo.update(_batch(64, 2))
    return {k: v.detach().clone() for k, v in policy.state_dict().items()}, stats


def test_gradient_accumulation_equals_the_larger_minibatch() -> None:
    big, big_stats = _update(num_minibatches=2, accumulate=1)
    acc, acc_stats = _update(num_minibatches=4, accumulate=2)
    small, _ = _update(num_minibatches=4, accumulate=1)
    diff = max((big[k] - acc[k]).abs().max().item() for k in big)
    assert diff < 1e-6
    assert max((big[k] - small[k]).abs().max().item() for k in big) > 1e-3  # the check can fail
    for key in ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "total_loss", "grad_norm"):
        assert acc_stats[key] == pytest.approx(big_stats[key], rel=1e-5, abs=1e-7), key


def test_accumulation_flag_is_checked() -> None:
    with pytest.raises(ValueError, match="accumulate-grad-batches"):
        PPO.check_config(PPOConfig(num_minibatches=4, accumulate_grad_batches=3), 64)
    with pytest.raises(ValueError, match="lr-final"):
        PPO.check_config(PPOConfig(learning_rate=1e-3, lr_final=2e-3), 64)
