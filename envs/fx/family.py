"""The FX env as an engine env family (``--env fx``): what the engine needs to train, evaluate
and report on it, registered with :mod:`engine.registry` when this module is imported.

The engine core never imports this module; ``configs`` does (the composition root).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from engine.formats import register_conversion
from engine.registry import register_env_family
from envs.fx.market import load_market, make_fx_eval_env, make_fx_vector_env
from envs.fx.research.backtest import run_backtest
from envs.fx.research.metrics import compute_metrics, infer_periods_per_year
from envs.fx.research.report_hook import BacktestReportHook
from envs.fx.research.spec import spec_of


class FxFamily:
    """``--env fx``: settings in ``cfg.fx`` (:class:`envs.fx.config.FxEnvConfig`)."""

    name = "fx"
    section = "fx"

    def validate(self, cfg: Any) -> None:
        """The settings, the data file, every split's length and the report split, before any work."""
        cfg.fx.validate()
        market = load_market(cfg.fx)  # a bad file fails here, naming file, row and column; short data too
        if cfg.fx.report_split != "none" and cfg.fx.report_split not in market.ranges:
            raise ValueError(f"--fx.report-split {cfg.fx.report_split}: that split is empty "
                             f"(--fx.{cfg.fx.report_split}-frac is 0); use another split or none")
        if getattr(cfg.hooks, "eval_every", 0) > 0 and "val" not in market.ranges:
            raise ValueError("--hooks.eval-every: evaluation runs on the validation split, which is empty "
                             "(--fx.val-frac 0); set --hooks.eval-every 0 or a validation fraction")
        shortest = min(market.ranges.items(), key=lambda kv: kv[1][1] - kv[1][0])
        longest_fill = shortest[1][1] - shortest[1][0] - 1  # an order must fill inside every split it trades
        if cfg.fx.latency_bars > longest_fill:
            raise ValueError(f"--fx.latency-bars: must be in [1, {longest_fill}] for this data (the {shortest[0]} split "
                             f"has {shortest[1][1] - shortest[1][0]} bars; got {cfg.fx.latency_bars})")
        for note in market.notes:
            print(f"note: {note}", file=sys.stderr)

    def make_train_env(self, cfg: Any, num_envs: int, seed: int, device: torch.device) -> Any:
        return make_fx_vector_env(cfg.fx, num_envs=num_envs, seed=seed, device=device, split="train")

    def make_eval_env(self, cfg: Any, device: torch.device) -> Any:
        return make_fx_eval_env(cfg.fx, split="val", seed=cfg.seed, device=device)

    def evaluate(self, policy_fn: Callable[[Any], torch.Tensor], env: Any, cfg: Any,
                 num_episodes: int) -> dict[str, float]:
        """One deterministic pass over the validation split; the backtest metrics (``sharpe``, ...)."""
        traj = run_backtest(lambda obs, info: policy_fn(obs), env)
        metrics = compute_metrics(traj, infer_periods_per_year(traj.curve_time))
        metrics["return_mean"] = float(np.sum(traj.reward))
        return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.floating, np.integer))}

    def end_hooks(self, cfg: Any) -> list[Any]:
        return [] if cfg.fx.report_split == "none" else [BacktestReportHook(split=cfg.fx.report_split)]

    def spec(self, envs: Any) -> dict[str, Any]:
        """The fitted feature normalisation and what the features were computed with (bar length, pair)."""
        return spec_of(envs)


def fx_observations_3_to_4(ckpt: dict[str, Any]) -> None:
    """3 -> 4 for FX checkpoints: the config gains the market, cost and account fields with their defaults
    (an older config keeps its windows); medium/low aggregates became clock-aligned blocks and slippage linear
    in size, so an older policy sees slightly different inputs and costs. No feature normalisation was saved:
    backtests refit it on the checkpoint's own training data (and refuse a new file)."""
    cfg = ckpt.get("config")
    if isinstance(cfg, dict) and cfg.get("env") == "fx":
        if cfg.get("preset") == "fx-ou":  # the OU sanity job is the default preset "fx" again
            cfg["preset"] = "fx"
        notes = ckpt.setdefault("conversion_notes", [])
        notes.append("FX format 3 -> 4: aggregates now clock-aligned, slippage linear in size, rollover at 17:00 "
                     "New York; no feature normalisation in the checkpoint")


FX = FxFamily()
register_env_family(FX)
register_conversion(3, fx_observations_3_to_4, "envs.fx.observations_3_to_4")
