"""What the battery's cases start from: scratch directories, a trained CartPole run, a trained FX
checkpoint, bar files with planted faults, and the helpers that run a command and look at its files.

Everything is made once per battery session under one temporary directory and copied per case,
so a case can damage its copy freely. Commands run in ``root`` (the checkout under test) with
``PYTHONPATH=root``, so the battery can measure another checkout (``--root``) as well.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CP = ["cartpole", "--num-envs", "2", "--rollout-steps", "16", "--hooks.no-progress", "--ppo.num-minibatches", "2",
      "--ppo.update-epochs", "1", "--threads", "1", "--accelerator", "cpu"]
"""A tiny CartPole job (32 env steps a cycle)."""

FX = ["fx", "--policy", "mlp", "--num-envs", "2", "--rollout-steps", "16", "--fx.synthetic-n-bars", "12000",
      "--fx.episode-bars", "200", "--report-split", "none", "--hooks.eval-every", "0", "--hooks.no-progress",
      "--hooks.save-top-k", "0", "--threads", "1", "--accelerator", "cpu"]
"""A tiny job on the default FX preset's synthetic market."""

H1 = ["--policy", "mlp", "--num-envs", "2", "--rollout-steps", "16", "--hooks.no-progress", "--hooks.save-top-k",
      "0", "--hooks.eval-every", "0", "--report-split", "none", "--threads", "1", "--accelerator", "cpu"]
"""Flags for a tiny job on a bar file (``--data FILE`` picks the preset for its bar size)."""


MEMORY_LIMIT = 8 << 30
"""Address space of each command (bytes): a case that asks for absurd sizes fails instead of starving the
machine (a shared one)."""


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@dataclass
class Result:
    """What a finished (or killed) command left."""

    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


@dataclass
class Ctx:
    """The battery session: the checkout under test and the shared, lazily built fixtures."""

    root: Path
    scratch: Path
    _made: dict[str, Any] = field(default_factory=dict)

    # -- running ----------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(self.root), "WANDB_MODE": "offline", "WANDB_SILENT": "true",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore::DeprecationWarning"}
        env.pop("PYTEST_CURRENT_TEST", None)
        return env

    def popen(self, module: str, args: list[str], cwd: Path | None = None) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd or self.root, env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=_limit_memory)

    def run(self, module: str, args: list[str], timeout: float = 120, cwd: Path | None = None) -> Result:
        t0 = time.monotonic()
        proc = self.popen(module, args, cwd)
        try:
            out, err = proc.communicate(timeout=timeout)
            return Result(proc.returncode, out, err, time.monotonic() - t0)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            return Result(None, out, err, time.monotonic() - t0, timed_out=True)

    # -- shared fixtures ----------------------------------------------------------------------
    def cartpole_run(self) -> Path:
        """A CartPole run trained in two sessions (64 then 128 steps; a checkpoint every cycle, no top-k);
        ``old-64.ckpt`` beside it is the first session's last checkpoint."""
        if "cartpole" not in self._made:
            out = self.scratch / "fixtures" / "cartpole"
            base = [*CP, "--hooks.checkpoint-every", "1", "--hooks.save-top-k", "0", "--out-dir", str(out)]
            for steps in (64, 128):
                res = self.run("engine.ppo", [*base, "--total-steps", str(steps)], timeout=300)
                if res.rc != 0:
                    raise RuntimeError(f"fixture cartpole run failed: {res.stderr[-3000:]}")
                if steps == 64:
                    shutil.copy2(out / "checkpoints" / "last.ckpt", out.parent / "old-64.ckpt")
            self._made["cartpole"] = out
        return self._made["cartpole"]

    def fx_checkpoint(self) -> Path:
        """The last checkpoint of a tiny FX run (for the backtest and convert cases)."""
        if "fx" not in self._made:
            out = self.scratch / "fixtures" / "fx"
            res = self.run("engine.ppo", [*FX, "--total-steps", "64", "--out-dir", str(out)], timeout=300)
            if res.rc != 0:
                raise RuntimeError(f"fixture fx run failed: {res.stderr[-3000:]}")
            self._made["fx"] = out / "checkpoints" / "last.ckpt"
        return self._made["fx"]

    def bars_file(self, kind: str = "good") -> Path:
        """An hourly bar file (6,000 synthetic OU bars), with one planted fault (see :func:`write_bars`)."""
        key = f"bars-{kind}"
        if key not in self._made:
            path = self.scratch / "fixtures" / f"EURUSD_H1_{kind}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bars(path, kind)
            self._made[key] = path
        return self._made[key]

    def copy_run(self, dest: Path) -> Path:
        shutil.copytree(self.cartpole_run(), dest)
        return dest


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
def _ohlc_rows(n: int = 6000) -> tuple[list[str], list[list[float]]]:
    """Deterministic hourly bars: a slow mean-reverting walk around 1.10, weekends skipped."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    times, t = [], pd.Timestamp("2021-01-04 00:00")
    while len(times) < n:
        if not (t.weekday() == 5 or (t.weekday() == 4 and t.hour >= 22) or (t.weekday() == 6 and t.hour < 22)):
            times.append(t)
        t += pd.Timedelta(hours=1)
    x, rows, prev = 0.0, [], 1.10
    for _ in range(n):
        x = 0.995 * x + rng.normal(0, 0.0012)
        close = round(1.10 * float(np.exp(x)), 5)
        o = prev
        hi = round(max(o, close) * (1 + abs(rng.normal(0, 0.0004))), 5)
        lo = round(min(o, close) * (1 - abs(rng.normal(0, 0.0004))), 5)
        rows.append([o, hi, lo, close, float(rng.integers(50, 500))])
        prev = close
    return [ts.strftime("%Y-%m-%dT%H:%M:%S") for ts in times], rows


def write_bars(path: Path, kind: str) -> None:
    """``good``, or one fault: ``spike`` (one bar at 1000x its neighbours, OHLC consistent), ``huge``
    (one bar at 1e300), ``hole`` (a two-year hole with a 30 % jump), ``mixedtz`` (the second half
    carries a +05:00 offset, the first none), ``nan`` (a missing close), ``backwards`` (a time out of
    order), ``highlow`` (high below the close), ``negative`` (a negative price), ``dupe`` (a repeated
    time), ``nocolumn`` (no close column), ``empty``, ``binary``."""
    import pandas as pd

    times, rows = _ohlc_rows()
    mid = len(rows) // 2
    if kind == "binary":
        path.write_bytes(bytes(range(256)) * 64)
        return
    if kind == "empty":
        path.write_text("")
        return
    if kind == "spike":
        rows[mid] = [v * 1000 for v in rows[mid][:4]] + [rows[mid][4]]
    elif kind == "huge":
        rows[mid] = [1e300, 1e300, 1e300, 1e300, rows[mid][4]]
    elif kind == "hole":
        shifted = [(pd.Timestamp(t) + pd.Timedelta(days=730)).strftime("%Y-%m-%dT%H:%M:%S") for t in times[mid:]]
        times = times[:mid] + shifted
        rows = rows[:mid] + [[round(v * 1.3, 5) for v in r[:4]] + [r[4]] for r in rows[mid:]]
    elif kind == "mixedtz":
        times = times[:mid] + [(pd.Timestamp(t) + pd.Timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S") + "+05:00"
                               for t in times[mid:]]
    elif kind == "nan":
        rows[mid][3] = float("nan")
    elif kind == "backwards":
        times[mid], times[mid + 1] = times[mid + 1], times[mid]
    elif kind == "highlow":
        rows[mid][1] = rows[mid][3] * 0.99
    elif kind == "negative":
        rows[mid][2] = -1.0
    elif kind == "dupe":
        times[mid] = times[mid - 1]
    header = "time,open,high,low,close,volume"
    if kind == "nocolumn":
        header = "time,open,high,low,volume"
        rows = [r[:3] + [r[4]] for r in rows]
    lines = [header] + [",".join([t, *("" if v != v else f"{v:.10g}" for v in r)]) for t, r in zip(times, rows)]
    path.write_text("\n".join(lines) + "\n")


def flip_tensor_byte(ckpt: Path) -> None:
    """Flip one byte in the middle of the largest tensor's data (the zip entries stay readable)."""
    with zipfile.ZipFile(ckpt) as zf:
        entries = [i for i in zf.infolist() if "/data/" in i.filename]
        info = max(entries, key=lambda i: i.file_size)
    with open(ckpt, "r+b") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(fh.read(2), "little"), int.from_bytes(fh.read(2), "little")
        pos = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
        fh.seek(pos)
        byte = fh.read(1)[0]
        fh.seek(pos)
        fh.write(bytes([byte ^ 0x40]))


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """``relative path -> (sha256, mtime_ns)`` of every file under ``directory``."""
    out = {}
    if directory.is_dir():
        for p in sorted(directory.rglob("*")):
            if p.is_file():
                out[str(p.relative_to(directory))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def changed(before: dict[str, tuple[str, int]], after: dict[str, tuple[str, int]]) -> list[str]:
    """Files of ``before`` that are gone or differ in ``after``."""
    return [k for k, v in before.items() if after.get(k) != v]


def read_summary(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def ckpt_step(path: Path) -> int | None:
    """The global step inside a checkpoint (loaded by the checkout under test's interpreter, weights only)."""
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])
    except Exception:  # noqa: BLE001  (a corrupt file: no step)
        return None


def metrics_steps(out: Path) -> list[int]:
    """The steps of every row of the run's CSV metrics (empty when there is no metrics.csv)."""
    import csv

    steps: list[int] = []
    for path in out.glob("logs/csv/**/metrics.csv"):
        with open(path, newline="") as fh:
            steps += [int(float(r["step"])) for r in csv.DictReader(fh) if r.get("step")]
    return steps


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def wait_for(pred: Any, timeout: float, proc: subprocess.Popen | None = None, poll: float = 0.1) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(poll)
    return False
