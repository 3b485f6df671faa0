"""Backtests: run a policy over a whole data split, compare it with baselines, write a report.

``run_backtest(policy_fn, env)`` drives a 1-env torch vector env (the ``make_fx_eval_env``
contract: ``reset() -> (obs, info)``, ``step(actions) -> (obs, reward, terminated, truncated,
info)`` with info tensors ``time``, ``equity``, ``position``, ``close`` and ``reward/<name>``)
until the episode ends and records a :class:`Trajectory`. ``backtest_report`` runs the policy
and the baselines of :mod:`envs.fx.research.baselines` on fresh envs over the same split and
writes ``report.json`` plus three PNGs. :func:`backtest_checkpoint` is ``python -m engine.backtest``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from engine.files import write_json
from envs.fx.research import metrics, plots, report
from envs.fx.research.baselines import BASELINES, NOT_PLOTTED, BaselineParams, PolicyFn, env_cfg_value, scalar

COST_INFO_KEYS: tuple[str, ...] = ("costs", "cost", "transaction_cost")
"""Info keys read (first one present) as the money cost paid on a step."""
RAW_COST_KEY = "reward_raw/transaction_cost"
"""Otherwise the cost is ``-info[RAW_COST_KEY] x E0`` (the FX env reports -cost / initial equity there)."""


@dataclass
class Trajectory:
    """One backtest, one row per env step (numpy arrays of length ``n_steps``).

    ``position[t]``/``equity[t]`` are the position held and the equity *after* step t
    (``equity[t] / equity[t-1]`` is what holding ``position[t]`` over step t earned, costs
    included). The state before the first step is kept apart in ``initial_*``.
    """

    time: np.ndarray
    """Bar time of each step's info, int64 ns since the epoch (UTC)."""
    close: np.ndarray
    """Close price reported with each step."""
    equity: np.ndarray
    """Account equity after each step, in account currency."""
    position: np.ndarray
    """Position held after each step as a fraction of the env's ``max_position`` (1.0 = full long)."""
    reward: np.ndarray
    """Reward of each step."""
    costs: np.ndarray
    """Money cost (spread + commission + slippage) paid on each step, in account currency;
    zeros when the env reports none (see ``COST_INFO_KEYS``)."""
    action: np.ndarray
    """Action sent on each step (level index or target), shape [n_steps, ...]."""
    swap: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Swap credited (negative: charged) on each step, in account currency (zeros when the env reports none)."""
    components: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-step reward components, keyed by name without the ``reward/`` prefix."""
    initial_equity: float = math.nan
    """Equity before the first step."""
    initial_time: int | None = None
    """Bar time at reset (int64 ns), when the env reported it."""
    initial_close: float | None = None
    """Close at reset, when the env reported it."""
    terminated: bool = False
    """True when the episode ended by termination (e.g. margin call) rather than the end of the split."""

    def __len__(self) -> int:
        return int(self.equity.shape[0])

    @property
    def equity_curve(self) -> np.ndarray:
        """``n_steps + 1`` equity values: the initial equity, then after each step."""
        return np.concatenate([[self.initial_equity], self.equity])

    @property
    def curve_time(self) -> np.ndarray:
        """Times matching :attr:`equity_curve` (int64 ns); the reset time is extrapolated if unknown."""
        if self.initial_time is not None:
            first = self.initial_time
        elif len(self) > 1:
            first = int(self.time[0] - (self.time[1] - self.time[0]))
        else:
            first = int(self.time[0]) - 1 if len(self) else 0
        return np.concatenate([[first], self.time]).astype(np.int64)

    @property
    def curve_position(self) -> np.ndarray:
        """Positions matching :attr:`equity_curve`: flat before the first step."""
        return np.concatenate([[0.0], self.position])

    @property
    def curve_close(self) -> np.ndarray:
        """Closes matching :attr:`equity_curve` (the first close repeated if the reset close is unknown)."""
        first = self.initial_close if self.initial_close is not None else (self.close[0] if len(self) else math.nan)
        return np.concatenate([[first], self.close])


def _info_value(info: Mapping[str, Any], key: str) -> float | None:
    return scalar(info[key]) if key in info else None


def _scalar_or(info: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    return scalar(info[key]) if key in info else default


def position_scale(env: Any) -> float:
    """Units of one full position: ``max_position`` of the env (or its cfg), else 1.0."""
    scale = env_cfg_value(env, "max_position")
    return float(scale) if scale else 1.0


def run_backtest(policy_fn: PolicyFn, env: Any, max_steps: int | None = None) -> Trajectory:
    """Run ``policy_fn`` on the 1-env vector ``env`` from ``reset()`` until the episode ends.

    ``policy_fn(obs, info)`` gets the latest observation and info (the reset info first) and
    returns the actions tensor for ``env.step``. Runs without gradients. ``max_steps`` stops
    early (for tests and previews).
    """
    scale = position_scale(env)
    e0 = env_cfg_value(env, "initial_equity")
    obs, info = env.reset()
    initial_equity = _info_value(info, "equity")
    initial_time = _info_value(info, "time")
    initial_close = _info_value(info, "close")
    rows: dict[str, list] = {k: [] for k in ("time", "close", "equity", "position", "reward", "costs", "action",
                                             "swap")}
    components: dict[str, list[float]] = {}
    terminated = False
    step = 0
    with torch.no_grad():
        while max_steps is None or step < max_steps:
            action = policy_fn(obs, info)
            obs, reward, term, trunc, info = env.step(action)
            step += 1
            for key in ("equity", "position", "close"):
                if key not in info:
                    raise KeyError(f"env step info has no {key!r} entry (got {sorted(info)}); "
                                   f"run_backtest needs time, equity, position and close")
            rows["time"].append(int(info["time"].reshape(-1)[0]) if "time" in info else step)
            rows["close"].append(scalar(info["close"]))
            rows["equity"].append(scalar(info["equity"]))
            rows["position"].append(scalar(info["position"]) / scale)
            rows["reward"].append(scalar(reward))
            cost_key = next((k for k in COST_INFO_KEYS if k in info), None)
            if cost_key is not None:
                rows["costs"].append(scalar(info[cost_key]))
            elif RAW_COST_KEY in info:
                rows["costs"].append(-scalar(info[RAW_COST_KEY]) * (e0 if e0 is not None else initial_equity or 0.0))
            else:
                rows["costs"].append(0.0)
            rows["action"].append(np.asarray(action.detach().cpu() if isinstance(action, torch.Tensor) else action)
                                  .reshape(-1))
            e0_money = e0 if e0 is not None else initial_equity or 0.0
            rows["swap"].append(_scalar_or(info, "reward_raw/swap") * e0_money)
            for key, value in info.items():
                if key.startswith("reward/"):
                    components.setdefault(key[len("reward/"):], [0.0] * (step - 1)).append(scalar(value))
            for values in components.values():  # a component missing on some step counts as 0
                values.extend([0.0] * (step - len(values)))
            if bool(scalar(term)) or bool(scalar(trunc)):
                terminated = bool(scalar(term))
                break
    if step == 0:
        raise ValueError("backtest ran no steps (max_steps=0?)")
    equity = np.asarray(rows["equity"], dtype=np.float64)
    if initial_equity is None:
        # the env did not report it at reset: fall back to the first step's equity (first step's P&L is lost)
        initial_equity = float(equity[0])
    return Trajectory(
        time=np.asarray(rows["time"], dtype=np.int64),
        close=np.asarray(rows["close"], dtype=np.float64),
        equity=equity,
        position=np.asarray(rows["position"], dtype=np.float64),
        reward=np.asarray(rows["reward"], dtype=np.float64),
        costs=np.asarray(rows["costs"], dtype=np.float64),
        action=np.stack(rows["action"]),
        components={k: np.asarray(v, dtype=np.float64) for k, v in components.items()},
        swap=np.asarray(rows["swap"], dtype=np.float64),
        initial_equity=float(initial_equity),
        initial_time=int(initial_time) if initial_time is not None else None,
        initial_close=initial_close,
        terminated=terminated,
    )


def _slice_obs(obs: Any, rows: torch.Tensor) -> Any:
    return {k: v[rows] for k, v in obs.items()} if isinstance(obs, dict) else obs[rows]


_INFO_FOR_POLICIES = ("close", "time", "equity", "position")


def run_backtests(policies: list[PolicyFn], env: Any) -> list[Trajectory]:
    """Backtest ``policies[i]`` on row i of the vector ``env`` (``env.num_envs == len(policies)``), all rows in
    lockstep from ``reset()`` until each row's episode ends: one pass for an agent, its baselines and its cost
    multiples. Rows that share a policy object are called together with their batch of observations; a
    baseline (one object per row) gets its row as a batch of one. Equal to :func:`run_backtest` row by row."""
    n = env.num_envs
    if len(policies) != n:
        raise ValueError(f"{len(policies)} policies for an env of {n} rows")
    groups: dict[int, tuple[PolicyFn, list[int]]] = {}
    for i, p in enumerate(policies):
        groups.setdefault(id(p), (p, []))[1].append(i)
    index = [(p, torch.tensor(rows, device=getattr(env, "device", "cpu"))) for p, rows in groups.values()]
    scale = position_scale(env)
    e0 = env_cfg_value(env, "initial_equity")
    obs, info = env.reset()
    initial = {k: info[k].detach().cpu().clone() for k in ("equity", "time", "close")}
    rec: dict[str, list[torch.Tensor]] = {k: [] for k in ("time", "close", "equity", "position", "reward", "costs",
                                                          "swap", "action")}
    components: dict[str, list[torch.Tensor]] = {}
    alive = torch.ones(n, dtype=torch.bool)
    end = torch.full((n,), -1, dtype=torch.int64)
    stopped = torch.zeros(n, dtype=torch.bool)
    step = 0
    with torch.no_grad():
        while bool(alive.any()):
            actions = None
            for policy, rows in index:
                sub_info = {k: info[k][rows] for k in _INFO_FOR_POLICIES if k in info}
                a = torch.as_tensor(policy(_slice_obs(obs, rows), sub_info))
                a = a.reshape(len(rows), *a.shape[1:]) if a.dim() else a.reshape(1)
                if actions is None:
                    actions = torch.zeros((n, *a.shape[1:]), dtype=a.dtype, device=a.device)
                actions[rows] = a
            obs, reward, term, trunc, info = env.step(actions)
            rec["time"].append(info["time"].cpu())
            rec["close"].append(info["close"].cpu())
            rec["equity"].append(info["equity"].cpu())
            rec["position"].append(info["position"].cpu() / scale)
            rec["reward"].append(info.get("reward64", reward).cpu())
            rec["costs"].append(info["costs"].cpu())
            rec["swap"].append(info["reward_raw/swap"].cpu() * e0)
            rec["action"].append(actions.detach().cpu().reshape(n, -1))
            for key, value in info.items():
                if key.startswith("reward/"):
                    components.setdefault(key[len("reward/"):], []).append(value.cpu())
            done = (term | trunc).cpu() & alive
            end[done] = step
            stopped |= term.cpu() & done
            alive &= ~done
            step += 1
    stack = {k: torch.stack(v).double().numpy() if k != "time" and k != "action" else torch.stack(v).numpy()
             for k, v in rec.items()}
    comps = {k: torch.stack(v).double().numpy() for k, v in components.items()}
    out = []
    for i in range(n):
        m = int(end[i]) + 1
        out.append(Trajectory(
            time=stack["time"][:m, i].astype(np.int64), close=stack["close"][:m, i], equity=stack["equity"][:m, i],
            position=stack["position"][:m, i], reward=stack["reward"][:m, i], costs=stack["costs"][:m, i],
            action=stack["action"][:m, i], components={k: v[:m, i] for k, v in comps.items()},
            swap=stack["swap"][:m, i], initial_equity=float(initial["equity"][i]),
            initial_time=int(initial["time"][i]), initial_close=float(initial["close"][i]),
            terminated=bool(stopped[i])))
    return out


def _iso(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]")) + "Z"


def _takes(env_factory: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(env_factory).parameters
    except (TypeError, ValueError):
        return False


def run_baselines(env_factory: Callable[..., Any], params: BaselineParams | None = None,
                  expect_len: int | None = None) -> tuple[dict[str, Trajectory], dict[str, str]]:
    """Every baseline on a fresh env from ``env_factory``: (trajectories, skipped name -> why)."""
    baselines: dict[str, Trajectory] = {}
    skipped: dict[str, str] = {}
    params = params or BaselineParams()
    for name, make in BASELINES.items():
        b_env = env_factory()
        try:
            policy = make(b_env, params.resolved(b_env))
        except ValueError as exc:  # e.g. no 0 among the position levels: "flat" is not expressible
            warnings.warn(f"baseline {name} skipped: {exc}", stacklevel=2)
            skipped[name] = str(exc)
            continue
        baselines[name] = run_backtest(policy, b_env)
        if expect_len is not None and len(baselines[name]) != expect_len and not baselines[name].terminated:
            raise RuntimeError(f"baseline {name} ran {len(baselines[name])} steps but the policy ran {expect_len}: "
                               f"env_factory must return envs over the same split")
    return baselines, skipped


def baseline_policies(env: Any, params: BaselineParams) -> tuple[dict[str, PolicyFn], dict[str, str]]:
    """Fresh baseline policies for ``env`` and the ones its action space cannot express (name -> why)."""
    made, skipped = {}, {}
    for name, make in BASELINES.items():
        try:
            made[name] = make(env, params.resolved(env))
        except ValueError as exc:
            warnings.warn(f"baseline {name} skipped: {exc}", stacklevel=2)
            skipped[name] = str(exc)
    return made, skipped


def backtest_batch(agent_policies: Mapping[Any, PolicyFn], env_factory: Callable[..., Any],
                   params: BaselineParams, multiples: tuple[float, ...] = ()) -> tuple[
                       dict[tuple[Any, float], Trajectory], dict[str, Trajectory], dict[str, str]]:
    """One pass of one vector env: every agent policy at cost multiple 1 and at ``multiples``, and every
    baseline at 1. Returns ({(agent key, multiple): trajectory}, {baseline: trajectory}, skipped)."""
    probe = env_factory(num_envs=1)
    base, skipped = baseline_policies(probe, params)
    scales = sorted({1.0, *multiples})
    rows: list[tuple[str, Any, float]] = [("agent", k, m) for k in agent_policies for m in scales]
    rows += [("baseline", name, 1.0) for name in base]
    env = env_factory(num_envs=len(rows))
    env.set_cost_scale([m for _, _, m in rows])
    base = {name: make(env, params.resolved(env)) for name, make in BASELINES.items() if name in base}
    policies = [agent_policies[k] if kind == "agent" else base[k] for kind, k, _ in rows]
    trajs = run_backtests(policies, env)
    agents = {(k, m): t for (kind, k, m), t in zip(rows, trajs) if kind == "agent"}
    baselines = {k: t for (kind, k, _), t in zip(rows, trajs) if kind == "baseline"}
    return agents, baselines, skipped


def backtest_report(policy_fn: PolicyFn, env_factory: Callable[..., Any], out_dir: str | os.PathLike,
                    periods_per_year: float | None = None, split: str | None = None,
                    momentum_lookback: int | None = None, label: str = "agent", n_trials: int = 1,
                    sr_variance: float | None = None, extra: Mapping[str, Any] | None = None,
                    baseline_params: BaselineParams | None = None) -> dict[str, Any]:
    """Backtest ``policy_fn`` and the baselines on fresh envs from ``env_factory``; write the report.

    Writes into ``out_dir``: ``report.json`` (:mod:`envs.fx.research.report` lists its keys: verdict,
    Sharpe with its bootstrap interval, PSR, DSR with ``n_trials``, the baselines, cost sensitivity),
    ``bars.csv`` (per-bar data of the agent and every baseline), ``equity_drawdown.png``,
    ``positions.png``, ``trade_returns.png``, ``bootstrap_sharpe.png`` and ``cost_sensitivity.png``.
    When ``env_factory(num_envs=N)`` builds an FX env of N accounts, the agent, the baselines and the
    agent at the cost multiples of ``report.COST_MULTIPLES`` run in one batched pass; with a plain
    ``env_factory()`` they run one after another and there is no cost table. Returns the dict as
    written. ``periods_per_year`` defaults to the bar times'; ``split`` to the env's.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = baseline_params or BaselineParams(momentum_lookback=momentum_lookback)
    costs: dict[float, Trajectory] = {}
    env = env_factory()
    split = split if split is not None else getattr(env, "split", None)
    if _takes(env_factory, "num_envs") and callable(getattr(env, "set_cost_scale", None)):
        grid = tuple(sorted(set(report.COST_MULTIPLES) | set(report.BREAK_EVEN_GRID)))
        agents, baselines, skipped = backtest_batch({"agent": policy_fn}, env_factory, params, grid)
        traj = agents["agent", 1.0]
        costs = {m: t for (_, m), t in agents.items()}
    else:
        traj = run_backtest(policy_fn, env)
        baselines, skipped = run_baselines(env_factory, params, None if traj.terminated else len(traj))
    times = traj.curve_time
    if periods_per_year is None:
        periods_per_year = metrics.infer_periods_per_year(times)
    analysis = report.analyse(traj, baselines, periods_per_year, n_trials, sr_variance)
    result: dict[str, Any] = {
        "split": split,
        **{k: v for k, v in analysis.items() if not k.startswith("_")},
        "bars": len(traj),
        "start": _iso(times[0]),
        "end": _iso(times[-1]),
        "periods_per_year": float(periods_per_year),
        "terminated_early": traj.terminated,
        **(dict(extra) if extra else {}),
    }
    if costs:
        result.update(report.cost_sensitivity(costs.__getitem__, periods_per_year))
    if skipped:
        result["baselines_skipped"] = skipped
    result = report.json_safe(result)
    write_json(out / "report.json", result)
    report.write_bars(out / "bars.csv", {label: traj, **baselines})

    where = f" ({split} split)" if split else ""
    n = len(traj) + 1
    curves = {label: traj.equity_curve}
    for name, t in baselines.items():
        if name in NOT_PLOTTED:
            continue
        curve = t.equity_curve
        if curve.size < n:  # a baseline that was liquidated early stays at its last equity
            curve = np.concatenate([curve, np.full(n - curve.size, curve[-1])])
        curves[name.replace("_", " ")] = curve[:n]
    plots.plot_equity_drawdown(curves, out / "equity_drawdown.png", times=times,
                               title=f"Equity and drawdown{where}")
    plots.plot_positions(traj.curve_close, traj.curve_position, out / "positions.png", times=times,
                         title=f"{label.capitalize()} positions over price{where}")
    plots.plot_trade_returns(metrics.trade_returns(traj.position, traj.equity_curve), out / "trade_returns.png",
                             title=f"{label.capitalize()} trade returns{where}")
    plots.plot_bootstrap(analysis["_bootstrap_sharpes"], result["sharpe"], tuple(result["sharpe_ci"]),
                         out / "bootstrap_sharpe.png", title=f"Bootstrap distribution of the Sharpe ratio{where}")
    if "cost_sensitivity_table" in result:
        plots.plot_cost_sensitivity(result["cost_sensitivity_table"], out / "cost_sensitivity.png",
                                    result["break_even_cost_multiple"], title=f"Cost sensitivity{where}")
    return result


def format_summary(result: Mapping[str, Any]) -> str:
    """The text report (see :func:`envs.fx.research.report.format_report`)."""
    return report.format_report(result)


@dataclass
class BacktestArgs:
    """Backtest a trained checkpoint against flat, buy-and-hold, momentum and random-action baselines."""

    RANGES: ClassVar[dict[str, str]] = {"periods_per_year": "(0, 1e9]", "momentum_lookback": "[1, 1e9]",
                                        "zscore_window": "[2, 1e9]", "zscore_entry": "(0, 1000]", "n_trials": "[1, 1e9]"}
    """Allowed values (:mod:`engine.ranges`)."""

    ckpt: Path
    """Checkpoint file written by training (it carries the config and the fitted feature normalisation)."""
    data: str | None = None
    """CSV/Parquet bars to backtest on instead of the checkpoint's data. Nothing is refitted on them: the
    checkpoint's feature normalisation is used."""
    split: Literal["all", "train", "val", "test"] | None = None
    """Which part of the data to run over: a split, or ``all`` (every bar once the observation windows are
    full). Default: ``test``, or ``all`` with --data."""
    out_dir: Path | None = None
    """Where report.json and the PNGs go (default: backtest-<split>/ next to the checkpoint)."""
    periods_per_year: float | None = None
    """Bars per year for annualising (default: inferred from the bar times)."""
    momentum_lookback: int | None = None
    """Bars of price history the momentum baseline looks back over (default: a trading day of bars)."""
    zscore_window: int | None = None
    """Bars of the z-score baseline's mean and deviation (default: the checkpoint's --fx.ma-window)."""
    zscore_entry: float = 1.0
    """Z-score at which the z-score baseline enters (it exits when the z-score crosses zero)."""
    n_trials: int = 1
    """How many configurations were tried to find this checkpoint (seeds, tuning trials): the deflated Sharpe
    ratio corrects for them."""
    device: str = "cpu"
    """Torch device for the policy and env."""
    accept_anomalies: bool = False
    """Backtest on a --data file the data checks flag (big moves, long holes, mixed time zones) anyway, with a
    warning that counts them (see --fx.accept-anomalies of the training commands)."""


def backtest_checkpoint(args: BacktestArgs) -> dict[str, Any]:
    """Load the checkpoint's policy, config and feature normalisation, build the eval env and write the report."""
    from engine import loop
    from engine.checkpoint import read_checkpoint
    from engine.launch import check_out_dir
    from engine.ranges import check_numbers
    from envs.fx import market
    from envs.fx.research.spec import norm_from_spec

    check_numbers(args)
    if not Path(args.ckpt).is_file():
        raise FileNotFoundError(f"--ckpt: checkpoint {args.ckpt} does not exist")
    if args.data is not None and not Path(args.data).is_file():
        raise FileNotFoundError(f"--data: data file {args.data} does not exist")
    check_device(args.device)
    ckpt = read_checkpoint(args.ckpt)
    cfg = loop.load_config(ckpt, args.ckpt)
    if getattr(cfg, "env", "fx") != "fx":
        raise ValueError(f"--ckpt: {args.ckpt} was trained on env {cfg.env!r}; backtests need the FX env (--env fx)")
    split = args.split or ("all" if args.data is not None else "test")
    fx = cfg.fx if args.data is None else dataclasses.replace(cfg.fx, data=args.data, pair=cfg.fx.pair)
    if args.accept_anomalies:
        fx = dataclasses.replace(fx, accept_anomalies=True)
    norm = norm_from_spec(ckpt.get("env_spec"))
    if norm is None and fx.obs_mode == "full":
        if args.data is not None:
            raise ValueError(f"--ckpt: {args.ckpt} carries no feature normalisation (an older checkpoint); "
                             f"it can only be backtested on the data it was trained on")
        warnings.warn(f"{args.ckpt} carries no feature normalisation: refitting it on the training split of "
                      f"{fx.data or 'the synthetic market'}", stacklevel=2)
    out_dir = args.out_dir if args.out_dir is not None else Path(args.ckpt).parent / f"backtest-{split}"
    check_out_dir(out_dir)  # an unwritable place fails now, not after the backtest

    def env_factory(num_envs: int = 1) -> Any:
        return market.make_fx_eval_env(fx, split=split, seed=0, device=args.device, norm=norm, num_envs=num_envs)

    _, policy = loop.load_policy(args.ckpt, device=args.device, env=env_factory())
    result = backtest_report(lambda obs, info: policy(obs), env_factory, out_dir,
                             periods_per_year=args.periods_per_year, split=split,
                             n_trials=args.n_trials,
                             baseline_params=BaselineParams(args.momentum_lookback, args.zscore_window,
                                                            args.zscore_entry),
                             extra={"reward_weights": fx.reward_weights()})
    print(format_summary(result))
    print(f"report: {Path(out_dir) / 'report.json'} (PNGs beside it)")
    return result


def check_device(device: str) -> None:
    """``--device``: a torch device this machine has (one line naming the flag otherwise)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"--device {device!r}: not a torch device ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device is available on this machine; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
