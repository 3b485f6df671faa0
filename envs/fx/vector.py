"""``FxVectorEnv``: N FX trading envs stepped at once in torch, on any device.

Timeline of one step (latency L = ``latency_bars``, default 1). The agent observes bar t
(closed) and sends a target position; that order fills at bar t+L's OPEN. The env then moves
to bar t+1: swap accrues for rollovers in the gap before its open, the position is marked at
its open (a weekend gap moves it; a gap through the margin level stops it out there), orders
due at t+1 fill at its open, swap accrues for rollovers during the bar, the position is
checked against the bar's adverse extreme (the low for a long, the high for a short: a
stop-out fills there), then marked at the close; the reward is the (weighted, relative)
equity change. The returned observation and reward depend only on bars <= t+1 and
``info["time"]`` is bar t+1's timestamp; ``info["close"]`` is its close. No future price is
ever returned. The env trades the bars ``bounds = (lo, hi)`` of the series it is given (a
split), while its observation windows look back over the bars before ``lo``.

Episodes start at a random bar of the split (drawn from each env's own counter-based RNG
stream: a SplitMix64 hash of (seed, env index, draw number), so draws are reproducible,
vectorised and resumable) and last ``episode_bars`` steps (``truncated``), or end early at
the end of the data (``truncated``) or on forced liquidation / bankruptcy (``terminated``).
With ``cfg.mirror_augment`` a training env (split "train", random starts) also draws, per
episode, whether it trades the real bars or their mirror image (:meth:`Bars.mirrored`): the
tables of both are stacked and an env's rows start at ``variant x n_bars``.
Autoreset is SAME_STEP: a finished env's row of ``obs`` is already its next episode's first
observation; the last one is in ``info["final_obs"]`` (rows where ``info["_final_obs"]``).
``final_obs``/``final_info`` and their masks are present on the steps where some env finished
(the gymnasium convention; rows are valid where the mask is set). Per-step info tensors [N]:
``time`` (int64 ns), ``close``, ``equity``, ``position``, ``costs`` (money paid this step),
``reward64`` (the reward in float64), ``liquidated`` and ``reward/<name>`` (weighted, scaled;
they sum to the reward) and ``reward_raw/<name>`` (unweighted; ``differential_sharpe`` only where
its weight is not zero, :mod:`envs.fx.reward`). On a row that just finished,
``time``/``close``/``equity``/``position`` describe the finished episode's last bar (what its
reward and ``final_obs`` depend on), not the new episode's first observation. Info tensors are fresh each
step (never mutated afterwards), so they may be kept without copying.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from envs.fx.arrays import TradingContext, market_arrays, trading_context
from envs.fx.config import REWARD_COMPONENTS, FxEnvConfig
from envs.fx.data import Bars
from envs.fx.execution import BAR_FIELDS, Accounts, execute_bar
from envs.fx.features import FeatureNorm, WindowFeatures, bar_duration_ns
from envs.fx.reward import RewardSystem

PORTFOLIO_FEATURES = ("position", "unrealised_pnl", "time_in_position", "last_target")
"""The account as the policy sees it. Only features whose distribution is the same in a
training episode (``episode_bars`` long) and in a backtest over a whole split: equity since
the episode start, drawdown, leverage on current equity and episode progress were tried and
left out, since in a long backtest they drift far outside anything seen in training."""
_MASK64 = (1 << 64) - 1


def portfolio_vector(position: torch.Tensor, unrealised_pnl: torch.Tensor, time_in_position: torch.Tensor,
                     last_target: torch.Tensor, cfg: FxEnvConfig) -> torch.Tensor:
    """The ``portfolio`` observation [N, 4] float32 from the account ([N] float64: position and last target in
    units, unrealised P&L in account currency, bars in the position): position / max_position,
    10 x unrealised P&L / initial equity, log1p(bars held, capped at the training episode length) /
    log1p(episode length), last target / max_position, clipped to ``obs_clip``."""
    held = time_in_position.clamp(max=cfg.episode_bars)  # the training episode length caps it
    cols = [
        position / cfg.max_position,
        10.0 * unrealised_pnl / cfg.initial_equity,
        torch.log1p(held) / math.log1p(cfg.episode_bars),
        last_target / cfg.max_position,
    ]
    return torch.stack(cols, dim=-1).clamp(-cfg.obs_clip, cfg.obs_clip).to(torch.float32)


def _i64(x: int) -> int:
    x &= _MASK64
    return x - (1 << 64) if x >= 1 << 63 else x


_GOLDEN, _M1, _M2 = _i64(0x9E3779B97F4A7C15), _i64(0xBF58476D1CE4E5B9), _i64(0x94D049BB133111EB)


def _srl(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser on int64 tensors (wrapping arithmetic)."""
    z = x + _GOLDEN
    z = (z ^ _srl(z, 30)) * _M1
    z = (z ^ _srl(z, 27)) * _M2
    return z ^ _srl(z, 31)


def _seed_keys(seed: int, num_envs: int, device: torch.device) -> torch.Tensor:
    base = splitmix64(torch.tensor([_i64(int(seed))], dtype=torch.int64))
    keys = splitmix64(base + torch.arange(num_envs, dtype=torch.int64) * _GOLDEN)
    return keys.to(device)


class FxVectorEnv(gym.vector.VectorEnv):
    """N FX trading accounts on one split of bars; obs/reward/flags are torch tensors on ``device``.

    ``start_mode="random"`` draws each episode's first bar; ``"first"`` always starts at the
    first bar of ``bounds`` with full observation windows (deterministic backtests). ``norm`` is
    the training split's feature normalisation (fitted on the traded bars when None).
    ``bounds=(lo, hi)``: the bars traded (default all); ``context``: pair and account currency
    (default from ``cfg``); ``bar_ns``: the bar length (default from the bars). ``host_checks`` (default: on
    the CPU only) lets a step ask whether any env finished or was stopped out and skip the work that changes
    nothing (results equal to the last bit); off, a step never synchronises with the device."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}
    autoreset_mode = AutoresetMode.SAME_STEP
    """Also as an attribute: TorchRL's ``GymWrapper`` reads it there."""

    def __init__(self, bars: Bars, cfg: FxEnvConfig, num_envs: int = 1, seed: int = 0,
                 device: str | torch.device = "cpu", norm: FeatureNorm | None = None,
                 episode_bars: int | None = None, start_mode: str = "random", split: str = "train",
                 bounds: tuple[int, int] | None = None, context: TradingContext | None = None,
                 bar_ns: int | None = None, host_checks: bool | None = None) -> None:
        cfg.validate()
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1 (got {num_envs})")
        if start_mode not in ("random", "first"):
            raise ValueError(f"start_mode must be 'random' or 'first' (got {start_mode!r})")
        self.cfg, self.split, self.start_mode = cfg, split, start_mode
        self.device = torch.device(device)
        self.num_envs = int(num_envs)
        self.bars = bars
        self.n_bars = len(bars)
        self.bar_ns = bar_ns if bar_ns is not None else bar_duration_ns(bars)
        self.context = context if context is not None else trading_context(cfg)
        lo, hi = bounds if bounds is not None else (0, self.n_bars)
        if not 0 <= lo < hi <= self.n_bars:
            raise ValueError(f"bounds {bounds} are not a range of the {self.n_bars} bars of {bars.source}")
        self.episode_bars = int(episode_bars if episode_bars is not None else cfg.episode_bars)
        if norm is None and cfg.obs_mode == "full":
            norm = FeatureNorm.fit(bars, cfg, lo, hi, bar_ns=self.bar_ns)
        self.norm = norm
        self.mirror = bool(cfg.mirror_augment) and split == "train" and start_mode == "random"
        variants = [bars, bars.mirrored()] if self.mirror else [bars]
        self.features = WindowFeatures(variants, cfg, norm, self.device, self.bar_ns)
        self.t_min, self.t_end = max(lo, self.features.valid_from), hi
        if self.t_end - self.t_min < 2:
            raise ValueError(f"{bars.source}: split {split!r} has {hi - lo} bars from bar {lo}, and the observation "
                             f"windows are full only from bar {self.features.valid_from}: no step left to trade; "
                             f"use more data or smaller --fx.window-*/--fx.agg-*/--fx.ma-window* values")
        arrays = [market_arrays(b, cfg, self.context, self.device, self.bar_ns, mirrored=i == 1)
                  for i, b in enumerate(variants)]
        self.market = {key: torch.cat([a[key] for a in arrays]) for key in arrays[0]}
        # the bar fields execute_bar reads, as one [rows, fields] table: one gather per step instead of 14, and a
        # bar's fields side by side (two cache lines per env instead of 14 on a random step)
        self._bar_table = torch.stack([self.market[key] for key in BAR_FIELDS], 1).contiguous()
        self.host_checks = self.device.type == "cpu" if host_checks is None else bool(host_checks)
        rates = self.market["rate_open"][self.t_min:self.t_end]
        if not bool(torch.isfinite(rates).all()):
            first = self.t_min + int(torch.nonzero(~torch.isfinite(rates))[0])
            raise ValueError(f"--fx.conversion-data: no conversion rate is known at bar {first} "
                             f"({np.datetime64(int(self.market['time'][first]), 'ns')}) of {bars.source}; the "
                             f"conversion series must start before the traded bars")
        self.accounts = Accounts(cfg, self.num_envs, self.device, self.context.pip)
        self.cost_scale: torch.Tensor | None = None  # per-env cost multiples; None = all 1 (nothing to multiply)
        self.rewards = RewardSystem(cfg, self.num_envs, self.device)
        self.levels = torch.tensor(cfg.position_levels, dtype=torch.float64, device=self.device)
        self.latency = int(cfg.latency_bars)

        clip = cfg.obs_clip
        market_bound = np.inf if cfg.obs_mode == "price" else clip
        F = self.features.n_features
        self.single_observation_space = gym.spaces.Dict({
            key: gym.spaces.Box(-market_bound, market_bound, (w, F), np.float32)
            for key, w in self.features.windows.items()
        } | {"portfolio": gym.spaces.Box(-clip, clip, (len(PORTFOLIO_FEATURES),), np.float32)})
        if cfg.action_mode == "discrete":
            self.single_action_space = gym.spaces.Discrete(len(cfg.position_levels))
        else:
            self.single_action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        n, dev = self.num_envs, self.device
        self.t = torch.zeros(n, dtype=torch.int64, device=dev)
        self.start = torch.zeros(n, dtype=torch.int64, device=dev)
        self.variant = torch.zeros(n, dtype=torch.int64, device=dev)  # 1 = mirrored bars
        self.steps = torch.zeros(n, dtype=torch.int64, device=dev)
        self.ep_len = torch.ones(n, dtype=torch.int64, device=dev)
        self.pending = torch.full((n, self.latency), float("nan"), dtype=torch.float64, device=dev)
        self.last_target = torch.zeros(n, dtype=torch.float64, device=dev)
        self.episode_return = torch.zeros(n, dtype=torch.float64, device=dev)
        self.seed_keys = _seed_keys(seed, n, dev)
        self.draws = torch.zeros(n, dtype=torch.int64, device=dev)
        self._started = False

    def set_cost_scale(self, scale: Any) -> None:
        """Per-env multiples of the spread and slippage (on top of ``cfg.cost_scale``): N backtests of one policy
        at several cost levels in one pass (the reports' cost sensitivity)."""
        self.cost_scale = torch.as_tensor(scale, dtype=torch.float64, device=self.device).reshape(self.num_envs).clone()

    # ---------------------------------------------------------------------------- randomness
    def _draw_starts(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(start bar, variant) per env from its own stream; only masked envs consume a draw.
        The start is uniform over the startable bars; the variant is 0 (real bars) unless
        mirroring is on, then a fair coin from an independent hash of the same draw."""
        hi = max(self.t_min, self.t_end - 1 - self.episode_bars)
        if self.start_mode == "first" or (hi == self.t_min and not self.mirror):
            return torch.full_like(self.t, self.t_min), torch.zeros_like(self.t)
        z = splitmix64(self.seed_keys + self.draws * _GOLDEN)
        u = _srl(z, 11).to(torch.float64) / float(1 << 53)
        starts = self.t_min + torch.floor(u * (hi - self.t_min + 1)).to(torch.int64)
        variant = (splitmix64(z) & 1) if self.mirror else torch.zeros_like(self.t)
        self.draws = self.draws + mask.to(torch.int64)
        return starts, variant

    # ---------------------------------------------------------------------------- episode control
    @property
    def row(self) -> torch.Tensor:
        """Each env's current row in the (variant-stacked) market arrays."""
        return self.t + self.variant * self.n_bars if self.mirror else self.t

    def _begin(self, mask: torch.Tensor, starts: torch.Tensor, variant: torch.Tensor) -> None:
        self.t = torch.where(mask, starts, self.t)
        self.variant = torch.where(mask, variant, self.variant)
        self.start = torch.where(mask, starts, self.start)
        self.steps = torch.where(mask, torch.zeros_like(self.steps), self.steps)
        self.ep_len = torch.where(mask, torch.clamp(self.t_end - 1 - starts, max=self.episode_bars), self.ep_len)
        self.pending = torch.where(mask.unsqueeze(1), torch.full_like(self.pending, float("nan")), self.pending)
        self.last_target = torch.where(mask, torch.zeros_like(self.last_target), self.last_target)
        self.episode_return = torch.where(mask, torch.zeros_like(self.episode_return), self.episode_return)
        self.accounts.reset(mask)
        self.rewards.reset(mask)

    def _resolve_start(self, start: Any) -> int:
        if isinstance(start, (int, np.integer)) and not isinstance(start, bool):
            idx = int(start)
        else:
            try:
                ts = np.datetime64(start, "ns") if not hasattr(start, "to_datetime64") else start.to_datetime64()
            except Exception as exc:  # noqa: BLE001
                raise ValueError(f"reset(options={{'start': {start!r}}}): not a bar index or timestamp") from exc
            idx = int(np.searchsorted(self.bars.time.astype("datetime64[ns]"), np.datetime64(ts, "ns")))
        if not self.t_min <= idx <= self.t_end - 2:
            raise ValueError(f"reset(options={{'start': {start!r}}}): bar {idx} is outside the startable range "
                             f"[{self.t_min}, {self.t_end - 2}] of split {self.split!r} "
                             f"(bars before {self.t_min} fill the observation windows or belong to another split)")
        return idx

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None
              ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Start new episodes. ``seed`` re-seeds every env's stream (env i uses stream (seed, i);
        a list gives env i the stream of a 1-env env seeded ``seed[i]``);
        ``options={"start": bar index or timestamp}`` starts all (masked) envs at that bar;
        ``options={"reset_mask": bool[N]}`` resets only those envs."""
        options = dict(options or {})
        unknown = set(options) - {"start", "reset_mask"}
        if unknown:
            raise ValueError(f"reset options {sorted(unknown)} not understood; use 'start' and/or 'reset_mask'")
        if isinstance(seed, (list, tuple)):  # one seed per env: env i behaves like a 1-env env seeded seed[i]
            if len(seed) != self.num_envs:
                raise ValueError(f"reset(seed=[...]) needs {self.num_envs} seeds, got {len(seed)}")
            self.seed_keys = torch.cat([_seed_keys(int(s), 1, self.device) for s in seed])
            self.draws = torch.zeros_like(self.draws)
        elif seed is not None:
            self.seed_keys = _seed_keys(seed, self.num_envs, self.device)
            self.draws = torch.zeros_like(self.draws)
        mask = options.get("reset_mask")
        if mask is None or not self._started:
            mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        else:
            mask = torch.as_tensor(mask, dtype=torch.bool, device=self.device).reshape(self.num_envs)
        if "start" in options and options["start"] is not None:  # a chosen start trades the real bars
            starts = torch.full_like(self.t, self._resolve_start(options["start"]))
            variant = torch.zeros_like(self.t)
        else:
            starts, variant = self._draw_starts(mask)
        self._begin(mask, starts, variant)
        self._started = True
        obs = self._observe()
        row = self.row
        info = {"time": self.market["time"][row], "equity": self.accounts.equity.clone(),
                "position": self.accounts.position.clone(), "close": self.market["close"][row]}
        return obs, info

    # ---------------------------------------------------------------------------- observation
    def _rate(self, price: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        """Quote -> account rate at ``price`` (``rate``: the bar's tabulated rate, used unless the account
        is in the base currency, which converts at 1 / price)."""
        return 1.0 / price if self.context.conversion == "base" else rate

    def _portfolio(self, row: torch.Tensor, bar: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        acc = self.accounts
        if bar is None:
            close, rate = self.market["close"].index_select(0, row), self.market["rate_close"].index_select(0, row)
        else:
            close, rate = bar["close"], bar["rate_close"]
        unrealised = acc.unrealised_pnl(close, self._rate(close, rate))
        return portfolio_vector(acc.position, unrealised, acc.time_in_position, self.last_target, self.cfg)

    def _observe(self, row: torch.Tensor | None = None, bar: dict[str, torch.Tensor] | None = None
                 ) -> dict[str, torch.Tensor]:
        """The observation at ``row`` (default: every env's current row); ``bar``: that row's bar fields, when
        the caller has them already."""
        row = self.row if row is None else row
        obs = self.features.observe_rows(row)
        obs["portfolio"] = self._portfolio(row, bar)
        return obs

    # ---------------------------------------------------------------------------- stepping
    def _targets(self, actions: Any) -> torch.Tensor:
        a = torch.as_tensor(actions, device=self.device)
        if self.cfg.action_mode == "discrete":
            a = a.reshape(self.num_envs).to(torch.int64)
            return self.levels.index_select(0, a) * self.cfg.max_position
        a = a.reshape(self.num_envs).to(torch.float64)
        return torch.nan_to_num(a, nan=0.0).clamp(-1.0, 1.0) * self.cfg.max_position

    def step(self, actions: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor,
                                          torch.Tensor, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("FxVectorEnv.step() called before reset()")
        target = self._targets(actions)
        acc, m = self.accounts, self.market
        self.last_target = target

        t = self.row + 1  # row of bar t + 1 in the market arrays
        equity_prev = acc.equity
        if self.latency == 1:  # the order just sent is the one due now
            due, due_valid = target, None
        else:  # pending[:, k] fills k + 1 bars from now; NaN = no order
            self.pending[:, self.latency - 1] = target
            due = self.pending[:, 0]
            due_valid = ~torch.isnan(due)
            due = torch.nan_to_num(due, nan=0.0)
            self.pending = torch.cat([self.pending[:, 1:], torch.full_like(self.pending[:, :1], float("nan"))], 1)
        bar = dict(zip(BAR_FIELDS, self._bar_table.index_select(0, t).unbind(1)))
        res = execute_bar(acc, bar, due, due_valid, self.context.conversion == "base",
                          skip_idle=self.host_checks, cost_scale=self.cost_scale)
        pnl, cost, swap, breach, close = res.pnl, res.cost, res.swap, res.breach, bar["close"]

        reward64, weighted, raw = self.rewards.compute(pnl, cost, swap, equity_prev, acc.equity,
                                                      acc.peak_equity, acc.position)
        self.t = self.t + 1
        self.steps = self.steps + 1
        self.episode_return = self.episode_return + reward64
        terminated = breach
        truncated = (self.steps >= self.ep_len) & ~terminated
        done = terminated | truncated

        info: dict[str, Any] = {"time": m["time"].index_select(0, t), "close": close, "equity": acc.equity,
                                "position": acc.position, "costs": cost, "reward64": reward64,
                                "liquidated": breach}
        for name in REWARD_COMPONENTS:
            info[f"reward/{name}"] = weighted[name]
        for name, value in raw.items():
            info[f"reward_raw/{name}"] = value
        obs = self._observe(t, bar)  # t is every env's row now
        # without host checks (a GPU) every step pays for the masked reset instead of asking whether any env is done
        if not self.host_checks or bool(done.any()):
            info["final_obs"], info["_final_obs"] = obs, done
            info["final_info"], info["_final_info"] = self._episode_summary(terminated), done
            self._begin(done, *self._draw_starts(done))
            obs = self._observe()
        return obs, reward64.to(torch.float32), terminated, truncated, info

    def _episode_summary(self, terminated: torch.Tensor) -> dict[str, torch.Tensor]:
        acc = self.accounts
        e0 = self.cfg.initial_equity
        return {
            "equity": acc.equity.clone(), "net_return": acc.equity / e0 - 1.0,
            "episode_return": self.episode_return.clone(), "length": self.steps.clone(),
            "n_trades": acc.n_trades.clone(), "spread_paid": acc.spread_paid.clone(),
            "commission_paid": acc.commission_paid.clone(), "slippage_paid": acc.slippage_paid.clone(),
            "swap": acc.swap_total.clone(),
            "costs": acc.spread_paid + acc.commission_paid + acc.slippage_paid,
            "traded_notional": acc.traded_notional.clone(),
            "max_drawdown_equity": acc.peak_equity - acc.equity, "liquidated": terminated.clone(),
            "start_time": self.market["time"][self.start], "end_time": self.market["time"][self.t],
            "mirrored": self.variant.clone().to(torch.bool),
        }

    # ---------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "num_envs": self.num_envs, "n_bars": self.n_bars, "started": self._started,
            "t": self.t.clone(), "start": self.start.clone(), "variant": self.variant.clone(),
            "steps": self.steps.clone(),
            "ep_len": self.ep_len.clone(), "pending": self.pending.clone(),
            "last_target": self.last_target.clone(), "episode_return": self.episode_return.clone(),
            "seed_keys": self.seed_keys.clone(), "draws": self.draws.clone(),
            "accounts": self.accounts.state_dict(), "rewards": self.rewards.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["num_envs"]) != self.num_envs or int(state["n_bars"]) != self.n_bars:
            raise ValueError(f"env state is for {state['num_envs']} envs on {state['n_bars']} bars; this env has "
                             f"{self.num_envs} envs on {self.n_bars} bars")
        dev = self.device
        for name in ("t", "start", "steps", "ep_len", "pending", "last_target", "episode_return",
                     "seed_keys", "draws"):
            setattr(self, name, state[name].to(dev).clone())
        self.variant = state["variant"].to(dev).clone() if "variant" in state else torch.zeros_like(self.t)
        self.accounts.load_state_dict(state["accounts"])
        self.rewards.load_state_dict(state["rewards"])
        self._started = bool(state["started"])

    def current_obs(self) -> dict[str, torch.Tensor]:
        """The observation of the current bar (e.g. after load_state_dict)."""
        return self._observe()
