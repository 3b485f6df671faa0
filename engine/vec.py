"""Vector environments as the loop sees them: torch in, torch out, same-step autoreset.

The loop talks to one protocol (a *torch vector env*):

* ``reset(seed=None) -> (obs, info)`` and ``step(action) -> (obs, reward, terminated,
  truncated, info)`` with torch tensors on the run's device (``obs`` may be a dict of them);
* same-step autoreset: when env i finishes, ``obs[i]`` already starts its next episode and
  ``info["final_obs"]`` (batched like ``obs``) with mask ``info["_final_obs"]`` holds the
  observation the episode really ended on (needed to bootstrap truncated episodes).

Natively batched torch envs (the FX env) implement it directly and step on the Fabric
device with no numpy round trip. Any other gymnasium id is vectorised with gymnasium's
``SyncVectorEnv``/``AsyncVectorEnv`` in ``SAME_STEP`` autoreset mode and wrapped by
:class:`NumpyVectorAdapter`, or (``--vector-mode vector_entry_point``) built by the id's own
natively vectorised env where it provides one the loop can use: one in ``SAME_STEP`` mode, or
gymnasium's ``CartPoleVectorEnv`` (``NEXT_STEP`` mode, made ``SAME_STEP`` by :class:`CartPoleSameStep`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode


def _to_torch(x: Any, device: torch.device) -> Any:
    if isinstance(x, dict):
        return {k: _to_torch(v, device) for k, v in x.items()}
    t = torch.as_tensor(np.asarray(x))
    if t.dtype == torch.float64:
        t = t.float()
    return t.to(device)


class NumpyVectorAdapter:
    """A gymnasium numpy ``VectorEnv`` (SAME_STEP autoreset) behind the torch protocol."""

    is_native = False

    def __init__(self, env: gym.vector.VectorEnv, device: torch.device | str = "cpu") -> None:
        mode = env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"vector env must use AutoresetMode.SAME_STEP, got {mode}")
        self.env = env
        self.device = torch.device(device)
        self.num_envs = env.num_envs
        self.single_observation_space = env.single_observation_space
        self.single_action_space = env.single_action_space
        self._box = isinstance(self.single_action_space, gym.spaces.Box)
        self._last_obs: Any = None

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._last_obs = obs
        return _to_torch(obs, self.device), info

    def step(self, action: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        a = action.detach().cpu().numpy()
        if self._box:
            a = np.clip(a, self.single_action_space.low, self.single_action_space.high)
        obs, reward, terminated, truncated, info = self.env.step(a)
        if "_final_obs" in info:
            mask = np.asarray(info["_final_obs"], dtype=bool)
            final = self._stack_final(info["final_obs"], mask, obs)
            info = dict(info)
            info["final_obs"] = _to_torch(final, self.device)
            info["_final_obs"] = torch.as_tensor(mask, device=self.device)
        return (
            _to_torch(obs, self.device),
            torch.as_tensor(reward, dtype=torch.float32, device=self.device),
            torch.as_tensor(terminated, dtype=torch.bool, device=self.device),
            torch.as_tensor(truncated, dtype=torch.bool, device=self.device),
            info,
        )

    def _stack_final(self, final_obs: np.ndarray, mask: np.ndarray, like: Any) -> Any:
        """Object array of single observations (None where not done) -> batched like ``obs``."""
        if isinstance(like, dict):
            return {k: self._stack_final(np.array([None if f is None else f[k] for f in final_obs], dtype=object),
                                         mask, v) for k, v in like.items()}
        if final_obs.dtype != object:  # already batched (CartPoleSameStep)
            return final_obs
        out = np.zeros_like(like)
        for i in np.flatnonzero(mask):
            out[i] = final_obs[i]
        return out

    def close(self) -> None:
        self.env.close()


def check_gym_id(env_id: str) -> None:
    """Raise ValueError naming ``--env`` when ``env_id`` is not a registered gymnasium id."""
    if env_id not in gym.registry:
        close = gym.envs.registration.find_highest_version(None, env_id.split("-v")[0])
        hint = f" (did you mean {env_id.split('-v')[0]}-v{close}?)" if close is not None else ""
        raise ValueError(f"--env {env_id!r} is not a registered env family or gymnasium environment{hint}")


class CartPoleSameStep(gym.vector.VectorWrapper):
    """gymnasium's natively vectorised CartPole (``NEXT_STEP`` autoreset) in ``SAME_STEP`` mode.

    ``CartPoleVectorEnv`` returns a finished episode's last observation, then on the *next* step ignores that
    env's action and returns a fresh start with reward 0 (an extra, empty transition per episode). The loop
    wants ``SAME_STEP``: here a finished env is restarted at once, exactly as the env's own next step would
    do it (a uniform draw from its reset bounds with its own RNG, step counter 0), its fresh observation
    returned and the last one given in ``info["final_obs"]`` (batched) with mask ``info["_final_obs"]``.
    The dynamics, termination, the 500-step truncation and the rewards are the env's own.
    """

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        self.metadata = {**env.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict]:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        done = terminated | truncated
        if done.any():
            e = self.env.unwrapped
            k = int(done.sum())
            e.state[:, done] = e.np_random.uniform(low=e.low, high=e.high, size=(4, k))
            e.steps[done] = 0
            e.prev_done[:] = False
            info = dict(info)
            info["final_obs"], info["_final_obs"] = obs, done
            obs = obs.copy()
            obs[done] = e.state[:, done].T.astype(np.float32)
        return obs, reward, terminated, truncated, info


def _native_vector_env(env_id: str, num_envs: int, **env_kwargs: Any) -> gym.vector.VectorEnv | None:
    """The id's own vector env (``vector_entry_point``) in SAME_STEP mode, or None where it has none the loop can
    use (no entry point, or another autoreset mode than SAME_STEP without an adapter here)."""
    if gym.spec(env_id).vector_entry_point is None:
        return None
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs)
    mode = env.metadata.get("autoreset_mode")
    if mode == AutoresetMode.SAME_STEP:
        return env
    from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

    if mode == AutoresetMode.NEXT_STEP and type(env.unwrapped) is CartPoleVectorEnv:
        return CartPoleSameStep(env)
    env.close()
    return None


def make_gym_vector_env(env_id: str, num_envs: int, mode: str = "sync", device: torch.device | str = "cpu",
                        **env_kwargs: Any) -> NumpyVectorAdapter:
    """gymnasium's own vectorisation of a registered id, wrapped for the loop.

    ``mode`` ``vector_entry_point``: the id's natively vectorised env where it provides one the loop can use
    (see :func:`_native_vector_env`), else ``sync``.
    """
    check_gym_id(env_id)
    if mode == "vector_entry_point":
        native = _native_vector_env(env_id, num_envs, **env_kwargs)
        if native is not None:
            return NumpyVectorAdapter(native, device)
        mode = "sync"
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode,
                       vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **env_kwargs)
    return NumpyVectorAdapter(env, device)
