"""make_loggers: CSV / TensorBoard / W&B (offline, local files only) with the config as hyper-parameters."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pytest
from lightning.fabric import Fabric

from lightning.pytorch.loggers import WandbLogger

from hooks.loggers import HParamsCSVLogger, flatten_hparams, make_loggers

HPARAMS = {"algo": "ppo", "ppo": {"learning_rate": 3e-4, "clip_coef": 0.2}, "hidden": (64, 64), "resume": None}


def test_flatten_hparams() -> None:
    assert flatten_hparams(HPARAMS) == {"algo": "ppo", "ppo/learning_rate": 3e-4, "ppo/clip_coef": 0.2,
                                        "hidden": "[64, 64]", "resume": None}


def test_csv_and_tensorboard_through_fabric(tmp_path: Path) -> None:
    loggers = make_loggers(["csv", "tensorboard"], tmp_path, "run1", HPARAMS)
    assert isinstance(loggers[0], HParamsCSVLogger)
    fabric = Fabric(accelerator="cpu", devices=1, loggers=loggers)
    fabric.log_dict({"train/loss": 0.5, "val/sharpe": 1.5}, step=10)
    fabric.log_dict({"train/loss": 0.25}, step=20)
    for lg in loggers:
        lg.finalize("success")
    csv_dir = tmp_path / "logs" / "csv" / "run1" / "version_0"
    rows = list(csv.DictReader(open(csv_dir / "metrics.csv")))
    assert [(r["step"], r["train/loss"]) for r in rows] == [("10", "0.5"), ("20", "0.25")]
    assert json.loads((csv_dir / "hparams.json").read_text())["ppo/learning_rate"] == 3e-4
    tb_files = list((tmp_path / "logs" / "tensorboard" / "run1").rglob("events.out.tfevents.*"))
    assert tb_files and sum(f.stat().st_size for f in tb_files) > 0
    # the run continued from its checkpoint at step 10: same version, the row of step 20 (after it) is dropped
    again = make_loggers(["csv"], tmp_path, "run1", HPARAMS, resume_step=10)
    again[0].log_metrics({"train/loss": 0.125}, step=30)
    again[0].finalize("success")
    rows = list(csv.DictReader(open(csv_dir / "metrics.csv")))
    assert [(r["step"], r["train/loss"]) for r in rows] == [("10", "0.5"), ("30", "0.125")]
    assert not (tmp_path / "logs" / "csv" / "run1" / "version_1").exists()


def test_wandb_offline_run_keeps_metrics_locally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WANDB_MODE", "WANDB_SILENT", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # would fail fast if anything went online
    (logger,) = make_loggers(["wandb"], tmp_path, "offline-test", HPARAMS)
    assert isinstance(logger, WandbLogger)
    logger.log_metrics({"train/loss": 0.123456, "val/sharpe": 2.5}, step=7)
    logger.log_metrics({"train/loss": 0.0625}, step=8)
    run_dir = logger.run_dir
    assert logger.experiment.settings.mode == "offline"
    assert dict(logger.experiment.config)["ppo/learning_rate"] == 3e-4
    logger.finalize("success")
    assert run_dir is not None and run_dir.parent == tmp_path / "wandb" and run_dir.name.startswith("offline-run-")
    (data_file,) = run_dir.glob("run-*.wandb")
    # wandb-core may still be flushing the file when finish() returns (seen after TensorBoard was imported)
    deadline = time.monotonic() + 20
    while b"0.0625" not in (raw := data_file.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for needle in (b"train/loss", b"0.123456", b"0.0625", b"val/sharpe", b"2.5", b"learning_rate"):
        assert needle in raw
    assert "WANDB_MODE" not in os.environ and "WANDB_SILENT" not in os.environ  # nothing set globally


def test_unknown_logger_kind_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--hooks.loggers.*neptune"):
        make_loggers(["csv", "neptune"], tmp_path, "r", {})


def test_non_zero_rank_gets_no_wandb_run(tmp_path: Path) -> None:
    loggers = make_loggers(["csv", "wandb"], tmp_path, "r", HPARAMS, is_global_zero=False)
    assert [type(lg).__name__ for lg in loggers] == ["HParamsCSVLogger"]
    assert not (tmp_path / "wandb").exists()
