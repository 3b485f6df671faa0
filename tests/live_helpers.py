"""Shared set-up of the live-trading tests: small trained FX checkpoints, made once per test session.

A few hundred PPO steps on a 3,000-bar synthetic hourly market with weekend gaps and short windows
(216 bars of history), then the action head scaled by hand so the deterministic policy trades often
(a near-uniform policy that barely moves would make "the same positions" an easy claim).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from engine.checkpoint import seal
from envs.fx.data import save_bars
from envs.fx.synthetic import generate

SMALL_WINDOWS = ["--fx.window-high", "16", "--fx.window-medium", "6", "--fx.window-low", "4",
                 "--fx.ma-window-long", "48", "--fx.vol-window", "8", "--fx.ma-window", "24"]
_ROOT = Path(tempfile.mkdtemp(prefix="fxai-live-tests-"))
atexit.register(shutil.rmtree, _ROOT, True)


def market_file(directory: Path, n_bars: int = 3000, seed: int = 3, name: str = "EURUSD_syn.csv") -> Path:
    """A synthetic hourly EURUSD-like OU market with weekend gaps, as a CSV file."""
    path = Path(directory) / name
    save_bars(generate("ou", n_bars, seed=seed, bar_seconds=3600, weekend_gap_hours=4.0, annual_vol=0.12), path)
    return path


def decisive(src: Path, dst: Path, scale: float = 30.0) -> Path:
    """A copy of checkpoint ``src`` with its action head's weights x ``scale`` (sharper, trading decisions)."""
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    for key, value in ckpt["policy"].items():
        if "head" in key:
            ckpt["policy"][key] = value * scale
    torch.save(seal(ckpt), dst)  # an edited checkpoint is a new one: its content hash is computed again
    return dst


@lru_cache(maxsize=None)
def trained_checkpoint(policy: str = "transformer", extra: tuple[str, ...] = ()) -> Path:
    """A decisive checkpoint of ``policy`` trained 512 steps on :func:`market_file` (once per session)."""
    from engine.ppo import parse_args, train

    out = _ROOT / f"{policy}-{abs(hash(extra))}"
    out.mkdir(parents=True, exist_ok=True)
    data = market_file(out)
    args = ["fx-h1", "--data", str(data), "--policy", policy, "--num-envs", "4", "--rollout-steps", "32",
            "--hooks.no-progress", "--fx.episode-bars", "64", "--hooks.eval-every", "0", "--hooks.checkpoint-every",
            "0", "--hooks.monitor", "episode/return_mean", "--total-steps", "512", "--out-dir", str(out / "run"),
            "--fx.report-split", "none", *SMALL_WINDOWS, *extra]
    summary = train(parse_args(args))
    return decisive(Path(summary["last_checkpoint"]), out / "decisive.ckpt")


def positions_changed(position: np.ndarray) -> int:
    """Bars on which the position changed (trades)."""
    return int((np.diff(np.r_[0.0, position]) != 0).sum())
