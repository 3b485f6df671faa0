"""engine.walkforward end to end: a machine-readable report with statistics, baselines and costs, and a walk-forward
killed mid-fold that resumes without retraining a finished fold."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.paths import ROOT

TINY = ["fx-h1", "--folds", "2", "--seeds", "1", "--policy", "mlp", "--num-envs", "4", "--rollout-steps", "32",
        "--fx.synthetic-n-bars", "4000", "--fx.episode-bars", "48", "--eval-every", "4",
        "--hooks.checkpoint-every", "4"]


def _cmd(out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "engine.walkforward", *TINY, "--total-steps", str(steps), "--out-dir", str(out)]


def test_walkforward_killed_mid_fold_resumes_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "wf"
    proc = subprocess.Popen(_cmd(out, 6144), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    fold0, fold1 = out / "fold_0" / "seed_1", out / "fold_1" / "seed_1"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (fold1 / "checkpoints" / "last.ckpt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # mid fold 1: fold 0 is done, fold 1 has a periodic checkpoint
    proc.wait()
    assert (fold0 / "wf_result.json").is_file() and not (fold1 / "wf_result.json").exists()
    done0 = {p: p.stat().st_mtime_ns for p in fold0.rglob("*") if p.is_file()}

    res = subprocess.run(_cmd(out, 6144), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "fold 0 seed 1 (done before)" in res.stderr and "fold 1 seed 1 trained" in res.stderr
    assert {p: p.stat().st_mtime_ns for p in done0} == done0  # the finished fold was not touched
    summary1 = json.loads((fold1 / "summary.json").read_text())
    assert summary1["resumed_from"] is not None and summary1["resumed_from"]["global_step"] > 0  # resumed, not redone
    assert res.stdout.strip().splitlines()[-1].startswith("walk-forward report:")

    report = json.loads((out / "report.json").read_text())
    for key in ("verdict", "sharpe", "sharpe_ci", "psr", "dsr", "n_trials", "baselines", "cost_sensitivity",
                "folds", "break_even_cost_multiple", "best_baseline", "beats_best_baseline"):
        assert key in report, key
    assert report["verdict"] in ("edge", "no edge") and report["n_trials"] == 2
    assert set(report["baselines"]) == {"flat", "buy_and_hold", "momentum", "macd", "zscore", "random"}
    assert set(report["cost_sensitivity"]) == {"0.5", "1", "2", "3"}
    assert report["sharpe_ci"][0] <= report["sharpe"] <= report["sharpe_ci"][1]
    one = report["per_seed"]["1"]  # one seed: its own result is the walk-forward's
    assert one["sharpe"] == pytest.approx(report["sharpe"]) and one["dsr"] == pytest.approx(report["dsr"])
    assert one["verdict"] == report["verdict"] and one["n_trades"] == report["metrics"]["n_trades"]
    for k, fold in enumerate(report["folds"]):
        assert fold["fold"] == k and fold["train"]["end"] < fold["val"]["start"] < fold["test"]["start"]
        assert set(fold["seeds"]) == {"1"}
    assert report["folds"][0]["test"]["end"] < report["folds"][1]["test"]["start"]
    for name in ("walkforward_equity.png", "bootstrap_sharpe.png", "cost_sensitivity.png"):
        assert (out / name).stat().st_size > 10_000
    header = (out / "bars.csv").read_text().splitlines()[0]
    assert header == "strategy,time,close,position,equity,return,costs,swap,trade"

    # --gate-psr is a report-time choice: nothing retrains, and a fold-seed whose validation result is no evidence
    # of an edge stays flat (PSR < 1 holds for any finite validation Sharpe)
    gated = subprocess.run([*_cmd(out, 6144), "--gate-psr", "1"], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
    assert gated.returncode == 0, gated.stderr[-3000:]
    assert "fold 0 seed 1 (done before)" in gated.stderr and "fold 1 seed 1 (done before)" in gated.stderr
    flat = json.loads((out / "report.json").read_text())
    assert flat["gate_psr"] == 1 and flat["gated_flat"] == 2
    for fold, before in zip(flat["folds"], report["folds"]):
        gate = fold["seeds"]["1"]["gate"]
        assert gate["flat"] and gate["val_psr"] < 1 and gate["val_sharpe"] == before["seeds"]["1"]["gate"]["val_sharpe"]
        assert fold["seeds"]["1"]["n_trades"] == 0 and fold["seeds"]["1"]["exposure"] == 0
    assert flat["metrics"]["n_trades"] == 0 and "gate: 2 of 2 fold-seeds stayed flat" in gated.stdout
    assert report["gate_psr"] is None and report["gated_flat"] == 0
