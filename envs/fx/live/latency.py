"""Per-decision latency of a deployed FX agent on this machine (``python -m engine.bench latency``).

For the preset transformer (``configs/fx.py`` ``SMALL_TRANSFORMER`` sizes) with the windows of a
preset (``fx``: 15-minute bars, the default job; ``fx-h1``: hourly bars), at batch 1 on one torch
thread, median and 95th percentile over many calls, in microseconds:

* ``stream_*``: :meth:`StreamingAgent.on_bar` end to end (the bar appended, the per-bar arrays, the
  feature windows from the last bars, the account, the policy and the target): ``eager`` runs the
  checkpoint's network in torch, ``onnx`` the exported artifact in onnxruntime; ``sim`` keeps its own
  simulated account (the env's execution model steps every bar), ``external`` takes the broker's
  position as a live deployment does;
* ``features``: :func:`envs.fx.windows.raw_windows` of the newest bar alone;
* ``policy_eager``, ``artifact_onnx``, ``artifact_pt2``: one decision from raw windows and account
  (normalisation, network, target) by the eager module, the ONNX file and the ``torch.export`` file.

The weights are random and the normalisation fitted on a synthetic market: latency does not
depend on what the network learnt.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.loop import build_policy
from envs.fx.arrays import trading_context
from envs.fx.features import FeatureNorm
from envs.fx.live.agent import AccountState, Agent
from envs.fx.live.artifact import load_artifact
from envs.fx.live.export import ExportablePolicy, example_inputs, export_agent
from envs.fx.synthetic import generate
from envs.fx.windows import action_space, history_bars, observation_space, raw_windows


def _stats(samples_s: list[float]) -> dict[str, float]:
    us = np.asarray(samples_s) * 1e6
    return {"median_us": round(float(np.median(us)), 1), "p95_us": round(float(np.percentile(us, 95)), 1)}


def _time_calls(fn: Callable[[], Any], n: int, warmup: int = 50) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return _stats(samples)


def synthetic_agent(cfg: Any, seed: int = 0) -> tuple[Agent, Any]:
    """An agent of ``cfg``'s network and windows with random weights, its normalisation fitted on a synthetic
    market of its bar size; and those bars."""
    fx = dataclasses.replace(cfg.fx, pair="EURUSD", data=None)
    bars = generate("ou", history_bars(fx) + 6000, seed=seed, bar_seconds=fx.bar_seconds, weekend_gap_hours=4.0)
    bar_ns = fx.bar_seconds * 10**9
    norm = FeatureNorm.fit(bars, fx, 0, len(bars) // 2, bar_ns=bar_ns)
    torch.manual_seed(seed)
    policy = build_policy(cfg, observation_space(fx), action_space(fx)).eval()
    agent = Agent(fx, bar_ns, trading_context(fx), cfg=cfg, policy=policy, feature_norm=norm,
                  source=f"<random {cfg.policy}>")
    return agent, bars


def _stream(agent: Agent, bars: Any, mode: str, n: int) -> dict[str, float]:
    start = history_bars(agent.fx) + 100
    live = agent.stream(history=bars.slice(0, start), account=mode)
    account = AccountState(20_000.0, float(bars.close[start]), 5, 20_000.0)
    samples = []
    for i in range(start, start + n):
        bar = bars.slice(i, i + 1)
        t0 = time.perf_counter()
        live.on_bar(bar, account if mode == "external" else None)
        samples.append(time.perf_counter() - t0)
    return _stats(samples[50:])


def latency(cfg: Any, n: int = 2000) -> dict[str, Any]:
    """Every latency above for the training config ``cfg`` (a preset's)."""
    agent, bars = synthetic_agent(cfg)
    fx = agent.fx
    res: dict[str, Any] = {"preset": cfg.preset, "bar_seconds": fx.bar_seconds, "history_bars": history_bars(fx),
                           "windows": [fx.window_high, fx.window_medium, fx.window_low],
                           "parameters": sum(p.numel() for p in agent.policy.parameters())}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {fmt: export_agent(agent, fmt, Path(tmp) / f"policy.{fmt}") for fmt in ("onnx", "pt2")}
        onnx_agent = Agent.load(paths["onnx"])
        for mode in ("sim", "external"):
            res[f"stream_eager_{mode}"] = _stream(agent, bars, mode, n)
            res[f"stream_onnx_{mode}"] = _stream(onnx_agent, bars, mode, n)
        tail = bars.slice(0, history_bars(fx) + 200)
        res["features"] = _time_calls(lambda: raw_windows(tail, fx, agent.bar_ns), n)
        x = example_inputs(fx, 1, seed=2)
        windows = {key: v.numpy() for key, v in zip(("high_freq", "medium_freq", "low_freq"), x[:3])}
        eager = ExportablePolicy(agent).eval()
        with torch.no_grad():
            res["policy_eager"] = _time_calls(lambda: eager(*x), n)
        for fmt, path in paths.items():
            art = load_artifact(path)
            res[f"artifact_{fmt}"] = _time_calls(lambda: art(windows, x[3].numpy()), n)
    return res


def run_latency_bench(configs: dict[str, Any], n: int = 2000) -> dict[str, Any]:
    """:func:`latency` of each named config (the presets ``fx`` and ``fx-h1`` from ``engine.bench``)."""
    out: dict[str, Any] = {name: latency(cfg, n) for name, cfg in configs.items()}
    out["calls"] = n
    return out


__all__ = ["latency", "run_latency_bench", "synthetic_agent"]
