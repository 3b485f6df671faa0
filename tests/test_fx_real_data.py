"""A user's own bar file: self-contained checkpoints, backtests on new files, short files, and the real
EURUSD hourly year from the gym-anytrading package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.checkpoint import read_checkpoint
from engine.ppo import parse_args, train
from envs.fx.data import save_bars
from envs.fx.features import FeatureNorm
from envs.fx.research import backtest
from envs.fx.synthetic import generate
from tests.paths import ROOT

SMALL = ["--policy", "mlp", "--num-envs", "4", "--rollout-steps", "32", "--hooks.no-progress",
         "--fx.episode-bars", "64", "--hooks.eval-every", "2", "--hooks.checkpoint-every", "0"]


def eurusd_2017() -> Path:
    anytrading = pytest.importorskip("gym_anytrading")
    return Path(anytrading.__file__).parent / "datasets" / "data" / "FOREX_EURUSD_1H_ASK.csv"


def test_backtest_of_the_checkpoint_reproduces_the_report_and_uses_its_normalisation_on_new_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trained_on, other = tmp_path / "EURUSD_a.csv", tmp_path / "EURUSD_b.csv"
    save_bars(generate("ou", 6000, seed=3, bar_seconds=3600), trained_on)
    save_bars(generate("ou", 3000, seed=9, bar_seconds=3600, start_price=1.30, annual_vol=0.15), other)
    out = tmp_path / "run"
    summary = train(parse_args(["--data", str(trained_on), "--total-steps", "1024", "--out-dir", str(out), *SMALL]))
    assert summary["preset"] == "fx-h1" and (out / "report" / "report.json").is_file()
    ckpt = read_checkpoint(out / "checkpoints" / "last.ckpt")
    assert ckpt["env_spec"]["norm"] is not None and ckpt["env_spec"]["pair"] == "EURUSD"
    assert ckpt["env_spec"]["bar_ns"] == 3600 * 10**9

    # the same file: exactly the end-of-run report
    again = backtest.backtest_checkpoint(backtest.BacktestArgs(ckpt=out / "checkpoints" / "last.ckpt", split="test",
                                                               out_dir=tmp_path / "bt"))
    assert again == json.loads((out / "report" / "report.json").read_text())

    # another file: the checkpoint's normalisation, nothing refitted on it (a refit would raise here)
    def no_refit(*args, **kwargs):
        raise AssertionError("the feature normalisation was refitted on the backtest's data")

    monkeypatch.setattr(FeatureNorm, "fit", staticmethod(no_refit))
    result = backtest.backtest_checkpoint(backtest.BacktestArgs(ckpt=out / "checkpoints" / "last.ckpt",
                                                                data=str(other), out_dir=tmp_path / "bt2"))
    assert result["split"] == "all" and result["bars"] > 2500  # the whole new file after warm-up
    assert result["start"] > "2024-01-0" and np.isfinite(result["metrics"]["sharpe"])


def test_a_file_too_short_fails_before_training_naming_what_it_needs(tmp_path: Path) -> None:
    short = tmp_path / "EURUSD_short.csv"
    save_bars(generate("ou", 500, seed=1, bar_seconds=3600), short)
    res = subprocess.run([sys.executable, "-m", "engine.ppo", "--data", str(short), "--out-dir", str(tmp_path / "o"),
                          "--hooks.no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    err = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "EURUSD_short.csv" in err[0] and "500 bars" in err[0] and "need at least" in err[0]
    assert "--fx.episode-bars" in err[0] and "--fx.window-*" in err[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists()  # nothing created before the error


@pytest.mark.slow
def test_the_real_eurusd_hourly_year_trains_evaluates_and_reports_two_months_each(tmp_path: Path) -> None:
    data = eurusd_2017()
    cfg = parse_args(["--data", str(data), "--total-steps", "4096", "--out-dir", str(tmp_path),
                      "--hooks.no-progress", "--hooks.eval-every", "1"])
    assert cfg.preset == "fx-h1" and cfg.fx.data == str(data)
    summary = train(cfg)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert summary["backtest"]["split"] == "test" and report["bars"] >= 1000
    days = (np.datetime64(report["end"][:-1]) - np.datetime64(report["start"][:-1])) / np.timedelta64(1, "D")
    assert days >= 60  # at least two months of test bars
    rows = (tmp_path / "logs").rglob("metrics.csv")
    assert any("val/sharpe" in p.read_text().splitlines()[0] for p in rows)  # validation ran during training
    assert set(report["baselines"]) >= {"flat", "buy_and_hold", "momentum", "random"}
