"""SIGTERM and SIGINT (a scheduler's preemption, Ctrl-C): the run finishes its current cycle, writes a checkpoint,
flushes its metrics and summary.json (``stopped_early``, ``signal``) and exits with 128 + the signal; ``--resume auto``
then continues exactly there. A second signal ends the process at once, leaving the last checkpoint whole."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.checkpoint import find_latest_valid, read_checkpoint
from engine.errors import Interrupted
from engine.ppo import parse_args, train
from tests.paths import ROOT, child_env

CP = ["cartpole", "--num-envs", "2", "--rollout-steps", "16", "--hooks.no-progress", "--ppo.num-minibatches", "2",
      "--ppo.update-epochs", "1", "--threads", "1", "--seed", "3"]
LONG = [*CP, "--total-steps", "100000000", "--hooks.checkpoint-every", "1000000", "--hooks.checkpoint-every-minutes",
        "0"]
EXIT = {signal.SIGTERM: 143, signal.SIGINT: 130}


def _metrics_steps(out: Path) -> list[int]:
    (path,) = (out / "logs" / "csv").rglob("metrics.csv")
    with open(path, newline="") as fh:
        return [int(float(r["step"])) for r in csv.DictReader(fh)]


def _assert_stopped_whole(out: Path, sig: int) -> int:
    """The stopped run saved the step it stopped at, its metrics up to it, and a summary saying why."""
    step = read_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["global_step"] == step and summary["status"] == "stopped"
    assert summary["signal"] == signal.Signals(sig).name and summary["stopped_early"] == f"{summary['signal']} received"
    assert summary["last_checkpoint"] == str(out / "checkpoints" / "last.ckpt")
    assert max(_metrics_steps(out)) == step  # every finished cycle's metrics are on disk, none after the checkpoint
    return step


class SignalAt:
    """Sends ``sig`` to this process during cycle ``cycle``'s rollout (a step in the middle of it)."""

    def __init__(self, sig: int, cycle: int) -> None:
        self.sig, self.cycle, self.sent_at = sig, cycle, None

    def on_training_start(self, run) -> None:
        self.run = run

    def on_step_end(self, info) -> None:
        if self.sent_at is None and self.run.cycle == self.cycle:
            self.sent_at = info["global_step"]
            os.kill(os.getpid(), self.sig)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_cycle_finishes_the_cycle_and_checkpoints_it(tmp_path: Path, sig: int) -> None:
    hook, handler = SignalAt(sig, cycle=3), signal.getsignal(sig)
    with pytest.raises(Interrupted) as stopped:
        train(parse_args([*LONG, "--out-dir", str(tmp_path)]), hooks=[hook])
    assert stopped.value.exit_code == EXIT[sig]
    step = _assert_stopped_whole(tmp_path, sig)
    assert step == 3 * 32 and hook.sent_at < step  # the cycle it came in was finished, nothing more
    assert signal.getsignal(sig) is handler  # the process's own handler is back after the run
    summary = train(parse_args([*CP, "--total-steps", str(step + 64), "--out-dir", str(tmp_path), "--resume", "auto"]))
    assert summary["resumed_from"]["global_step"] == step and summary["global_step"] == step + 64
    assert summary["status"] == "completed" and summary["signal"] is None


def _wait_for(pred, proc: subprocess.Popen, timeout: float = 240) -> None:
    t0 = time.monotonic()
    while not pred():
        if proc.poll() is not None:
            pytest.fail(f"the run exited early: {proc.communicate()[1][-2000:]}")
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"no progress within {timeout} s")
        time.sleep(0.1)


def _start(out: Path, *extra: str) -> subprocess.Popen:
    env = child_env()
    return subprocess.Popen([sys.executable, "-m", "engine.ppo", *LONG, "--out-dir", str(out), *extra], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_signals_at_random_moments_then_resume_auto_loses_nothing(tmp_path: Path) -> None:
    """SIGTERM, SIGINT, SIGTERM at random moments of one run (each session resumed with --resume auto): every
    stop is saved at the step it reached, and the next session continues from exactly there."""
    rng = random.Random(16)
    out, previous = tmp_path / "run", 0
    for i, sig in enumerate([signal.SIGTERM, signal.SIGINT, signal.SIGTERM]):
        started = time.time_ns()
        proc = _start(out, *(["--resume", "auto"] if i else []))
        # training has begun once this session wrote its hyper-parameters (after loading the checkpoint)
        _wait_for(lambda: any(p.stat().st_mtime_ns >= started for p in out.glob("logs/csv/**/hparams.json")), proc)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == EXIT[sig], stderr[-2000:]
        assert "Traceback" not in stderr and f"{signal.Signals(sig).name} received" in stderr
        assert stdout.strip().splitlines()[-1] == f"summary: {out / 'summary.json'}"  # the last line says where
        step = _assert_stopped_whole(out, sig)
        summary = json.loads((out / "summary.json").read_text())
        assert step > previous and (i == 0 or summary["resumed_from"]["global_step"] == previous)
        previous = step


def test_a_second_signal_exits_at_once_and_the_last_checkpoint_stays_valid(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(out, "--hooks.checkpoint-every", "1")
    _wait_for(lambda: (out / "checkpoints" / "last.ckpt").exists(), proc)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode in (-signal.SIGTERM, 143), stderr[-2000:]  # the signal itself, or a finished stop
    assert "Traceback" not in stderr
    assert find_latest_valid(out) == out / "checkpoints" / "last.ckpt"


def test_ctrl_c_while_the_command_is_still_starting_is_one_line(tmp_path: Path) -> None:
    """SIGINT during the imports (or anywhere before training): a ``stopped:`` line, exit 130, no traceback."""
    proc = _start(tmp_path / "run")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    assert [line for line in stderr.splitlines() if line.startswith("stopped:")], stderr[-2000:]
