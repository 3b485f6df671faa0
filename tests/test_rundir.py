"""Run directories never lose or mix work: a second command into a used --out-dir continues the run (same
settings), is refused (other settings, naming the choices), or starts over with --overwrite; --resume best;
one run id and log version across sessions; a SIGKILLed CartPole run with the default periodic checkpoints
resumes having lost at most one interval."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.checkpoint import read_checkpoint
from engine.ppo import parse_args, train
from engine.rundir import RUN_ENTRIES
from tests.paths import ROOT, child_env

CP = ["cartpole", "--num-envs", "2", "--rollout-steps", "32", "--hooks.no-progress", "--ppo.update-epochs", "1",
      "--seed", "6"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "engine.ppo", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def _csv_steps(out: Path) -> list[int]:
    (path,) = (out / "logs" / "csv").rglob("metrics.csv")
    return [int(r["step"]) for r in csv.DictReader(open(path))]


def test_second_command_continues_refuses_or_starts_over(tmp_path) -> None:
    out = tmp_path / "run"
    first = train(parse_args([*CP, "--total-steps", "128", "--out-dir", str(out)]))
    last = out / "checkpoints" / "last.ckpt"
    before, summary_before = last.read_bytes(), (out / "summary.json").read_text()

    # other settings: refused, one line naming the difference and the choices; nothing changed
    res = _cli(*CP, "--total-steps", "128", "--ppo.learning-rate", "0.01", "--out-dir", str(out))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert "holds a run" in line and "ppo.learning_rate: 0.001 -> 0.01" in line
    assert "--resume auto" in line and "--overwrite" in line and "new --out-dir" in line
    assert last.read_bytes() == before and (out / "summary.json").read_text() == summary_before

    # the same settings with a larger budget: continued (extended), the same run id and log version
    second = train(parse_args([*CP, "--total-steps", "256", "--out-dir", str(out)]))
    assert second["resumed_from"]["global_step"] == 128 and second["global_step"] == 256
    assert second["run_id"] == first["run_id"] and second["version"] == first["version"] == 0
    assert second["resumes"] == 1 and len(second["resume_history"]) == 1
    assert _csv_steps(out) == [64, 128, 192, 256]  # one log, each step once
    assert [p.name for p in (out / "logs" / "csv").iterdir()] == ["run"]
    assert sorted(p.name for p in (out / "logs" / "csv" / "run").iterdir()) == ["version_0"]
    assert read_checkpoint(last)["run"]["id"] == first["run_id"]

    # --overwrite: the old run's files are gone, a new run id, a fresh log
    (out / "report").mkdir()
    (out / "report" / "old.txt").write_text("from the old run")
    third = train(parse_args([*CP, "--total-steps", "64", "--out-dir", str(out), "--overwrite"]))
    assert third["run_id"] != first["run_id"] and third["resumed_from"] is None and third["global_step"] == 64
    assert not (out / "report").exists() and _csv_steps(out) == [64]
    assert read_checkpoint(last)["global_step"] == 64
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.overwritten")]


def test_a_used_directory_without_a_checkpoint_is_refused(tmp_path) -> None:
    (tmp_path / "logs").mkdir()
    with pytest.raises(ValueError, match=r"holds a run \(logs\) with no valid checkpoint.*--overwrite"):
        train(parse_args([*CP, "--out-dir", str(tmp_path)]))
    with pytest.raises(ValueError, match="cannot be combined with --resume auto"):
        train(parse_args([*CP, "--out-dir", str(tmp_path), "--overwrite", "--resume", "auto"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]
    assert set(RUN_ENTRIES) >= {"checkpoints", "summary.json", "logs"}


class Score:
    """Feeds the top-k hook a monitored value: high at cycle 2, low after."""

    def on_metrics_computed(self, metrics):
        metrics["score"] = {1: 1.0, 2: 5.0}.get(int(metrics["cycle"]), 0.5)


def test_resume_best_continues_the_best_checkpoint(tmp_path) -> None:
    args = [*CP, "--hooks.monitor", "score", "--hooks.save-top-k", "2", "--out-dir", str(tmp_path)]
    train(parse_args([*args, "--total-steps", "256"]), hooks=[Score()])
    best = tmp_path / "checkpoints" / "step=000000128-score=5.0000.ckpt"
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["best_checkpoint"] == str(best)
    summary = train(parse_args([*args, "--total-steps", "256", "--resume", "best"]), hooks=[Score()])
    assert summary["resumed_from"] == {"path": str(best), "global_step": 128} and summary["global_step"] == 256
    assert _csv_steps(tmp_path) == [64, 128, 192, 256]  # the steps after the best one were logged again, once


WRITE_STEPS = r"""
import sys
from engine.ppo import main

class Clock:
    def on_cycle_complete(self, info):
        with open(sys.argv[1], "a") as fh:
            fh.write(f"{info['global_step']}\n")

import engine.cli as cli
build = cli.build_hooks
cli.build_hooks = lambda cfg, hooks=(): build(cfg, [*hooks, Clock()])
main(sys.argv[2:])
"""


def test_sigkill_after_the_first_periodic_checkpoint_loses_at_most_one_interval(tmp_path) -> None:
    out, steps_file, script = tmp_path / "cp", tmp_path / "steps.txt", tmp_path / "run.py"
    script.write_text(WRITE_STEPS)
    args = ["cartpole", "--total-steps", "600000", "--out-dir", str(out)]  # the preset's own checkpoint defaults
    cfg = parse_args(args)
    cycle = cfg.rollout_steps * cfg.num_envs
    interval = cfg.hooks.checkpoint_every * cycle
    assert cfg.hooks.checkpoint_every == 10 and cfg.hooks.checkpoint_every_minutes == 10.0
    env = child_env()
    proc = subprocess.Popen([sys.executable, str(script), str(steps_file), *args, "--hooks.no-progress"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = out / "checkpoints" / "last.ckpt"
    try:
        t0 = time.time()
        while not (last.exists() and steps_file.exists()
                   and int(steps_file.read_text().split()[-1]) > read_checkpoint(last)["global_step"] + interval // 2):
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.time() - t0 < 240
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = int(steps_file.read_text().split()[-1])
    saved = read_checkpoint(last)["global_step"]
    assert 0 < done - saved <= interval  # what the kill lost: at most one interval
    # the same command again (no --resume) continues the run from the checkpoint
    res = subprocess.run([sys.executable, "-m", "engine.ppo", "cartpole", "--total-steps", str(saved + cycle),
                          "--out-dir", str(out), "--hooks.no-progress"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from"]["global_step"] == saved and summary["global_step"] == saved + cycle
