"""CheckpointHook (last + top-k), ContinuousTrainingHook and resolve_resume, with a fake run (no Fabric)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from engine.checkpoint import CheckpointError, read_checkpoint
from engine.events import HookBus
from engine.checkpoint import resolve_resume
from hooks import CheckpointHook, ContinuousTrainingHook


class FakeRun:
    """Just enough of engine.loop.Run: saves {"global_step", "hooks"} with torch.save and fires the event."""

    def __init__(self, out_dir: Path, hooks: list, is_global_zero: bool = True) -> None:
        self.out_dir = out_dir
        self.bus = HookBus(hooks)
        self.global_step = 0
        self.cycle = 0
        self.is_global_zero = is_global_zero
        self.finite = True
        self.saves: list[Path] = []

    def save_checkpoint(self, path: Path, best: bool = False) -> Path | None:
        if not self.finite:
            return None
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"global_step": self.global_step, "hooks": self.bus.state_dict()}, path)
        self.saves.append(path)
        self.bus.fire("on_checkpoint_saved", {"path": str(path), "global_step": self.global_step})
        return path

    def cycle_with(self, metrics: dict, steps: int = 100) -> None:
        self.cycle += 1
        self.global_step += steps
        self.bus.fire("on_metrics_computed", metrics)
        self.bus.fire("on_cycle_complete", {"cycle": self.cycle, "global_step": self.global_step, "metrics": metrics})


def _names(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("*.ckpt"))


def test_metric_filename_format() -> None:
    from hooks.checkpoint import metric_filename

    assert metric_filename(12288, "val/sharpe", 1.23454) == "step=000012288-val_sharpe=1.2345.ckpt"


def test_top_k_max_keeps_best_and_deletes_the_rest(tmp_path: Path) -> None:
    hook = CheckpointHook(every_n_cycles=0, monitor="val/sharpe", mode="max", save_top_k=2, save_last=False)
    run = FakeRun(tmp_path, [hook])
    run.bus.fire("on_training_start", run)
    for v in [0.5, None, 1.5, float("nan"), 1.0, 0.7, 2.0, float("inf")]:
        run.cycle_with({} if v is None else {"val/sharpe": v})
    ckdir = tmp_path / "checkpoints"
    assert [e["score"] for e in hook.best] == [2.0, 1.5]
    assert _names(ckdir) == sorted(["step=000000700-val_sharpe=2.0000.ckpt", "step=000000300-val_sharpe=1.5000.ckpt"])
    # 0.5 and 1.5 fill the top 2; 1.0 evicts 0.5; 0.7 loses to 1.0; 2.0 evicts 1.0; NaN/inf never enter
    assert [p.name.split("=")[-1] for p in run.saves] == ["0.5000.ckpt", "1.5000.ckpt", "1.0000.ckpt", "2.0000.ckpt"]
    # the best file's own hook state already lists itself
    best = read_checkpoint(ckdir / "step=000000700-val_sharpe=2.0000.ckpt")
    assert [e["score"] for e in best["hooks"]["0:CheckpointHook"]["best"]] == [2.0, 1.5]


def test_top_k_min_mode_and_state_roundtrip(tmp_path: Path) -> None:
    hook = CheckpointHook(every_n_cycles=0, monitor="val/max_drawdown", mode="min", save_top_k=1, save_last=False)
    run = FakeRun(tmp_path, [hook])
    run.bus.fire("on_training_start", run)
    for v in [0.3, 0.1, 0.2]:
        run.cycle_with({"val/max_drawdown": v})
    assert [e["score"] for e in hook.best] == [0.1]
    assert _names(tmp_path / "checkpoints") == ["step=000000200-val_max_drawdown=0.1000.ckpt"]
    state = torch.load(run.saves[-1], weights_only=True)["hooks"]["0:CheckpointHook"]
    resumed = CheckpointHook(every_n_cycles=0, monitor="val/max_drawdown", mode="min", save_top_k=1, save_last=False)
    resumed.load_state_dict(state)
    run2 = FakeRun(tmp_path, [resumed])
    run2.global_step = 300
    run2.bus.fire("on_training_start", run2)
    run2.cycle_with({"val/max_drawdown": 0.15})  # worse than the restored best: not saved
    run2.cycle_with({"val/max_drawdown": 0.05})
    assert _names(tmp_path / "checkpoints") == ["step=000000500-val_max_drawdown=0.0500.ckpt"]


def test_last_every_n_cycles(tmp_path: Path) -> None:
    hook = CheckpointHook(every_n_cycles=2, save_top_k=0)
    run = FakeRun(tmp_path, [hook])
    run.bus.fire("on_training_start", run)
    for _ in range(5):
        run.cycle_with({})
    assert [p.name for p in run.saves] == ["last.ckpt", "last.ckpt"]  # after cycles 2 and 4
    assert read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 400
    run.bus.fire("on_training_end", {})
    # the final last.ckpt is the engine's (engine.checkpoint.Checkpoints.save_last, tests/test_checkpoint_owner.py)
    assert len(run.saves) == 2


def test_only_rank_zero_deletes_and_refused_save_changes_nothing(tmp_path: Path) -> None:
    hook = CheckpointHook(every_n_cycles=0, monitor="m", save_top_k=1, save_last=False)
    run = FakeRun(tmp_path, [hook], is_global_zero=False)
    run.bus.fire("on_training_start", run)
    run.cycle_with({"m": 1.0})
    run.cycle_with({"m": 2.0})
    assert len(_names(tmp_path / "checkpoints")) == 2  # a non-zero rank never deletes
    run.finite = False
    run.cycle_with({"m": 3.0})
    assert [e["score"] for e in hook.best] == [2.0]


def test_checkpoint_hook_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        CheckpointHook(mode="up")
    with pytest.raises(ValueError, match="save_top_k"):
        CheckpointHook(save_top_k=-2)


def _write(path: Path, step: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step}, path)
    return path


def test_resolve_resume_auto_explicit_and_errors(tmp_path: Path) -> None:
    assert resolve_resume(None, tmp_path) is None
    assert resolve_resume("auto", tmp_path) is None  # fresh start: nothing there
    old = _write(tmp_path / "checkpoints" / "a.ckpt", 10)
    new = _write(tmp_path / "checkpoints" / "b.ckpt", 20)
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    broken = tmp_path / "checkpoints" / "c.ckpt"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(UserWarning, match="c.ckpt"):
        assert resolve_resume("auto", tmp_path) == new
    assert resolve_resume(str(old), tmp_path) == old
    with pytest.raises(CheckpointError, match="missing.ckpt"):
        resolve_resume(str(tmp_path / "missing.ckpt"), tmp_path)
    with pytest.raises(CheckpointError, match="c.ckpt"):
        resolve_resume(str(broken), tmp_path)
    with pytest.raises(CheckpointError, match="directory"):
        resolve_resume(str(tmp_path), tmp_path)


def test_continuous_hook_versions_survive_checkpoints(tmp_path: Path) -> None:
    hook = ContinuousTrainingHook()
    run = FakeRun(tmp_path, [hook])
    run.bus.fire("on_training_start", run)
    assert hook.resumes == 0 and hook.resumed_from is None
    run.global_step = 1000
    first = run.save_checkpoint(tmp_path / "checkpoints" / "last.ckpt")

    # process 2: the engine restores hook states, then fires on_checkpoint_loaded
    hook2 = ContinuousTrainingHook()
    run2 = FakeRun(tmp_path, [hook2])
    run2.bus.load_state_dict(read_checkpoint(first)["hooks"])
    run2.global_step = 1000
    run2.bus.fire("on_checkpoint_loaded", {"path": str(first), "global_step": 1000})
    assert hook2.resumes == 1 and hook2.resumed_from == str(first)
    run2.global_step = 2000
    second = run2.save_checkpoint(tmp_path / "checkpoints" / "last.ckpt")

    # process 3, with the other order (event first, then the state): still counted once
    hook3 = ContinuousTrainingHook()
    run3 = FakeRun(tmp_path, [hook3])
    run3.bus.fire("on_checkpoint_loaded", {"path": str(second), "global_step": 2000})
    run3.bus.load_state_dict(read_checkpoint(second)["hooks"])
    assert hook3.resumes == 2
    assert [(h["resume"], h["global_step"]) for h in hook3.history] == [(1, 1000), (2, 2000)]
    assert all(isinstance(h["time"], str) for h in hook3.history)
    summary: dict = {}
    run3.bus.fire("on_training_end", summary)
    assert len(summary["resume_history"]) == 2 and summary["resumed_from"] == str(second)
    assert not math.isnan(hook3.history[-1]["global_step"])


def test_last_by_wall_time(tmp_path: Path) -> None:
    now = [0.0]
    steps: list[int] = []
    hook = CheckpointHook(every_n_cycles=0, save_top_k=0, every_minutes=2.0, clock=lambda: now[0])
    run = FakeRun(tmp_path, [hook])
    run.save_checkpoint = lambda path, best=False: steps.append(run.global_step) or Path(path)
    run.bus.fire("on_training_start", run)
    for minutes in (0.5, 1.9, 2.1, 3.0, 4.0, 4.2, 9.0):  # the clock at the end of each cycle (100 steps each)
        now[0] = 60.0 * minutes
        run.cycle_with({})
    # 2 minutes after the start (cycle 3 at 2.1), 2 after that (cycle 6 at 4.2), then cycle 7 at 9.0
    assert steps == [300, 600, 700]
