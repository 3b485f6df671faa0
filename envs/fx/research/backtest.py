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
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from envs.fx.research import metrics, plots
from envs.fx.research.baselines import BASELINES, NOT_PLOTTED, PolicyFn, env_cfg_value, scalar

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
    rows: dict[str, list] = {k: [] for k in ("time", "close", "equity", "position", "reward", "costs", "action")}
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
        initial_equity=float(initial_equity),
        initial_time=int(initial_time) if initial_time is not None else None,
        initial_close=initial_close,
        terminated=terminated,
    )


def _json_safe(x: Any) -> Any:
    """Non-finite floats (only +inf occurs, see envs.fx.research.metrics) become None so report.json is strict JSON."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _iso(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]")) + "Z"


def backtest_report(policy_fn: PolicyFn, env_factory: Callable[[], Any], out_dir: str | os.PathLike,
                    periods_per_year: float | None = None, split: str | None = None,
                    momentum_lookback: int = 20, label: str = "policy") -> dict[str, Any]:
    """Backtest ``policy_fn`` and the baselines on fresh envs from ``env_factory``; write the report.

    Writes into ``out_dir``: ``report.json`` (``{"split", "metrics", "baselines": {"flat",
    "buy_and_hold", "momentum", "random"}, "bars", "start", "end", "periods_per_year"}``; non-finite
    metrics such as an infinite profit factor are written as null), ``equity_drawdown.png``,
    ``positions.png`` and ``trade_returns.png``. Returns the dict as written.
    ``periods_per_year`` defaults to :func:`engine.metrics.infer_periods_per_year` of the bar
    times; ``split`` defaults to ``env.split`` when the env has it.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = env_factory()
    split = split if split is not None else getattr(env, "split", None)
    traj = run_backtest(policy_fn, env)
    baselines: dict[str, Trajectory] = {}
    skipped: dict[str, str] = {}
    for name, make in BASELINES.items():
        b_env = env_factory()
        try:
            baselines[name] = run_backtest(make(b_env, momentum_lookback), b_env)
        except ValueError as exc:  # e.g. no 0 among the position levels: "flat" is not expressible
            warnings.warn(f"baseline {name} skipped: {exc}", stacklevel=2)
            skipped[name] = str(exc)
            continue
        if len(baselines[name]) != len(traj) and not (traj.terminated or baselines[name].terminated):
            raise RuntimeError(f"baseline {name} ran {len(baselines[name])} steps but the policy ran {len(traj)}: "
                               f"env_factory must return envs over the same split")
    times = traj.curve_time
    if periods_per_year is None:
        periods_per_year = metrics.infer_periods_per_year(times)
    result: dict[str, Any] = {
        "split": split,
        "metrics": metrics.compute_metrics(traj, periods_per_year),
        "baselines": {name: metrics.compute_metrics(t, periods_per_year) for name, t in baselines.items()},
        "bars": len(traj),
        "start": _iso(times[0]),
        "end": _iso(times[-1]),
        "periods_per_year": float(periods_per_year),
        "terminated_early": traj.terminated,
    }
    if skipped:
        result["baselines_skipped"] = skipped
    result = _json_safe(result)
    with open(out / "report.json", "w") as fh:
        json.dump(result, fh, indent=2)

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
    return result


def format_summary(result: Mapping[str, Any]) -> str:
    """A small text table of the main metrics: policy vs baselines."""
    cols = {"policy": result["metrics"], **result["baselines"]}
    rows = [("total_return", "{:+.2%}"), ("sharpe", "{:.2f}"), ("max_drawdown", "{:.2%}"),
            ("win_rate", "{:.1%}"), ("profit_factor", "{:.2f}"), ("n_trades", "{:d}"), ("exposure", "{:.1%}"),
            ("turnover", "{:.1f}"), ("costs_paid", "{:.2f}")]
    lines = [f"{'':15s}" + "".join(f"{c:>14s}" for c in cols)]
    for key, fmt in rows:
        cells = []
        for m in cols.values():
            v = m.get(key)
            cells.append(f"{'inf' if v is None else fmt.format(v):>14s}")  # null in the JSON is +inf
        lines.append(f"{key:15s}" + "".join(cells))
    return "\n".join(lines)


@dataclass
class BacktestArgs:
    """Backtest a trained checkpoint against flat, buy-and-hold, momentum and random-action baselines."""

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
    momentum_lookback: int = 20
    """Bars of price history the momentum baseline looks back over."""
    device: str = "cpu"
    """Torch device for the policy and env."""


def backtest_checkpoint(args: BacktestArgs) -> dict[str, Any]:
    """Load the checkpoint's policy, config and feature normalisation, build the eval env and write the report."""
    from engine.checkpoint import read_checkpoint
    from engine import loop
    from envs.fx import market
    from envs.fx.research.spec import norm_from_spec

    if not Path(args.ckpt).is_file():
        raise FileNotFoundError(f"--ckpt: checkpoint {args.ckpt} does not exist")
    if args.data is not None and not Path(args.data).is_file():
        raise FileNotFoundError(f"--data: data file {args.data} does not exist")
    if args.momentum_lookback < 1:
        raise ValueError(f"--momentum-lookback must be >= 1, got {args.momentum_lookback}")
    if args.periods_per_year is not None and not (math.isfinite(args.periods_per_year) and args.periods_per_year > 0):
        raise ValueError(f"--periods-per-year must be a finite number > 0, got {args.periods_per_year}")
    ckpt = read_checkpoint(args.ckpt)
    cfg = loop.load_config(ckpt, args.ckpt)
    if getattr(cfg, "env", "fx") != "fx":
        raise ValueError(f"--ckpt: {args.ckpt} was trained on env {cfg.env!r}; backtests need the FX env (--env fx)")
    split = args.split or ("all" if args.data is not None else "test")
    fx = cfg.fx if args.data is None else dataclasses.replace(cfg.fx, data=args.data, pair=cfg.fx.pair)
    norm = norm_from_spec(ckpt.get("env_spec"))
    if norm is None and fx.obs_mode == "full":
        if args.data is not None:
            raise ValueError(f"--ckpt: {args.ckpt} carries no feature normalisation (an older checkpoint); "
                             f"it can only be backtested on the data it was trained on")
        warnings.warn(f"{args.ckpt} carries no feature normalisation: refitting it on the training split of "
                      f"{fx.data or 'the synthetic market'}", stacklevel=2)
    out_dir = args.out_dir if args.out_dir is not None else Path(args.ckpt).parent / f"backtest-{split}"

    def env_factory() -> Any:
        return market.make_fx_eval_env(fx, split=split, seed=0, device=args.device, norm=norm)

    _, policy = loop.load_policy(args.ckpt, device=args.device, env=env_factory())
    result = backtest_report(lambda obs, info: policy(obs), env_factory, out_dir,
                             periods_per_year=args.periods_per_year, split=split,
                             momentum_lookback=args.momentum_lookback)
    print(format_summary(result))
    print(f"report written to {out_dir}")
    return result
