"""A trained FX agent on new bars: load it from its checkpoint alone and ask it for target positions.

    agent = Agent.load("runs/eurusd/checkpoints/last.ckpt")      # no data file, no config file
    live = agent.stream(history=last_month)                      # warm-up bars: history only
    for bar in feed:                                             # one closed bar at a time
        d = live.on_bar(bar)                                     # Decision: d.target, d.target_units
        ...

:class:`Agent` rebuilds what the policy saw in training from the checkpoint: the config
(windows, aggregates, costs, position levels), the fitted feature normalisation and bar length
(``env_spec``), the engine's running observation normaliser (``--norm-obs``), and the network.
``act(history, account)`` decides for the newest bar of a history and an account state (a
list of them: one batch through the network). :class:`StreamingAgent` keeps the rolling history
(the last :func:`envs.fx.windows.history_bars` bars: clock-aligned aggregates make older bars
irrelevant) and the account: its own simulated one (``account="sim"``: the env's execution
model, :class:`envs.fx.sim_account.SimAccount`), or the broker's (``account="external"``: pass
the position and its average price with every bar; the agent counts bars in the position and
remembers its last target, as the env does). It states the warm-up it needs
(:attr:`StreamingAgent.warmup_bars`) and says in each decision whether its windows are full.

The decisions are the backtest's: on the bars of a split, fed one at a time after the bars
before it, the targets equal ``engine.backtest``'s actions and the positions its positions,
bar for bar (``tests/test_live_agent.py``). Bars are mid prices (the env's convention; a feed of
bid/ask columns or one side is converted by :mod:`envs.fx.live.feed`), times UTC.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from engine.checkpoint import CheckpointError, read_checkpoint
from engine.distributions import deterministic_action
from engine.loop import build_policy, load_config
from engine.normalize import ObsNormalizer
from envs.fx.arrays import TradingContext, trading_context
from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars, load_bars
from envs.fx.features import FeatureNorm
from envs.fx.live.artifact import load_artifact
from envs.fx.research.spec import norm_from_spec
from envs.fx.sim_account import SimAccount, bar_arrays
from envs.fx.vector import portfolio_vector
from envs.fx.windows import (action_space, history_bars, normalise_windows, observation_space, raw_windows,
                             windows_ready)

AccountMode = Literal["sim", "external"]


# ----------------------------------------------------------------------------------------------
# what goes in and out
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bar:
    """One closed bar: open time (int ns since the epoch, UTC) and mid prices; ``spread``: the bar's
    bid/ask spread at open, high, low and close (price units) when the feed has both sides, else the
    checkpoint's ``spread_pips`` applies."""

    time_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    spread: tuple[float, float, float, float] | None = None

    @staticmethod
    def of(bar: Any) -> "Bar":
        """A :class:`Bar` from a Bar, a one-row :class:`~envs.fx.data.Bars`, or a mapping with ``time``
        (ns int, ISO string, datetime, numpy or pandas time; naive = UTC), ``open``, ``high``, ``low``,
        ``close`` and optionally ``volume`` and ``spread``."""
        if isinstance(bar, Bar):
            return bar
        if isinstance(bar, Bars):
            if len(bar) != 1:
                raise ValueError(f"on_bar takes one bar at a time, got {len(bar)} (use extend_history for many)")
            return Bar.rows(bar)[0]
        if isinstance(bar, Mapping):
            missing = [k for k in ("time", "open", "high", "low", "close") if k not in bar]
            if missing:
                raise ValueError(f"bar {dict(bar)!r} lacks {missing}")
            spread = bar.get("spread")
            return Bar(time_ns(bar["time"]), float(bar["open"]), float(bar["high"]), float(bar["low"]),
                       float(bar["close"]), float(bar.get("volume", 0.0) or 0.0),
                       None if spread is None else tuple(float(x) for x in spread))
        raise TypeError(f"a bar must be a Bar, a one-row Bars or a mapping, got {type(bar).__name__}")

    @staticmethod
    def rows(bars: Bars) -> list["Bar"]:
        """Every bar of ``bars``, in order."""
        t = bars.time.astype("datetime64[ns]").astype(np.int64)
        spread = [None] * len(bars) if bars.spread is None else [tuple(float(x) for x in r) for r in bars.spread]
        return [Bar(int(t[i]), float(bars.open[i]), float(bars.high[i]), float(bars.low[i]), float(bars.close[i]),
                    float(bars.volume[i]), spread[i]) for i in range(len(bars))]

    def check(self) -> None:
        """Raise ValueError naming the bar's time and the bad value."""
        where = f"bar {pd.Timestamp(self.time_ns)}"
        prices = {"open": self.open, "high": self.high, "low": self.low, "close": self.close}
        for name, v in prices.items():
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{where}: {name} {v} must be a finite price > 0")
        if self.high < max(self.open, self.close) or self.low > min(self.open, self.close):
            raise ValueError(f"{where}: high {self.high} and low {self.low} must enclose open {self.open} and "
                             f"close {self.close}")
        if not (math.isfinite(self.volume) and self.volume >= 0):
            raise ValueError(f"{where}: volume {self.volume} must be a finite number >= 0")
        if self.spread is not None and (len(self.spread) != 4 or not all(math.isfinite(s) and s >= 0
                                                                          for s in self.spread)):
            raise ValueError(f"{where}: spread {self.spread} must be four finite numbers >= 0")


def time_ns(value: Any) -> int:
    """Nanoseconds since the epoch (UTC) of an int (ns), ISO string, datetime, numpy or pandas time."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.as_unit("ns").value)


@dataclass
class AccountState:
    """The account as the agent sees it. ``position``: signed units of the base currency;
    ``entry_price``: the average fill price of the open position (a broker's average price);
    ``time_in_position``: bars the position has been held (None: counted by the streaming agent, 0 in
    ``act``); ``last_target``: the previous decision's target in units (None: the streaming agent's
    own, 0 in ``act``); ``unrealised_pnl``: in account currency (None: position x (close - entry)
    at the bar's close, converted as the env does)."""

    position: float = 0.0
    entry_price: float = 0.0
    time_in_position: float | None = None
    last_target: float | None = None
    unrealised_pnl: float | None = None


@dataclass(frozen=True)
class Decision:
    """The agent's answer on one closed bar.

    ``ready``: the observation windows are full (before that the agent does not trade: target 0 and
    ``action`` None). ``target``: the target position as a fraction of ``max_position`` (the level,
    or the clipped continuous action); ``target_units``: in base-currency units, what the env orders
    (lot rounding and the leverage cap apply at the fill). ``position``/``equity``: the account after
    this bar's fills (``equity`` is None for an external account). ``params``: the policy's action
    logits (discrete) or mean and log-std (continuous)."""

    time_ns: int
    ready: bool
    action: int | float | None
    target: float
    target_units: float
    position: float
    equity: float | None
    params: tuple[float, ...] = ()


# ----------------------------------------------------------------------------------------------
# the agent
# ----------------------------------------------------------------------------------------------
class Agent:
    """A trained FX policy with everything it needs to see the market as in training. Build it with
    :meth:`load` from a checkpoint (the network runs eagerly in torch) or from an exported artifact
    (``.onnx`` through onnxruntime, ``.pt2`` through ``torch.export.load``)."""

    def __init__(self, fx: FxEnvConfig, bar_ns: int, context: TradingContext, *, cfg: Any = None,
                 policy: torch.nn.Module | None = None, obs_normalizer: ObsNormalizer | None = None,
                 feature_norm: FeatureNorm | None = None, artifact: Any = None, source: str = "<memory>",
                 global_step: int = 0, device: str | torch.device = "cpu") -> None:
        if (policy is None) == (artifact is None):
            raise ValueError("an Agent runs either a policy network or an exported artifact")
        if policy is not None and feature_norm is None and fx.obs_mode != "price":
            raise ValueError("full observation mode needs the checkpoint's feature normalisation")
        self.cfg, self.fx, self.policy, self.artifact = cfg, fx, policy, artifact
        self.obs_normalizer, self.feature_norm = obs_normalizer, feature_norm
        self.bar_ns, self.context, self.source, self.global_step = int(bar_ns), context, source, int(global_step)
        self.device = torch.device(device)
        self.observation_space = observation_space(fx)
        self.action_space = action_space(fx)
        self.levels = torch.tensor(fx.position_levels, dtype=torch.float64)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu", swap_data: str | None = None,
             conversion_data: str | None = None) -> "Agent":
        """The agent of a checkpoint file, or of an artifact written by ``python -m engine.export``
        (``.onnx``/``.pt2``), from the file alone: the training data and config files are not needed.

        A checkpoint's config class must be importable (installing FxAI provides it) and it must carry
        its ``env_spec`` (checkpoints since the real-data change do). Only a policy trained with a
        swap schedule (``--fx.swap-data``) or a conversion series (``--fx.conversion-data``) needs that
        file for its account: pass it here when it moved. Raises
        :class:`~engine.checkpoint.CheckpointError` / ValueError naming the file and what is wrong."""
        if Path(path).suffix.lower() in (".onnx", ".pt2"):
            artifact = load_artifact(path)
            spec = artifact.spec
            fx, context = _trading_setup(artifact.fx, spec["pair"], spec["pip"], path, swap_data, conversion_data)
            return cls(fx, artifact.bar_ns, context, artifact=artifact, source=str(path),
                       global_step=int(spec.get("global_step", 0)))
        ckpt = read_checkpoint(path)
        cfg = load_config(ckpt, path)
        if getattr(cfg, "env", None) != "fx" or not hasattr(cfg, "fx"):
            raise CheckpointError(f"checkpoint {path} was trained on env {getattr(cfg, 'env', None)!r}; the FX agent "
                                  f"needs an FX checkpoint (--env fx)")
        spec = ckpt.get("env_spec")
        if not spec:
            raise CheckpointError(f"checkpoint {path} carries no env_spec (written by an older FxAI): it cannot be "
                                  f"used without its training data; backtest it with engine.backtest or retrain")
        fx, context = _trading_setup(cfg.fx, spec["pair"], spec["pip"], path, swap_data, conversion_data)
        feature_norm = norm_from_spec(spec)
        if feature_norm is None and fx.obs_mode != "price":
            raise CheckpointError(f"checkpoint {path} carries no feature normalisation")
        obs_space, act_space = observation_space(fx), action_space(fx)
        meta = ckpt.get("meta", {})
        for what, ours in (("observation_space", obs_space), ("action_space", act_space)):
            if meta.get(what) not in (None, repr(ours)):
                raise CheckpointError(f"checkpoint {path}: its {what} {meta[what]} is not the one its config "
                                      f"describes ({ours!r})")
        policy = build_policy(cfg, obs_space, act_space).to(device)
        try:
            policy.load_state_dict(ckpt["policy"])
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint {path}: policy weights do not fit {cfg.policy}: {exc}") from exc
        policy.eval()
        normalizer = None
        if ckpt.get("obs_norm") is not None:
            example = {key: torch.zeros((1, *space.shape)) for key, space in obs_space.spaces.items()}
            normalizer = ObsNormalizer(example)
            normalizer.load_state_dict(ckpt["obs_norm"])
        return cls(fx, int(spec["bar_ns"]), context, cfg=cfg, policy=policy, obs_normalizer=normalizer,
                   feature_norm=feature_norm, source=str(path), global_step=int(ckpt.get("global_step", 0)),
                   device=device)

    # ------------------------------------------------------------------ what it needs
    @property
    def warmup_bars(self) -> int:
        """Bars of history that fill every observation window (an upper bound: where weekends and gaps
        fall can make it fewer; each decision says whether the windows are full)."""
        return history_bars(self.fx)

    @property
    def max_position(self) -> float:
        return float(self.fx.max_position)

    def bar_arrays(self, bars: Bars) -> dict[str, torch.Tensor]:
        """The env's per-bar arrays of the newest bar (spreads, rollovers, swap and conversion rates)."""
        return bar_arrays(bars, self.fx, self.context, self.bar_ns)

    def account_row(self, account: AccountState, arrays: dict[str, torch.Tensor]) -> np.ndarray:
        """[4] float64: the account as the policy takes it (position, unrealised P&L in account currency,
        bars held, last target; None counts as 0), at the close of the bar of ``arrays`` (:meth:`bar_arrays`)."""
        if account.unrealised_pnl is not None:
            unrealised = float(account.unrealised_pnl)
        else:
            close = arrays["close"]
            rate = 1.0 / close if self.context.conversion == "base" else arrays["rate_close"]
            position = torch.tensor([float(account.position)], dtype=torch.float64)
            unrealised = float((position * (close - float(account.entry_price)) * rate)[0])  # Accounts.unrealised_pnl
        return np.array([float(account.position), unrealised, float(account.time_in_position or 0.0),
                         float(account.last_target or 0.0)])

    def observation(self, windows: dict[str, np.ndarray], accounts: np.ndarray) -> dict[str, torch.Tensor]:
        """The env's observation batch from raw windows (:func:`envs.fx.windows.raw_windows`) and account rows
        [B, 4] (:meth:`account_row`)."""
        obs = {key: torch.from_numpy(value).to(self.device)
               for key, value in normalise_windows(windows, self.feature_norm, self.fx).items()}
        a = torch.from_numpy(np.ascontiguousarray(accounts, dtype=np.float64).reshape(-1, 4))
        obs["portfolio"] = portfolio_vector(a[:, 0], a[:, 1], a[:, 2], a[:, 3], self.fx).to(self.device)
        return obs

    @torch.no_grad()
    def decide(self, windows: dict[str, np.ndarray], accounts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(params [B, D], actions [B], target units [B] float64) from raw windows and account rows, as the
        backtest computes them: the feature normalisation, the engine's observation normaliser, the
        network, the mode of its distribution and the env's mapping of an action to a target (or all of
        it inside an exported artifact)."""
        if self.artifact is not None:
            out = self.artifact(windows, accounts)
            return out["params"], out["action"].reshape(len(out["target_units"]), -1)[:, 0], out["target_units"]
        obs = self.observation(windows, accounts)
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer.normalize(obs)
        params, _ = self.policy(obs)
        action = deterministic_action(self.action_space, params).cpu()
        if self.fx.action_mode == "discrete":
            target = self.levels[action.reshape(-1).to(torch.int64)] * self.fx.max_position
        else:
            a = action.reshape(-1).to(torch.float64)
            target = torch.nan_to_num(a, nan=0.0).clamp(-1.0, 1.0) * self.fx.max_position
        return params.float().cpu().numpy(), action.reshape(len(target), -1)[:, 0].numpy(), target.numpy()

    def _decision(self, t_ns: int, params: np.ndarray, action: np.ndarray, target: np.ndarray, i: int,
                  position: float, equity: float | None) -> Decision:
        value: int | float = int(action[i]) if self.fx.action_mode == "discrete" else float(action[i])
        units = float(target[i])
        return Decision(t_ns, True, value, units / self.fx.max_position, units, position, equity,
                        tuple(float(x) for x in params[i]))

    # ------------------------------------------------------------------ batch use
    def act(self, history: Bars | Sequence[Bars], account: AccountState | Sequence[AccountState] | None = None
            ) -> Decision | list[Decision]:
        """The decision on the newest bar of ``history`` for ``account`` (flat when None); lists of
        histories and accounts give a list of decisions from one batch through the network. Raises
        ValueError when a history is too short to fill the observation windows."""
        single = isinstance(history, Bars)
        histories = [history] if single else list(history)
        if account is None or isinstance(account, AccountState):
            accounts = [account or AccountState()] * len(histories)
        else:
            accounts = list(account)
        if len(accounts) != len(histories) or not histories:
            raise ValueError(f"act: {len(histories)} histories and {len(accounts)} account states (need as many, >= 1)")
        windows, rows, times = [], [], []
        for i, (bars, acc) in enumerate(zip(histories, accounts)):
            w = raw_windows(bars, self.fx, self.bar_ns)
            if not windows_ready(w)[0]:
                raise ValueError(f"act: history {i} ({len(bars)} bars up to {bars.time[-1]}) does not fill the "
                                 f"observation windows; give about {self.warmup_bars} bars")
            windows.append(w)
            rows.append(self.account_row(acc, self.bar_arrays(bars)))
            times.append(int(bars.time.astype("datetime64[ns]").astype(np.int64)[-1]))
        batch = {key: np.concatenate([w[key] for w in windows]) for key in windows[0]}
        params, action, target = self.decide(batch, np.stack(rows))
        out = [self._decision(times[i], params, action, target, i, float(accounts[i].position), None)
               for i in range(len(histories))]
        return out[0] if single else out

    def stream(self, history: Bars | None = None, account: AccountMode = "sim") -> "StreamingAgent":
        """A :class:`StreamingAgent` warmed up on ``history`` (bars before the first decision; none needed)."""
        return StreamingAgent(self, history, account)


def _trading_setup(fx: FxEnvConfig, pair: str, pip: float, path: Any, swap_data: str | None,
                   conversion_data: str | None) -> tuple[FxEnvConfig, TradingContext]:
    """The config with the pair and pip the policy was trained on (no data file) and its trading context."""
    fx = dataclasses.replace(fx, pair=pair, pip_size=float(pip), data=None, swap_data=swap_data or fx.swap_data,
                             conversion_data=conversion_data or fx.conversion_data)
    for name in ("swap_data", "conversion_data"):
        file = getattr(fx, name)
        if file is not None and not Path(file).is_file():
            raise ValueError(f"{path} was trained with --fx.{name.replace('_', '-')} {file}, which is not here; "
                             f"pass Agent.load(..., {name}=FILE)")
    conversion = load_bars(fx.conversion_data) if fx.conversion_data is not None else None
    return fx, trading_context(fx, conversion)


# ----------------------------------------------------------------------------------------------
# one bar at a time
# ----------------------------------------------------------------------------------------------
class _History:
    """The last bars, in preallocated arrays (appending is O(1); older bars than needed are dropped)."""

    def __init__(self, keep: int) -> None:
        self.keep = int(keep)
        cap = 2 * self.keep + 16
        self.time = np.zeros(cap, dtype=np.int64)
        self.prices = np.zeros((cap, 5), dtype=np.float64)  # open, high, low, close, volume
        self.spread: np.ndarray | None = None
        self.n = 0
        self.total = 0

    def __len__(self) -> int:
        return self.n

    @property
    def last_time(self) -> int | None:
        return int(self.time[self.n - 1]) if self.n else None

    def append(self, bar: Bar) -> None:
        if self.total and (bar.spread is None) != (self.spread is None):
            raise ValueError(f"bar {pd.Timestamp(bar.time_ns)}: every bar must carry a spread or none does "
                             f"(a feed with bid/ask columns gives one; the earlier bars {'did' if self.spread is not None else 'did not'})")
        if self.n == len(self.time):  # full: keep the newest `keep - 1` bars
            drop = self.n - (self.keep - 1)
            self.time[: self.n - drop] = self.time[drop: self.n]
            self.prices[: self.n - drop] = self.prices[drop: self.n]
            if self.spread is not None:
                self.spread[: self.n - drop] = self.spread[drop: self.n]
            self.n -= drop
        if bar.spread is not None and self.spread is None:
            self.spread = np.zeros((len(self.time), 4), dtype=np.float64)
        self.time[self.n] = bar.time_ns
        self.prices[self.n] = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        if self.spread is not None:
            self.spread[self.n] = bar.spread
        self.n += 1
        self.total += 1

    def bars(self) -> Bars:
        """The last ``keep`` bars (views, not copies)."""
        lo = max(0, self.n - self.keep)
        p = self.prices[lo: self.n]
        spread = None if self.spread is None else self.spread[lo: self.n]
        side = "bidask" if spread is not None else "mid"
        return Bars(self.time[lo: self.n].view("datetime64[ns]"), p[:, 0], p[:, 1], p[:, 2], p[:, 3], p[:, 4],
                    "<stream>", side, spread)

    def state_dict(self) -> dict[str, Any]:
        lo = max(0, self.n - self.keep)
        return {"time": torch.from_numpy(self.time[lo: self.n].copy()),
                "prices": torch.from_numpy(self.prices[lo: self.n].copy()),
                "spread": None if self.spread is None else torch.from_numpy(self.spread[lo: self.n].copy()),
                "total": self.total}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        time, prices = state["time"].numpy(), state["prices"].numpy()
        self.n = len(time)
        self.time[: self.n], self.prices[: self.n] = time, prices
        self.spread = None
        if state["spread"] is not None:
            self.spread = np.zeros((len(self.time), 4), dtype=np.float64)
            self.spread[: self.n] = state["spread"].numpy()
        self.total = int(state["total"])


class StreamingAgent:
    """An :class:`Agent` fed one closed bar at a time (:meth:`on_bar`), keeping its rolling history and its
    account (``account="sim"``: its own, simulated with the env's execution model; ``"external"``: the
    caller passes the broker's position and average price with every bar)."""

    def __init__(self, agent: Agent, history: Bars | None = None, account: AccountMode = "sim") -> None:
        if account not in ("sim", "external"):
            raise ValueError(f"account must be 'sim' or 'external', got {account!r}")
        self.agent, self.mode = agent, account
        self.history = _History(agent.warmup_bars)
        self.sim = SimAccount(agent.fx, agent.context, agent.bar_ns) if account == "sim" else None
        self.trading = False
        """True once the first decision was made (the simulated account trades from then on)."""
        self.time_in_position = 0.0
        self.last_target = 0.0
        self.position = 0.0
        self.decisions = 0
        if history is not None:
            self.extend_history(history)

    @property
    def warmup_bars(self) -> int:
        """Bars of history the windows need at most (see :attr:`Agent.warmup_bars`)."""
        return self.agent.warmup_bars

    def extend_history(self, bars: Bars | Sequence[Any]) -> None:
        """Add bars (a Bars, or a sequence of anything :meth:`Bar.of` takes) as history only (warm-up: no
        decisions, no trading); before the first :meth:`on_bar`."""
        if self.trading:
            raise RuntimeError("extend_history: the agent is already trading; feed new bars with on_bar")
        for bar in Bar.rows(bars) if isinstance(bars, Bars) else [Bar.of(b) for b in bars]:
            self._append(bar)

    def restore(self, history: Bars, position: float = 0.0, time_in_position: float = 0.0, last_target: float = 0.0,
                trading: bool = False, decisions: int = 0) -> None:
        """Continue an external-account stream from a journal: the bars it has seen (the newest last; the last
        :attr:`warmup_bars` are enough) and its counters after the last of them."""
        if self.mode != "external":
            raise ValueError("restore rebuilds an external-account stream; a simulated one restores with "
                             "load_state_dict")
        self.history = _History(self.agent.warmup_bars)
        self.trading = False
        self.extend_history(history)
        self.position, self.time_in_position = float(position), float(time_in_position)
        self.last_target, self.trading, self.decisions = float(last_target), bool(trading), int(decisions)

    def _append(self, bar: Bar) -> None:
        bar.check()
        last = self.history.last_time
        if last is not None and bar.time_ns <= last:
            raise ValueError(f"bar {pd.Timestamp(bar.time_ns)} is not after the previous bar {pd.Timestamp(last)} "
                             f"(bars must arrive in time order, each once)")
        self.history.append(bar)

    def on_bar(self, bar: Any, account: AccountState | None = None) -> Decision:
        """Take the newest closed bar (a :class:`Bar`, a mapping or a one-row Bars) and decide on its close.

        With the simulated account, the order decided on the previous bar fills at this bar's open first
        (``latency_bars`` later in general), exactly as in the env. With ``account="external"``, pass
        ``account``: the position and average price after this bar's fills."""
        bar = Bar.of(bar)
        if self.mode == "external" and account is None:
            raise ValueError("on_bar: an external account needs the account state (position, entry price) with every bar")
        self._append(bar)
        agent = self.agent
        bars = self.history.bars()
        arrays = agent.bar_arrays(bars)
        if self.sim is not None:
            if self.trading:
                self.sim.step(arrays)
            seen = AccountState(self.sim.position, self.sim.entry_price, self.sim.time_in_position, self.last_target,
                                float(self.sim.unrealised_pnl(arrays)[0]))
            equity: float | None = self.sim.equity
        else:
            assert account is not None
            new = float(account.position)
            if account.time_in_position is not None:
                held = float(account.time_in_position)
            elif new == 0:
                held = 0.0
            elif self.position * new <= 0:  # opened or flipped at this bar's open: the env resets, then counts it
                held = 1.0
            else:
                held = self.time_in_position + 1.0
            last = self.last_target if account.last_target is None else float(account.last_target)
            seen = AccountState(new, float(account.entry_price), held, last, account.unrealised_pnl)
            equity = None
        self.position, self.time_in_position = seen.position, float(seen.time_in_position)
        windows = raw_windows(bars, agent.fx, agent.bar_ns)
        if not windows_ready(windows)[0]:
            return Decision(bar.time_ns, False, None, 0.0, 0.0, seen.position, equity)
        params, action, target = agent.decide(windows, agent.account_row(seen, arrays)[None])
        decision = agent._decision(bar.time_ns, params, action, target, 0, seen.position, equity)
        if self.sim is not None:
            self.sim.submit(decision.target_units)
        self.trading = True
        self.last_target = decision.target_units
        self.decisions += 1
        return decision

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history.state_dict(), "sim": None if self.sim is None else self.sim.state_dict(),
                "trading": self.trading, "time_in_position": self.time_in_position, "last_target": self.last_target,
                "position": self.position, "decisions": self.decisions, "mode": self.mode}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["mode"] != self.mode:
            raise ValueError(f"streaming agent state is for account={state['mode']!r}, this agent has {self.mode!r}")
        self.history.load_state_dict(state["history"])
        if self.sim is not None:
            self.sim.load_state_dict(state["sim"])
        self.trading = bool(state["trading"])
        self.time_in_position, self.last_target = float(state["time_in_position"]), float(state["last_target"])
        self.position, self.decisions = float(state["position"]), int(state["decisions"])


__all__ = ["AccountMode", "AccountState", "Agent", "Bar", "Decision", "StreamingAgent", "time_ns"]
