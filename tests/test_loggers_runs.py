"""Loggers in real runs: W&B offline (one run id across a resume, tags, notes, artifacts, histograms), MLflow
to its local store (params and metrics, one run across a resume), TensorBoard's HParams tab and histograms,
and hyper-parameters that are the active algorithm's, policy's and env's only."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from engine.checkpoint import read_checkpoint
from engine.ppo import parse_args, train

CP = ["cartpole", "--num-envs", "2", "--rollout-steps", "32", "--hooks.no-progress", "--ppo.update-epochs", "1",
      "--seed", "8"]


def _wait_for(path: Path, needles: list[bytes], timeout: float = 20.0) -> bytes:
    deadline = time.monotonic() + timeout  # wandb-core may still be flushing when finish() returns
    while True:
        raw = path.read_bytes()
        if all(n in raw for n in needles) or time.monotonic() > deadline:
            return raw
        time.sleep(0.1)


def test_wandb_offline_one_run_across_a_resume_with_artifacts(tmp_path, monkeypatch) -> None:
    for var in ("WANDB_MODE", "WANDB_SILENT", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # would fail fast if anything went online
    args = [*CP, "--hooks.loggers", "csv", "wandb", "--hooks.wandb-tags", "smoke", "nightly",
            "--hooks.wandb-notes", "a note for the run", "--hooks.histogram-every", "2", "--out-dir", str(tmp_path)]
    first = train(parse_args([*args, "--total-steps", "128"]))
    second = train(parse_args([*args, "--total-steps", "256"]))
    run_id = first["run_id"]
    assert second["run_id"] == run_id == read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["run"]["id"]
    assert second["resumes"] == 1
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(f"-{run_id}" in r.name for r in runs)  # one W&B run, resumed
    assert first["wandb_artifacts"] == second["wandb_artifacts"] == [f"model-{run_id}"]
    for r in runs:
        (data,) = r.glob(f"run-{run_id}.wandb")
        raw = _wait_for(data, [f"model-{run_id}".encode(), b"hist/actions"])
        for needle in (f"model-{run_id}".encode(), b"last.ckpt", b"smoke", b"nightly", b"a note for the run",
                       b"hist/actions", b"hist/values", b"train/policy_loss"):
            assert needle in raw, (r.name, needle)
    assert "WANDB_MODE" not in os.environ  # offline through the run's own settings, nothing set globally


def test_mlflow_run_in_the_local_store(tmp_path) -> None:
    from mlflow.tracking import MlflowClient

    args = [*CP, "--hooks.loggers", "csv", "mlflow", "--out-dir", str(tmp_path)]
    train(parse_args([*args, "--total-steps", "128"]))
    train(parse_args([*args, "--total-steps", "256"]))
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "fxai"]
    (run,) = client.search_runs([experiment.experiment_id])  # one run across both sessions
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["run"]["loggers"]["MLFlowLogger"] == \
        run.info.run_id
    params = run.data.params
    assert params["ppo/learning_rate"] == "0.001" and params["env"] == "CartPole-v1" and params["mlp/hidden"] == "[64, 64]"
    assert params["total_steps"] == "128" and run.data.tags["changed/total_steps"] == "256"
    assert not any(k.startswith(("a2c/", "model/", "fx/")) for k in params)  # only the active sections
    history = client.get_metric_history(run.info.run_id, "train/policy_loss")
    assert sorted(m.step for m in history) == [64, 128, 192, 256]
    assert [m.value for m in client.get_metric_history(run.info.run_id, "global_step")] == [64, 128, 192, 256]
    assert run.info.status == "FINISHED"


def test_tensorboard_hparams_tab_and_histograms(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(parse_args([*CP, "--total-steps", "128", "--hooks.loggers", "csv", "tensorboard",
                      "--hooks.histogram-every", "1", "--out-dir", str(tmp_path)]))
    (log_dir,) = (tmp_path / "logs" / "tensorboard").glob("*/version_0")
    ea = EventAccumulator(str(log_dir), size_guidance={"histograms": 0})
    ea.Reload()
    assert {"hist/actions", "hist/values"} <= set(ea.Tags()["histograms"])
    assert [e.step for e in ea.Histograms("hist/actions")] == [64, 128]
    content = ea.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in content and "_hparams_/experiment" in content
    start = content["_hparams_/session_start_info"]
    assert b"ppo/learning_rate" in start and b"a2c/" not in start
    assert b"episode/return_mean" in content["_hparams_/experiment"]  # a metric column in the HParams tab
    hparams = json.loads(next((tmp_path / "logs" / "csv").rglob("hparams.json")).read_text())
    assert hparams["ppo/learning_rate"] == 0.001 and hparams["mlp/hidden"] == "[64, 64]"
    assert not any(k.startswith(("a2c/", "model/", "fx/")) for k in hparams)


@pytest.mark.parametrize("algo,section,other", [("a2c", "a2c/", "ppo/")])
def test_hparams_follow_the_algorithm(tmp_path, algo, section, other) -> None:
    train(parse_args(["--total-steps", "64", "--num-envs", "2", "--hooks.no-progress", "--out-dir", str(tmp_path)],
                     algo=algo))
    hparams = json.loads(next((tmp_path / "logs" / "csv").rglob("hparams.json")).read_text())
    assert any(k.startswith(section) for k in hparams) and not any(k.startswith(other) for k in hparams)


def test_wandb_artifacts_of_the_report_and_best_checkpoint(tmp_path, monkeypatch) -> None:
    from types import SimpleNamespace

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hooks.loggers import make_wandb_logger
    from hooks.wandb_artifacts import WandbArtifactsHook

    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    (tmp_path / "report").mkdir()
    plt.plot([0, 1, 0.5])
    plt.savefig(tmp_path / "report" / "equity_drawdown.png")
    plt.close()
    (tmp_path / "report" / "report.json").write_text('{"sharpe": 1.5}')
    (tmp_path / "checkpoints").mkdir()
    for name in ("last.ckpt", "step=1-m=2.ckpt"):
        (tmp_path / "checkpoints" / name).write_bytes(b"weights")
    logger = make_wandb_logger(tmp_path, "fake", run_id="fakerun01")
    run = SimpleNamespace(is_global_zero=True, fabric=SimpleNamespace(loggers=[logger]), out_dir=tmp_path,
                          run_id="fakerun01", global_step=64,
                          checkpoints=SimpleNamespace(best_path=str(tmp_path / "checkpoints" / "step=1-m=2.ckpt")))
    hook = WandbArtifactsHook()
    hook.on_training_start(run)
    summary = {"last_checkpoint": str(tmp_path / "checkpoints" / "last.ckpt")}
    hook.on_training_end(summary)
    run_dir = logger.run_dir
    logger.finalize("success")
    assert summary["wandb_artifacts"] == ["model-fakerun01", "report-fakerun01"]
    (data,) = run_dir.glob("run-*.wandb")
    raw = _wait_for(data, [b"report-fakerun01", b"report/equity_drawdown"])
    for needle in (b"model-fakerun01", b"best.ckpt", b"last.ckpt", b"report-fakerun01", b"report.json",
                   b"report/equity_drawdown", b"step-64"):
        assert needle in raw, needle
