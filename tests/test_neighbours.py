"""Neighbours: one live run per run directory (a lock naming its owner refuses a second one with one line, exit 3;
a dead run's lock is taken over), temp files unique per writer, removed after a failed write and at the next start."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.checkpoint import read_checkpoint
from engine.cli import main
from engine.errors import RunDirBusy
from engine.files import remove_stale_temps, temp_path, write_atomic
from engine.lock import LOCK_NAME, RunLock
from engine.ppo import parse_args, train
from tests.paths import ROOT, child_env

CP = ["cartpole", "--num-envs", "2", "--rollout-steps", "16", "--hooks.no-progress", "--ppo.num-minibatches", "2",
      "--ppo.update-epochs", "1", "--threads", "1"]


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def test_a_second_run_on_a_live_run_dir_is_refused_with_one_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    env = child_env()
    first = subprocess.Popen([sys.executable, "-m", "engine.ppo", *CP, "--total-steps", "100000000", "--out-dir",
                              str(out), "--hooks.checkpoint-every", "2"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while not (out / "checkpoints" / "last.ckpt").exists():
            assert first.poll() is None, first.communicate()[1][-2000:]
            if time.monotonic() - t0 > 240:
                pytest.fail("the first run did not start")
            time.sleep(0.1)
        for extra in ([], ["--resume", "auto"], ["--overwrite"]):  # continue it, or even start it over: refused
            with pytest.raises(SystemExit) as exit_:
                main([*CP, "--total-steps", "64", "--out-dir", str(out), *extra])
            err = capsys.readouterr().err
            assert exit_.value.code == 3, err
            (line,) = [e for e in err.splitlines() if e.startswith("error:")]
            assert f"in use by another run (pid {first.pid} on {socket.gethostname()}" in line
            assert "Traceback" not in err
        assert first.poll() is None  # the first run is untouched and still training
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
        assert first.returncode == 143, err[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert read_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] > 0
    assert not (out / LOCK_NAME).exists()  # released at the end


def test_the_lock_of_a_dead_run_is_taken_over(tmp_path: Path, capsys) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 999_999_999, "host": socket.gethostname(),
                                                  "started": time.time() - 3600, "command": "python -m engine.ppo"}))
    summary = train(parse_args([*CP, "--total-steps", "64", "--out-dir", str(tmp_path)]))
    assert summary["global_step"] == 64
    err = capsys.readouterr().err
    assert "took over the lock of an earlier run" in err and "pid 999999999" in err and "no longer running" in err
    with RunLock(tmp_path) as lock:  # a held lock refuses, in this process too
        with pytest.raises(RunDirBusy, match=f"pid {os.getpid()}"):
            RunLock(tmp_path).acquire()
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid() and lock.previous is None


def test_temp_files_are_per_writer_and_left_overs_go_at_the_next_start(tmp_path: Path, capsys) -> None:
    a, b = temp_path(tmp_path / "last.ckpt"), temp_path(tmp_path / "last.ckpt")
    assert a != b and a.name.startswith(f"last.ckpt.{os.getpid()}.") and a.name.endswith(".tmp")
    train(parse_args([*CP, "--total-steps", "64", "--out-dir", str(tmp_path)]))
    ck = tmp_path / "checkpoints"
    (ck / "last.ckpt.tmp").write_bytes(b"x" * 1000)  # an older FxAI's fixed name
    (ck / "last.ckpt.999999999.0badf00d.tmp").write_bytes(b"x" * 1000)  # its writer is dead
    live = ck / f"step=1.ckpt.{os.getppid()}.0badf00d.tmp"  # a live process's: not ours to remove
    live.write_bytes(b"x")
    (ck / "notes.tmp").write_text("not a temp file of ours")
    train(parse_args([*CP, "--total-steps", "128", "--out-dir", str(tmp_path)]))
    assert "removed 2 temp file(s)" in capsys.readouterr().err
    assert sorted(p.name for p in ck.glob("*.tmp")) == sorted([live.name, "notes.tmp"])
    assert remove_stale_temps(tmp_path) == []


def test_a_failed_write_removes_its_temp_file_and_keeps_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "summary.json"
    write_atomic(target, "old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old" and list(tmp_path.glob("*.tmp")) == []


class FailingSave:
    """Makes the checkpoint of cycle 3 fail mid-write (the disk is full)."""

    def on_training_start(self, run) -> None:
        self.run = run

    def on_cycle_complete(self, info) -> None:
        if info["cycle"] == 2:
            real = self.run.fabric.save

            def full_disk(path, state):
                real(path, state)
                raise OSError(28, "No space left on device", str(path))

            self.run.fabric.save = full_disk


def test_a_failed_checkpoint_leaves_no_temp_file_and_the_previous_checkpoint(tmp_path: Path, capsys) -> None:
    ck = tmp_path / "checkpoints"
    with pytest.raises(SystemExit) as exit_:
        from engine.cli import run_command

        run_command(lambda: train(parse_args([*CP, "--total-steps", "4096", "--out-dir", str(tmp_path),
                                              "--hooks.checkpoint-every", "1"]), hooks=[FailingSave()]))
    err = capsys.readouterr().err
    assert exit_.value.code == 5, err  # the machine failed the run (not bad input, not a bug)
    assert "No space left on device" in err and f"last good checkpoint: {ck / 'last.ckpt'}" in err
    assert list(ck.glob("*.tmp")) == [] and read_checkpoint(ck / "last.ckpt")["global_step"] == 2 * 32
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "failed"
