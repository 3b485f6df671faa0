"""Metrics the plans name: reward/total, train/total_loss, per-episode reward components on FX."""

from __future__ import annotations

import pytest

from engine.ppo import parse_args, train

FX_TINY = ["--policy", "mlp", "--num-envs", "4", "--rollout-steps", "32", "--total-steps", "384",
           "--fx.synthetic-n-bars", "12000", "--fx.episode-bars", "24", "--report-split", "none",
           "--hooks.eval-every", "0", "--hooks.no-progress", "--seed", "3"]


class Last:
    def on_metrics_computed(self, metrics):
        self.metrics = dict(metrics)


def test_fx_episode_components_add_up_to_the_episode_return(tmp_path) -> None:
    from envs.fx.config import REWARD_COMPONENTS

    last = Last()
    train(parse_args([*FX_TINY, "--out-dir", str(tmp_path)]), hooks=[last])
    m = last.metrics
    per_episode = {c: m[f"reward/{c}_episode"] for c in REWARD_COMPONENTS}
    assert len(per_episode) == len(REWARD_COMPONENTS) >= 6
    # the same window of episodes: the components' episode totals sum to the episode return
    assert sum(per_episode.values()) == pytest.approx(m["episode/return_mean"], rel=1e-4, abs=1e-6)
    # the rollout means of the components sum to the mean reward per step
    assert sum(m[f"reward/{c}"] for c in REWARD_COMPONENTS) == pytest.approx(m["reward/total"], rel=1e-4, abs=1e-7)
    assert m["train/total_loss"] == pytest.approx(
        m["train/policy_loss"] - m["train/ent_coef"] * m["train/entropy"] + 0.5 * m["train/value_loss"], rel=1e-3,
        abs=1e-6)


def test_cartpole_reward_total_is_one_per_step(tmp_path) -> None:
    last = Last()
    train(parse_args(["cartpole", "--total-steps", "128", "--num-envs", "2", "--rollout-steps", "32",
                      "--hooks.no-progress", "--out-dir", str(tmp_path)]), hooks=[last])
    assert last.metrics["reward/total"] == 1.0
    assert not any(k.endswith("_episode") for k in last.metrics)  # CartPole reports no components
