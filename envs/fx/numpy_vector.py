"""``FxNumpyVectorEnv``: the native FX vector env as a gymnasium-standard numpy vector env.

:class:`envs.fx.vector.FxVectorEnv` is what the engine trains on: torch tensors on any device and
SAME_STEP autoreset. gymnasium's vector wrappers (``RecordEpisodeStatistics``,
``NormalizeReward``, ``FlattenObservation``, ...) and most libraries expect numpy arrays and,
by default, NEXT_STEP autoreset. This wrapper gives them that, at nearly the native speed (the
arrays are the tensors' own memory on the CPU)::

    vec = gym.make_vec("FxAI/FxTrading-v0", num_envs=64, vectorization_mode="vector_entry_point", numpy=True)
    vec = gym.wrappers.vector.RecordEpisodeStatistics(vec)

* NEXT_STEP (default): the step that ends env i's episode returns its last observation; the next
  step ignores env i's action and returns the first observation of its new episode with reward 0
  and both flags false. The trajectories are the native env's (the same episode starts; the
  native env already began the next episode, and this wrapper holds env i still for one step).
* SAME_STEP: the native env's behaviour, with ``info["final_obs"]`` (an object array of single
  observations, ``None`` where no episode ended) as gymnasium's own vector envs give it.

Per-step info holds numpy arrays of the native env's per-step values (``equity``, ``costs``,
``reward/<component>``, ...); on a step where episodes end, ``info["fx"]`` holds their statistics
(net return, trades, costs, ...) with the mask ``info["_fx"]``, so ``info["episode"]`` is free for
``RecordEpisodeStatistics``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from envs.fx.vector import FxVectorEnv

_ZEROED_ON_HOLD = ("costs", "reward64")


def _np(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _np(v) for k, v in x.items()}
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


def _keep_rows(before: Any, after: Any, mask: torch.Tensor, n: int) -> Any:
    """``after`` with the rows of ``mask`` taken from ``before`` (state dicts of an n-env env)."""
    if isinstance(after, dict):
        return {k: _keep_rows(before[k], v, mask, n) for k, v in after.items()}
    if isinstance(after, torch.Tensor) and after.dim() >= 1 and after.shape[0] == n:
        m = mask.reshape(n, *([1] * (after.dim() - 1)))
        return torch.where(m, before, after)
    return after


class FxNumpyVectorEnv(gym.vector.VectorEnv):
    """A gymnasium numpy ``VectorEnv`` over an :class:`FxVectorEnv` (see the module docstring)."""

    def __init__(self, env: FxVectorEnv, autoreset_mode: AutoresetMode = AutoresetMode.NEXT_STEP) -> None:
        mode = AutoresetMode(autoreset_mode)
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ValueError(f"FxNumpyVectorEnv: autoreset_mode must be NEXT_STEP or SAME_STEP (got {mode})")
        self.env = env
        self.num_envs = env.num_envs
        self.single_observation_space = env.single_observation_space
        self.single_action_space = env.single_action_space
        self.observation_space = env.observation_space
        self.action_space = env.action_space
        self.metadata = {"autoreset_mode": mode}
        self.autoreset_mode = mode
        self._held = torch.zeros(self.num_envs, dtype=torch.bool)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._held = torch.zeros(self.num_envs, dtype=torch.bool, device=self.env.device)
        return _np(obs), _np(info)

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        env, held = self.env, self._held
        hold = self.autoreset_mode == AutoresetMode.NEXT_STEP and bool(held.any())
        before = env.state_dict() if hold else None
        obs, reward, terminated, truncated, info = env.step(actions)
        if hold:  # the envs that finished last step stay at their new episode's start for this step
            env.load_state_dict(_keep_rows(before, env.state_dict(), held, self.num_envs))
            obs = env.current_obs()
            reward = torch.where(held, torch.zeros_like(reward), reward)
            terminated, truncated = terminated & ~held, truncated & ~held
            info = self._held_info(info, held)
        done = terminated | truncated
        out = {k: _np(v) for k, v in info.items() if k not in ("final_obs", "_final_obs", "final_info", "_final_info")}
        obs_np = _np(obs)
        if "final_info" in info and bool(done.any()):
            out["fx"], out["_fx"] = _np(info["final_info"]), _np(done)
            final = _np(info["final_obs"])
            rows = np.flatnonzero(_np(done))
            if self.autoreset_mode == AutoresetMode.NEXT_STEP:
                obs_np = {k: v.copy() for k, v in obs_np.items()}
                for k, v in obs_np.items():
                    v[rows] = final[k][rows]
            else:
                singles = np.full(self.num_envs, None, dtype=object)
                for i in rows:
                    singles[i] = {k: v[i] for k, v in final.items()}
                out["final_obs"], out["_final_obs"] = singles, _np(done)
        self._held = done
        return obs_np, _np(reward), _np(terminated), _np(truncated), out

    def _held_info(self, info: dict[str, Any], held: torch.Tensor) -> dict[str, Any]:
        """The per-step info of held envs: their new episode's first bar, nothing paid or earned."""
        env = self.env
        row = env.row
        now = {"time": env.market["time"][row], "close": env.market["close"][row], "equity": env.accounts.equity,
               "position": env.accounts.position}
        out = dict(info)
        for k, v in info.items():
            if not isinstance(v, torch.Tensor) or k.startswith("_") or v.shape[:1] != held.shape:
                continue
            if k in now:
                out[k] = torch.where(held, now[k], v)
            elif k in _ZEROED_ON_HOLD or k.startswith("reward"):
                out[k] = torch.where(held, torch.zeros_like(v), v)
            elif k == "liquidated":
                out[k] = v & ~held
        if "_final_info" in info:
            out["_final_info"] = info["_final_info"] & ~held
            out["_final_obs"] = info["_final_obs"] & ~held
        return out

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close()


__all__ = ["FxNumpyVectorEnv"]
