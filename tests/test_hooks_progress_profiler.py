"""ProgressBarHook (terminal bar and quiet non-TTY lines) and ProfilerHook (Chrome trace)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import torch

from engine.events import HookBus
from hooks import ProfilerHook, ProgressBarHook


def _drive(hook: ProgressBarHook, *, total: int, per_cycle: int, rank0: bool = True, start: int = 0) -> None:
    run = SimpleNamespace(total_steps=total, global_step=start, is_global_zero=rank0)
    bus = HookBus([hook])
    bus.fire("on_training_start", run)
    step, cycle = start, 0
    while step < total:
        step = min(step + per_cycle, total)
        cycle += 1
        metrics = {"perf/sps": 1000.0, "episode/return_mean": 10.0 + cycle}
        if cycle % 5 == 0:
            metrics["val/sharpe"] = 0.5
        bus.fire("on_cycle_complete", {"cycle": cycle, "global_step": step, "metrics": metrics})
    bus.fire("on_training_end", {})


def test_quiet_mode_prints_one_line_per_ten_percent() -> None:
    out = io.StringIO()
    _drive(ProgressBarHook(stream=out, is_tty=False), total=1000, per_cycle=30)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("[fxai]  12% step 120/1000") and "return 14" in lines[0]
    assert lines[-1].startswith("[fxai] 100% step 1000/1000") and "eta" not in lines[-1]
    assert "sharpe 0.5" in lines[-1] and "eta" in lines[3]


def test_quiet_mode_resumed_run_and_big_cycles() -> None:
    out = io.StringIO()
    _drive(ProgressBarHook(stream=out, is_tty=False, quiet_every_percent=25), total=1000, per_cycle=400, start=500)
    assert [ln.split(" step ")[1].split()[0] for ln in out.getvalue().splitlines()] == ["900/1000", "1000/1000"]


def test_tty_mode_draws_a_bar_and_other_ranks_stay_silent() -> None:
    out = io.StringIO()
    hook = ProgressBarHook(stream=out, is_tty=True)
    _drive(hook, total=500, per_cycle=100)
    text = out.getvalue()
    assert "500/500" in text and "sps" in text and "return" in text
    silent = io.StringIO()
    _drive(ProgressBarHook(stream=silent, is_tty=True), total=500, per_cycle=100, rank0=False)
    assert silent.getvalue() == ""


def test_profiler_writes_chrome_trace_for_the_chosen_cycles(tmp_path: Path) -> None:
    hook = ProfilerHook(start_cycle=1, num_cycles=2)
    run = SimpleNamespace(out_dir=tmp_path, fabric=SimpleNamespace(global_rank=0))
    bus = HookBus([hook])
    bus.fire("on_training_start", run)
    x = torch.randn(32, 32)
    for cycle in range(5):
        bus.fire("on_rollout_start", {"cycle": cycle + 1, "global_step": cycle})
        torch.mm(x, x)
        assert (hook.prof is not None) == (cycle in (1, 2))
        bus.fire("on_cycle_complete", {"cycle": cycle + 1, "global_step": cycle, "metrics": {}})
    summary: dict = {}
    bus.fire("on_training_end", summary)
    trace = tmp_path / "profiler" / "trace_rank0_cycles1-2.json"
    assert hook.trace_path == trace and summary["profiler_trace"] == str(trace)
    events = json.loads(trace.read_text())["traceEvents"]
    assert sum(1 for e in events if e.get("name") == "aten::mm") == 2
    assert "aten::mm" in (tmp_path / "profiler" / "trace_rank0_cycles1-2.txt").read_text()


def test_profiler_stops_at_training_end_when_run_is_short(tmp_path: Path) -> None:
    hook = ProfilerHook(start_cycle=0, num_cycles=10)
    bus = HookBus([hook])
    bus.fire("on_training_start", SimpleNamespace(out_dir=tmp_path))
    bus.fire("on_rollout_start", {})
    bus.fire("on_cycle_complete", {})
    bus.fire("on_training_end", {})
    assert hook.prof is None and (tmp_path / "profiler" / "trace_rank0_cycles0-0.json").is_file()


def test_no_return_is_shown_before_an_episode_has_ended() -> None:
    """Long episodes: the first cycles' mean return is NaN (no episode ended yet); the line leaves it out."""
    out = io.StringIO()
    hook = ProgressBarHook(stream=out, is_tty=False)
    run = SimpleNamespace(total_steps=100, global_step=0, is_global_zero=True)
    bus = HookBus([hook])
    bus.fire("on_training_start", run)
    bus.fire("on_cycle_complete", {"cycle": 1, "global_step": 50, "metrics": {"perf/sps": 1000.0,
                                                                             "episode/return_mean": float("nan")}})
    bus.fire("on_cycle_complete", {"cycle": 2, "global_step": 100, "metrics": {"perf/sps": 1000.0,
                                                                              "episode/return_mean": 3.5}})
    first, last = out.getvalue().splitlines()[0], out.getvalue().splitlines()[-1]
    assert "return" not in first and "nan" not in first and "sps 1000" in first
    assert "return 3.5" in last
