"""``FxTradingEnv``: one FX account with the single-env gymnasium API, stepped in Python floats.

What SB3 and RL-Zoo users train on (``gym.make("FxAI/FxTrading-v0")``). Its trajectories are
those of env 0 of an :class:`FxVectorEnv` with the same seed, to the last bit: it owns a 1-env
vector env for what happens once an episode (the start draw from the env's own RNG stream,
seeds, ``options``, state dicts) and steps the bars itself with the scalar twins of the
accounting and reward (:class:`envs.fx.execution_scalar.ScalarAccount`,
:class:`envs.fx.reward.ScalarReward`), reading the vector env's precomputed market rows and
feature tables as numpy: a window is a slice of a table. About 50x faster than stepping a 1-env
torch env (no small tensor ops).

Observations are numpy float32 dicts, rewards python floats (the float32 reward), info python
scalars. On the step that ends an episode the info carries the episode's own statistics under
``info["fx"]`` (net return, trades, every cost, ...), leaving ``info["episode"]`` to gymnasium's
``RecordEpisodeStatistics`` and SB3's ``Monitor``. The vector env autoresets; this env instead
returns the finished episode's last observation and hands out the already-started next episode on
the following ``reset()`` (without seed or options), so a single env and env 0 of a vector env see
the same episode starts.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envs.fx.config import REWARD_COMPONENTS, FxEnvConfig
from envs.fx.data import Bars
from envs.fx.execution import STATE_FIELDS
from envs.fx.execution_scalar import ROW_FIELDS, ScalarAccount
from envs.fx.features import FeatureNorm
from envs.fx.reward import ScalarReward
from envs.fx.vector import FxVectorEnv

_WEIGHTED = tuple(f"reward/{name}" for name in REWARD_COMPONENTS)
_RAW = tuple(f"reward_raw/{name}" for name in REWARD_COMPONENTS)
_REWARD_STATE = ("dsr_a", "dsr_b", "last_drawdown")


class FxTradingEnv(gym.Env):
    """One FX trading account on one split of bars (gymnasium ``Env``). ``device`` is accepted for
    compatibility: the single env always steps on the CPU."""

    metadata = {"render_modes": []}

    def __init__(self, bars: Bars, cfg: FxEnvConfig, seed: int = 0, device: str = "cpu",
                 norm: FeatureNorm | None = None, episode_bars: int | None = None,
                 start_mode: str = "random", split: str = "train", **vector_kw: Any) -> None:
        vec = FxVectorEnv(bars, cfg, num_envs=1, seed=seed, device="cpu", norm=norm,
                          episode_bars=episode_bars, start_mode=start_mode, split=split, **vector_kw)
        self.vec, self.cfg = vec, cfg
        self.observation_space = vec.single_observation_space
        self.action_space = vec.single_action_space
        self._discrete = cfg.action_mode == "discrete"
        self._targets = [float(x) * cfg.max_position for x in cfg.position_levels]  # levels[a] * max_position
        self._rows = np.stack([vec.market[k].numpy() for k in ROW_FIELDS], axis=1)
        self._time = vec.market["time"].numpy()
        self._n_bars, self._mirror, self._latency = vec.n_bars, vec.mirror, vec.latency
        self._base = vec.context.conversion == "base"
        feats = vec.features
        self._windows = [(key, feats.tables[key].numpy(), feats.newest[key].numpy(), feats.windows[key],
                          feats.rows[key]) for key in feats.tables]
        # log1p(bars held) / log1p(episode length) through torch's own log1p, so the portfolio equals the vector env's
        held = torch.arange(cfg.episode_bars + 1, dtype=torch.float64)
        self._held = (torch.log1p(held) / math.log1p(cfg.episode_bars)).tolist()
        self.account = ScalarAccount(cfg, vec.context.pip)
        self.rewards = ScalarReward(cfg)
        self._next_episode: tuple[dict[str, np.ndarray], dict[str, Any]] | None = None
        self._pull()

    # ------------------------------------------------------------------ state <-> the vector env
    def _pull(self) -> None:
        """Take the episode state from the 1-env vector env (after its reset or load_state_dict)."""
        v = self.vec
        self.t, self.variant, self.start = int(v.t[0]), int(v.variant[0]), int(v.start[0])
        self.steps, self.ep_len = int(v.steps[0]), int(v.ep_len[0])
        self.pending = [None if math.isnan(p) else p for p in v.pending[0].tolist()]
        self.last_target, self.episode_return = float(v.last_target[0]), float(v.episode_return[0])
        self.account.load({k: getattr(v.accounts, k)[0].item() for k in STATE_FIELDS})
        self.rewards.load({k: getattr(v.rewards, k)[0].item() for k in _REWARD_STATE})

    def _push(self) -> None:
        """Write the episode state into the 1-env vector env (before its state_dict)."""
        v = self.vec

        def f64(x: float) -> torch.Tensor:
            return torch.tensor([x], dtype=torch.float64)

        def i64(x: int) -> torch.Tensor:
            return torch.tensor([x], dtype=torch.int64)

        v.t, v.variant, v.start, v.steps, v.ep_len = (i64(x) for x in (self.t, self.variant, self.start, self.steps,
                                                                      self.ep_len))
        v.pending = torch.tensor([[math.nan if p is None else p for p in self.pending]], dtype=torch.float64)
        v.last_target, v.episode_return = f64(self.last_target), f64(self.episode_return)
        for k, x in self.account.state().items():
            setattr(v.accounts, k, f64(x))
        for k, x in self.rewards.state().items():
            setattr(v.rewards, k, f64(x))

    def _begin(self, start: int, variant: int) -> None:
        """A new episode at bar ``start`` of variant ``variant`` (the vector env's ``_begin`` for env 0)."""
        self.t = self.start = start
        self.variant = variant
        self.steps = 0
        self.ep_len = min(self.vec.t_end - 1 - start, self.vec.episode_bars)
        self.pending = [None] * self._latency
        self.last_target = self.episode_return = 0.0
        self.account.reset()
        self.rewards.reset()

    # ------------------------------------------------------------------ observation
    def _row(self) -> int:
        return self.t + self.variant * self._n_bars if self._mirror else self.t

    def _observe(self, row: int) -> dict[str, np.ndarray]:
        obs = {}
        t, variant = self.t, self.variant if self._mirror else 0
        for key, table, newest, w, rows in self._windows:
            end = int(newest[t]) + variant * rows + 1
            obs[key] = table[end - w:end].copy()
        cfg, acc = self.cfg, self.account
        close, rate_close = self._rows[row, 3], self._rows[row, 13]
        rate = 1.0 / close if self._base else rate_close
        unrealised = acc.position * (float(close) - acc.entry_price) * float(rate)
        clip, max_pos = cfg.obs_clip, cfg.max_position
        held = acc.time_in_position
        cols = (acc.position / max_pos, 10.0 * unrealised / cfg.initial_equity,
                self._held[int(held) if held < cfg.episode_bars else cfg.episode_bars], self.last_target / max_pos)
        obs["portfolio"] = np.array([min(max(x, -clip), clip) for x in cols], dtype=np.float32)
        return obs

    def _start_info(self) -> dict[str, Any]:
        row = self._row()
        return {"time": int(self._time[row]), "equity": self.account.equity, "position": self.account.position,
                "close": float(self._rows[row, 3])}

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and not options and self._next_episode is not None:
            obs, info = self._next_episode
        else:
            self._push()
            self.vec.reset(seed=seed, options=options)
            self._pull()
            obs, info = self._observe(self._row()), self._start_info()
        self._next_episode = None
        return obs, info

    def _target(self, action: Any) -> float:
        if self._discrete:
            a = action if isinstance(action, (int, np.integer)) else np.asarray(action).reshape(-1)[0]
            a = int(a)
            if not 0 <= a < len(self._targets):
                raise IndexError(f"action {a} is out of range for Discrete({len(self._targets)})")
            return self._targets[a]
        a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        a = 0.0 if math.isnan(a) else min(max(a, -1.0), 1.0)
        return a * self.cfg.max_position

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        target = self._target(action)
        acc = self.account
        self.last_target = target
        row = self._row() + 1  # bar t + 1
        equity_prev = acc.equity
        if self._latency == 1:
            due, due_valid = target, True
        else:  # pending[k] fills k + 1 bars from now
            self.pending[-1] = target
            due = self.pending[0]
            due_valid = due is not None
            due = 0.0 if due is None else due
            self.pending = self.pending[1:] + [None]
        bar = self._rows[row].tolist()
        pnl, cost, swap, breach = acc.execute_bar(bar, due, due_valid, self._base)
        reward64, weighted, raw = self.rewards.compute(pnl, cost, swap, equity_prev, acc.equity, acc.peak_equity,
                                                       acc.position)
        self.t += 1
        self.steps += 1
        self.episode_return += reward64
        terminated = breach
        truncated = self.steps >= self.ep_len and not terminated
        info: dict[str, Any] = {"time": int(self._time[row]), "close": bar[3], "equity": acc.equity,
                                "position": acc.position, "costs": cost, "reward64": reward64, "liquidated": breach}
        for name, wkey, rkey in zip(REWARD_COMPONENTS, _WEIGHTED, _RAW):
            info[wkey] = weighted[name]
            if name in raw:
                info[rkey] = raw[name]
        obs = self._observe(self._row())
        if terminated or truncated:
            info["fx"] = self._episode_summary(terminated)
            starts, variant = self.vec._draw_starts(torch.ones(1, dtype=torch.bool))
            self._begin(int(starts[0]), int(variant[0]))
            self._next_episode = (self._observe(self._row()), self._start_info())
        return obs, float(np.float32(reward64)), terminated, truncated, info

    def _episode_summary(self, terminated: bool) -> dict[str, Any]:
        """The episode's statistics (the vector env's ``final_info`` of env 0, as python scalars)."""
        acc = self.account
        return {
            "equity": acc.equity, "net_return": acc.equity / self.cfg.initial_equity - 1.0,
            "episode_return": self.episode_return, "length": self.steps, "n_trades": acc.n_trades,
            "spread_paid": acc.spread_paid, "commission_paid": acc.commission_paid,
            "slippage_paid": acc.slippage_paid, "swap": acc.swap_total,
            "costs": acc.spread_paid + acc.commission_paid + acc.slippage_paid,
            "traded_notional": acc.traded_notional, "max_drawdown_equity": acc.peak_equity - acc.equity,
            "liquidated": bool(terminated), "start_time": int(self._time[self.start]),
            "end_time": int(self._time[self.t]), "mirrored": bool(self.variant),
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        self._push()
        return {"vec": self.vec.state_dict(), "has_next_episode": self._next_episode is not None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.vec.load_state_dict(state["vec"])
        self._pull()
        if state["has_next_episode"]:
            self._next_episode = (self._observe(self._row()), self._start_info())
        else:
            self._next_episode = None
