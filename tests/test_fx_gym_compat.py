"""``FxAI/FxTrading-v0`` plays by gymnasium's, SB3's and TorchRL's rules: the env's episode statistics under
``info["fx"]`` survive ``RecordEpisodeStatistics`` and SB3's ``Monitor``; the numpy vector env (NEXT_STEP) takes
gymnasium's vector wrappers; ``make_vec(..., "async")`` returns; ``gym.make``'s defaults are the default preset's
env; TorchRL's ``check_env_specs`` passes on ``GymEnv(id, num_envs=8)`` and on ``GymWrapper`` of the native env."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from envs.fx import ENV_ID
from configs import get_preset
from envs.fx.gym_api import env_config
from envs.fx.numpy_vector import FxNumpyVectorEnv
from envs.fx.vector import FxVectorEnv
from envs.fx.windows import observation_space
from tests.paths import ROOT, child_env

SMALL = {"synthetic_n_bars": 12_000, "episode_bars": 24}  # the default preset's env on a shorter market


def test_gym_make_defaults_are_the_default_presets_env_and_a_preset_can_be_named() -> None:
    assert env_config() == get_preset("fx").fx
    assert env_config(preset="fx-h1") == get_preset("fx-h1").fx
    assert env_config(preset="fx-randomwalk") == get_preset("fx-randomwalk").fx
    assert env_config(data=str(ROOT / "tests/data/eurusd_iso.csv")).bar_seconds == get_preset("fx").fx.bar_seconds
    env = gym.make(ENV_ID, **SMALL)
    cli = dataclasses.replace(get_preset("fx").fx, **SMALL)
    assert env.unwrapped.cfg == cli
    assert repr(env.observation_space) == repr(observation_space(get_preset("fx").fx))  # a CLI checkpoint fits
    with pytest.raises(TypeError, match="unexpected keyword argument 'frameskip'"):
        gym.make(ENV_ID, frameskip=4)
    with pytest.raises(ValueError, match="fx-h2"):
        gym.make(ENV_ID, preset="fx-h2")


def test_record_episode_statistics_and_sb3_monitor_keep_the_fx_episode_info(tmp_path: Path) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor

    env = gym.wrappers.RecordEpisodeStatistics(gym.make(ENV_ID, **SMALL))
    env.reset(seed=0)
    for _ in range(SMALL["episode_bars"]):
        *_, te, tr, info = env.step(env.action_space.sample())
    assert te or tr
    assert info["episode"]["l"] == SMALL["episode_bars"] and "n_trades" in info["fx"] and "costs" in info["fx"]

    class Ends(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.infos: list[dict] = []

        def _on_step(self) -> bool:
            self.infos += [i for i, d in zip(self.locals["infos"], self.locals["dones"]) if d]
            return True

    ends = Ends()
    model = PPO("MultiInputPolicy", Monitor(gym.make(ENV_ID, **SMALL), str(tmp_path / "m")), n_steps=64,
                batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(128, callback=ends)
    assert len(ends.infos) >= 4
    for info in ends.infos:
        assert {"r", "l", "t"} <= set(info["episode"])  # Monitor's
        assert info["fx"]["length"] == info["episode"]["l"]  # the env's own, kept
        assert info["fx"]["episode_return"] == pytest.approx(info["episode"]["r"], abs=1e-3)
    assert len(model.ep_info_buffer) == len(ends.infos)


def test_numpy_vector_env_is_next_step_and_takes_gymnasiums_vector_wrappers() -> None:
    vec = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", numpy=True, seed=4, **SMALL)
    assert isinstance(vec, FxNumpyVectorEnv) and vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    native = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", seed=4, **SMALL)
    obs, _ = vec.reset(seed=4)
    nobs, _ = native.reset(seed=4)
    assert isinstance(obs["high_freq"], np.ndarray) and np.array_equal(obs["high_freq"], nobs["high_freq"].numpy())
    rng = np.random.default_rng(0)
    held = np.zeros(3, dtype=bool)
    for step in range(SMALL["episode_bars"] + 1):
        a = rng.integers(0, 3, 3)
        obs, r, te, tr, info = vec.step(a)
        nobs, nr, nte, ntr, ninfo = native.step(torch.as_tensor(a))
        if step < SMALL["episode_bars"]:  # the first episodes: the native env's steps
            assert np.array_equal(r, nr.numpy()) and not held.any()
        if step == SMALL["episode_bars"] - 1:  # they end together: the last observation, the env's own statistics
            assert tr.all() and np.array_equal(info["_fx"], tr)
            assert np.array_equal(obs["portfolio"], ninfo["final_obs"]["portfolio"].numpy())
            first = {k: v.numpy().copy() for k, v in nobs.items()}  # the new episodes' first observations
            held = te | tr
        if step == SMALL["episode_bars"]:  # the autoreset step: actions ignored, reward 0, the first observation
            assert (r == 0).all() and not (te | tr).any()
            assert all(np.array_equal(obs[k], first[k]) for k in obs)
    wrapped = gym.wrappers.vector.RecordEpisodeStatistics(gym.wrappers.vector.NormalizeReward(
        gym.wrappers.vector.FlattenObservation(vec)))
    obs, _ = wrapped.reset(seed=1)
    assert obs.ndim == 2 and obs.shape[0] == 3
    seen = 0
    for _ in range(2 * SMALL["episode_bars"] + 2):
        obs, r, te, tr, info = wrapped.step(rng.integers(0, 3, 3))
        assert obs.dtype == np.float32 and np.isfinite(r).all()
        if (te | tr).any():
            seen += 1
            assert np.array_equal(info["_episode"], te | tr) and np.array_equal(info["_fx"], te | tr)
            assert (info["episode"]["l"][te | tr] == info["fx"]["length"][te | tr]).all()
    assert seen == 2


def test_async_make_vec_returns_with_the_default_start_method(tmp_path: Path) -> None:
    script = tmp_path / "run_async.py"
    script.write_text(textwrap.dedent(f"""
        import gymnasium as gym, torch
        from envs.fx import ENV_ID
        torch.ones(1 << 16).sum()  # the parent has used torch's thread pool before the fork
        if __name__ == "__main__":
            vec = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="async", **{SMALL!r})
            vec.reset(seed=0)
            for _ in range(30):
                vec.step(vec.action_space.sample())
            vec.close()
            print("ok")
    """))
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=child_env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_torchrl_check_env_specs_on_gymenv_and_on_the_native_vector_env(tmp_path: Path) -> None:
    pytest.importorskip("torchrl")
    from torchrl.envs import GymWrapper
    from torchrl.envs.utils import check_env_specs

    native = gym.make_vec(ENV_ID, num_envs=4, vectorization_mode="vector_entry_point", **SMALL)
    assert isinstance(native, FxVectorEnv) and native.autoreset_mode == gym.vector.AutoresetMode.SAME_STEP
    check_env_specs(GymWrapper(native))
    # GymEnv(id, num_envs=8) builds gymnasium's AsyncVectorEnv with TorchRL's "spawn" start method: each worker
    # imports the script that imports ``envs`` (which registers the id), as a user's training script does
    script = tmp_path / "run_torchrl.py"
    script.write_text(textwrap.dedent(f"""
        from envs.fx import ENV_ID  # what a spawned worker runs (it needs no more)
        if __name__ == "__main__":
            from torchrl.envs import GymEnv
            from torchrl.envs.utils import check_env_specs
            env = GymEnv(ENV_ID, num_envs=8, **{SMALL!r})
            check_env_specs(env)
            env.close()
            print("ok")
    """))
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=child_env(), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
