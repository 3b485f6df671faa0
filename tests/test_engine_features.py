"""Engine features beyond the main path: Box actions, async vector envs, FX continuous positions,
target-KL early stop, LR annealing, presets and flag overrides."""

import pytest

from engine.ppo import parse_args, train

QUIET = ["--hooks.no-progress", "--report-split", "none", "--hooks.eval-every", "0"]


class LrProbe:
    def __init__(self):
        self.lrs, self.epochs, self.ents = [], [], []

    def on_metrics_computed(self, metrics):
        self.lrs.append(metrics["train/lr"])
        self.ents.append(metrics.get("train/ent_coef"))
        if "train/epochs_run" in metrics:
            self.epochs.append(metrics["train/epochs_run"])


def test_continuous_actions_on_pendulum(tmp_path):
    probe = LrProbe()
    summary = train(parse_args(["gym", "--env", "Pendulum-v1", "--policy", "mlp", "--total-steps", "1024", "--num-envs", "4",
                                "--rollout-steps", "64", "--out-dir", str(tmp_path), *QUIET]), hooks=[probe])
    assert summary["global_step"] == 1024 and summary["episodes"] == 4  # Pendulum truncates at 200 steps
    # linear annealing: 4 updates, lr falls by a quarter of the initial value each time
    lr0 = parse_args(["gym", "--env", "Pendulum-v1"]).ppo.learning_rate
    assert probe.lrs == pytest.approx([lr0 * 0.75, lr0 * 0.5, lr0 * 0.25, 0.0])


def test_entropy_bonus_anneals_linearly_when_asked(tmp_path):
    args = ["cartpole", "--total-steps", "1024", "--num-envs", "4", "--rollout-steps", "64",
            "--ppo.ent-coef", "0.2", *QUIET]
    probe = LrProbe()
    train(parse_args([*args, "--ppo.ent-coef-final", "0.04", "--out-dir", str(tmp_path / "a")]), hooks=[probe])
    # 4 updates; update u (0-based) uses the coefficient at progress u / 4
    assert probe.ents == pytest.approx([0.2, 0.16, 0.12, 0.08])
    probe = LrProbe()
    train(parse_args([*args, "--out-dir", str(tmp_path / "b")]), hooks=[probe])
    assert probe.ents == pytest.approx([0.2] * 4)  # constant by default


def test_entropy_schedule_can_start_late():
    from algos.ppo import entropy_coefficient
    from algos import PPOConfig

    cfg = PPOConfig(ent_coef=0.2, ent_coef_final=0.0, ent_anneal_start=0.5)
    got = [entropy_coefficient(cfg, p) for p in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert got == pytest.approx([0.2, 0.2, 0.2, 0.1, 0.0])
    assert entropy_coefficient(PPOConfig(ent_coef=0.2), 0.9) == 0.2


def test_async_vector_env(tmp_path):
    summary = train(parse_args(["cartpole", "--vector-mode", "async", "--total-steps", "256",
                                "--num-envs", "2", "--rollout-steps", "32", "--out-dir", str(tmp_path), *QUIET]))
    assert summary["global_step"] == 256 and summary["episodes"] > 0


def test_native_cartpole_vector_env_is_same_step():
    """--vector-mode vector_entry_point: gymnasium's CartPoleVectorEnv (NEXT_STEP) behind the loop's SAME_STEP
    protocol: no empty reset transitions (reward 1 every step), a finished env restarts in the same step with
    its last observation in final_obs, and the time limit truncates."""
    import numpy as np
    import torch

    from engine.vec import make_gym_vector_env

    env = make_gym_vector_env("CartPole-v1", 4, "vector_entry_point", max_episode_steps=10)
    assert type(env.env).__name__ == "CartPoleSameStep"
    obs, _ = env.reset(seed=0)
    steps, truncs = np.zeros(4, dtype=int), 0
    for _ in range(60):
        obs, r, term, trunc, info = env.step(torch.tensor([0, 1, 0, 1]))
        steps += 1
        assert (r == 1.0).all()
        done = (term | trunc).numpy()
        assert ((steps >= 10) <= done).all() and (trunc.numpy() == (steps >= 10)).all()
        if done.any():
            assert info["_final_obs"].numpy().tolist() == done.tolist()
            assert obs[done].abs().max() <= 0.05  # a fresh start from the reset bounds
            assert not torch.equal(info["final_obs"][done], obs[done])
            truncs += int(trunc.sum())
        steps[done] = 0
    assert truncs > 0
    env.close()
    # an id without a vector_entry_point falls back to gymnasium's sync vector env
    assert type(make_gym_vector_env("Acrobot-v1", 2, "vector_entry_point").env).__name__ == "SyncVectorEnv"


def test_fx_continuous_positions(tmp_path):
    summary = train(parse_args(["--fx.action-mode", "continuous", "--policy", "mlp", "--total-steps", "256",
                                "--num-envs", "4", "--rollout-steps", "32", "--fx.synthetic-n-bars", "12000",
                                "--out-dir", str(tmp_path), *QUIET]))
    assert summary["global_step"] == 256 and summary["nonfinite_updates"] == 0


def test_target_kl_stops_epochs_early(tmp_path):
    probe = LrProbe()
    train(parse_args(["cartpole", "--total-steps", "512", "--num-envs", "4", "--rollout-steps", "64",
                      "--ppo.update-epochs", "10", "--ppo.num-minibatches", "2", "--ppo.target-kl", "1e-9",
                      "--ppo.learning-rate", "1e-2", "--out-dir", str(tmp_path), *QUIET]), hooks=[probe])
    assert probe.epochs and max(probe.epochs) < 10  # KL exceeded the tiny target after the first epoch


def test_preset_then_flags_override(tmp_path):
    cfg = parse_args(["cartpole", "--ppo.learning-rate", "0.01", "--num-envs", "3"])
    assert cfg.env == "CartPole-v1" and cfg.ppo.learning_rate == 0.01 and cfg.num_envs == 3
    assert cfg.ppo.update_epochs == 10  # untouched preset value
    assert parse_args([]).preset == "fx" and parse_args(["--seed", "3"]).seed == 3  # the default preset
    a2c = parse_args(["cartpole"], algo="a2c")
    assert a2c.algo == "a2c" and a2c.preset == "cartpole-a2c"
