"""Faults: NaN/Inf updates are skipped and counted, persistent ones stop the run without
checkpointing a NaN model; SIGKILL mid-training and mid-write never corrupts the newest checkpoint."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from algos import NonFiniteLossError
from engine import keys as K
from engine.checkpoint import find_latest_valid, read_checkpoint
from engine.ppo import parse_args, train
from tests.paths import ROOT, child_env

CP = ["cartpole", "--num-envs", "4", "--rollout-steps", "32", "--hooks.no-progress", "--seed", "2",
      "--ppo.num-minibatches", "2", "--ppo.update-epochs", "1"]


class PoisonAdvantage:
    """Puts one NaN into the rollout's advantages at the given cycles."""

    def __init__(self, cycles):
        self.cycles = set(cycles)

    def on_rollout_end(self, info):
        if info["cycle"] in self.cycles:
            info["buffer"][K.ADVANTAGE][0, 0] = float("nan")


class PoisonAllAdvantages:
    """From cycle ``start`` on, every advantage is NaN (every update is non-finite)."""

    def __init__(self, start):
        self.start = start

    def on_rollout_end(self, info):
        if info["cycle"] >= self.start:
            info["buffer"][K.ADVANTAGE].fill_(float("nan"))


class SaveWhileNaN:
    """At cycle 2, corrupts a weight, asks for a checkpoint, then restores the weight."""

    def on_training_start(self, run):
        self.run = run
        self.result = "not called"

    def on_cycle_complete(self, info):
        if info["cycle"] == 2:
            w = next(self.run.algo.policy.parameters())
            keep = w.detach().clone()
            with torch.no_grad():
                w[0, 0] = float("nan")
            self.result = self.run.save_checkpoint(self.run.out_dir / "checkpoints" / "nan.ckpt")
            with torch.no_grad():
                w.copy_(keep)


def test_transient_nan_update_is_skipped_and_counted(tmp_path):
    summary = train(parse_args([*CP, "--total-steps", "640", "--out-dir", str(tmp_path)]),
                    hooks=[PoisonAdvantage({2, 4})])
    # one poisoned minibatch (of 2) per poisoned cycle was skipped; training went on to the end
    assert summary["nonfinite_updates"] == 2
    assert summary["global_step"] == 640
    params = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["policy"]
    assert all(torch.isfinite(v).all() for v in params.values())


def test_persistent_nan_stops_with_clear_error(tmp_path):
    cfg = parse_args([*CP, "--total-steps", "4096", "--out-dir", str(tmp_path), "--max-nonfinite-updates", "3",
                      "--hooks.checkpoint-every", "1"])
    # --max-nonfinite-updates counts updates, not minibatch steps: 2 minibatches per cycle, every one skipped
    # from cycle 3 on, so the 3rd consecutive non-finite update is cycle 5's
    with pytest.raises(NonFiniteLossError, match="3 consecutive updates") as err:
        train(cfg, hooks=[PoisonAllAdvantages(start=3)])
    ckpt = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 4 * 128  # cycles 3 and 4 skipped their updates; their checkpoints are healthy
    assert all(torch.isfinite(v).all() for v in ckpt["policy"].values())
    assert err.value.last_checkpoint == str(tmp_path / "checkpoints" / "last.ckpt")
    # the metrics of every finished cycle are on disk, and the summary says what failed and what to continue
    (metrics,) = (tmp_path / "logs" / "csv").rglob("metrics.csv")
    rows = list(csv.DictReader(metrics.open()))
    assert [int(float(r["global_step"])) for r in rows] == [128, 256, 384, 512]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"].startswith("NonFiniteLossError")
    assert summary["last_checkpoint"] == str(tmp_path / "checkpoints" / "last.ckpt")


def test_nan_model_is_never_checkpointed(tmp_path):
    probe = SaveWhileNaN()
    with pytest.warns(UserWarning, match="NaN/Inf parameters"):
        train(parse_args([*CP, "--total-steps", "384", "--out-dir", str(tmp_path)]), hooks=[probe])
    assert probe.result is None
    assert not (tmp_path / "checkpoints" / "nan.ckpt").exists()
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()


def _wait_for(pred, timeout, proc):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        if proc.poll() is not None:
            raise AssertionError(f"process exited early: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    return False


def test_sigkill_mid_training_then_resume_auto(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "engine.ppo", *CP, "--total-steps", "10000000", "--out-dir", str(out),
           "--hooks.checkpoint-every", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        last = out / "checkpoints" / "last.ckpt"
        # wait until a checkpoint exists and training has moved on past it
        assert _wait_for(lambda: last.exists() and read_checkpoint(last)["global_step"] >= 1024, 240, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ckpt_step = read_checkpoint(last)["global_step"]
    assert find_latest_valid(out) is not None
    res = subprocess.run([sys.executable, "-m", "engine.ppo", *CP, "--total-steps", str(ckpt_step + 256),
                          "--out-dir", str(out), "--resume", "auto"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from"]["global_step"] == ckpt_step
    assert summary["global_step"] == ckpt_step + 256


KILL_DURING_WRITE = r"""
import os, signal, sys
from engine.ppo import parse_args, train

class DieWhileSaving:
    def on_training_start(self, run):
        self.run = run
    def on_cycle_complete(self, info):
        if info["cycle"] == 3:  # user hooks run after the built-in ones: cycle 4's save is the one that dies
            real_save = self.run.fabric.save
            def dying_save(path, state):
                real_save(path, state)
                size = os.path.getsize(path)
                with open(path, "r+b") as fh:  # leave a half-written file, then die hard
                    fh.truncate(size // 2)
                os.kill(os.getpid(), signal.SIGKILL)
            self.run.fabric.save = dying_save

cfg = parse_args(sys.argv[1:])
train(cfg, hooks=[DieWhileSaving()])
"""


def test_sigkill_during_checkpoint_write_keeps_previous_checkpoint(tmp_path):
    out = tmp_path / "run"
    script = tmp_path / "die.py"
    script.write_text(KILL_DURING_WRITE)
    env = child_env()
    res = subprocess.run([sys.executable, str(script), *CP, "--total-steps", "100000", "--out-dir", str(out),
                          "--hooks.checkpoint-every", "1"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == -signal.SIGKILL
    ckdir = out / "checkpoints"
    (tmp,) = ckdir.glob("last.ckpt.*.tmp")  # the half-written file (its writer's own temp name) never took the final one
    good = read_checkpoint(ckdir / "last.ckpt")
    assert good["global_step"] == 3 * 128  # cycle 3's checkpoint, written before the dying one
    # a corrupt newer .ckpt is skipped with a warning; resume takes the previous valid one
    bad = ckdir / "step=999999999-broken.ckpt"
    bad.write_bytes(tmp.read_bytes())
    os.utime(bad, (time.time() + 10, time.time() + 10))
    with pytest.warns(UserWarning, match="skipping"):
        assert find_latest_valid(out) == ckdir / "last.ckpt"
