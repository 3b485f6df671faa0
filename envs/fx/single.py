"""``FxTradingEnv``: the single-env gymnasium API over a 1-env :class:`FxVectorEnv`.

Wrapping the vector env keeps the semantics identical (same accounting, same RNG stream:
the single env seeded with s is env 0 of a vector env seeded with s). Observations are
numpy float32 dicts, rewards python floats, and the info holds python scalars. The inner
vector env autoresets; this wrapper instead returns the finished episode's last observation
and hands out the already-started next episode on the following ``reset()`` (without seed
or options), so a single env and env 0 of a vector env see the same episode starts.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envs.fx.config import FxEnvConfig
from envs.fx.features import FeatureNorm
from envs.fx.vector import FxVectorEnv
from envs.fx.data import Bars


def _obs_to_numpy(obs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v[0].detach().cpu().numpy().astype(np.float32, copy=True) for k, v in obs.items()}


def _scalar(x: torch.Tensor) -> float | int | bool:
    return x[0].item()


def _start_info(vec: FxVectorEnv) -> dict[str, Any]:
    """The reset info of env 0's current (just started) episode."""
    return {"time": _scalar(vec.market["time"][vec.row]), "equity": _scalar(vec.accounts.equity),
            "position": _scalar(vec.accounts.position), "close": _scalar(vec.market["close"][vec.row])}


def _info_to_python(info: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in info.items():
        if k.startswith("_") or k in ("final_obs", "final_info"):
            continue
        out[k] = _scalar(v) if isinstance(v, torch.Tensor) else v
    return out


class FxTradingEnv(gym.Env):
    """One FX trading account on one split of bars (gymnasium ``Env``)."""

    metadata = {"render_modes": []}

    def __init__(self, bars: Bars, cfg: FxEnvConfig, seed: int = 0, device: str = "cpu",
                 norm: FeatureNorm | None = None, episode_bars: int | None = None,
                 start_mode: str = "random", split: str = "train", **vector_kw: Any) -> None:
        self.vec = FxVectorEnv(bars, cfg, num_envs=1, seed=seed, device=device, norm=norm,
                               episode_bars=episode_bars, start_mode=start_mode, split=split, **vector_kw)
        self.cfg = cfg
        self.observation_space = self.vec.single_observation_space
        self.action_space = self.vec.single_action_space
        self._next_episode: tuple[dict[str, np.ndarray], dict[str, Any]] | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and not options and self._next_episode is not None:
            obs, info = self._next_episode
        else:
            o, i = self.vec.reset(seed=seed, options=options)
            obs, info = _obs_to_numpy(o), _info_to_python(i)
        self._next_episode = None
        return obs, info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self.cfg.action_mode == "discrete":
            a = torch.as_tensor(np.asarray(action, dtype=np.int64).reshape(1))
        else:
            a = torch.as_tensor(np.asarray(action, dtype=np.float64).reshape(1, 1))
        obs, reward, terminated, truncated, info = self.vec.step(a)
        term, trunc = bool(terminated[0].item()), bool(truncated[0].item())
        out_info = _info_to_python(info)
        if term or trunc:
            out_info["episode"] = {k: _scalar(v) for k, v in info["final_info"].items()}
            self._next_episode = (_obs_to_numpy(obs), _start_info(self.vec))
            obs = info["final_obs"]
        return _obs_to_numpy(obs), float(reward[0].item()), term, trunc, out_info

    def state_dict(self) -> dict[str, Any]:
        return {"vec": self.vec.state_dict(), "has_next_episode": self._next_episode is not None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.vec.load_state_dict(state["vec"])
        if state["has_next_episode"]:
            self._next_episode = (_obs_to_numpy(self.vec.current_obs()), _start_info(self.vec))
        else:
            self._next_episode = None
