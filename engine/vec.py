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
:class:`NumpyVectorAdapter`.
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


def make_gym_vector_env(env_id: str, num_envs: int, mode: str = "sync", device: torch.device | str = "cpu",
                        **env_kwargs: Any) -> NumpyVectorAdapter:
    """gymnasium's own vectorisation of a registered id, wrapped for the loop."""
    check_gym_id(env_id)
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode,
                       vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **env_kwargs)
    return NumpyVectorAdapter(env, device)
