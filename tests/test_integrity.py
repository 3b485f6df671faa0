"""Checkpoint integrity and choice: a content hash inside every checkpoint, checked on every read (a flipped byte
in tensor data is *corrupt*); ``--resume auto`` continues the highest step recorded inside the files (ties by name),
never the newest file by time, and skips corrupt ones."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import torch

from engine.checkpoint import CheckpointError, content_hash, find_latest_valid, peek_step, read_checkpoint
from engine.convert import convert_file
from engine.ppo import parse_args, train
from tests.adversarial.fixtures import flip_tensor_byte

CP = ["cartpole", "--num-envs", "2", "--rollout-steps", "16", "--hooks.no-progress", "--ppo.num-minibatches", "2",
      "--ppo.update-epochs", "1", "--threads", "1", "--hooks.save-top-k", "0", "--hooks.checkpoint-every", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained in two sessions, 64 then 128 steps; ``old-64.ckpt`` beside it is the first one's checkpoint."""
    out = tmp_path_factory.mktemp("integrity") / "run"
    train(parse_args([*CP, "--total-steps", "64", "--out-dir", str(out)]))
    shutil.copy2(out / "checkpoints" / "last.ckpt", out.parent / "old-64.ckpt")
    train(parse_args([*CP, "--total-steps", "128", "--out-dir", str(out)]))
    return out


def test_a_flipped_byte_in_tensor_data_is_detected(run: Path, tmp_path: Path) -> None:
    bad = tmp_path / "flipped.ckpt"
    shutil.copy2(run / "checkpoints" / "last.ckpt", bad)
    flip_tensor_byte(bad)
    raw = torch.load(bad, map_location="cpu", weights_only=True)  # torch itself reads it without complaint
    assert raw["global_step"] == 128 and raw["integrity"]["sha256"] != content_hash(raw)
    with pytest.raises(CheckpointError, match=r"flipped\.ckpt is corrupt: its content does not match the hash"):
        read_checkpoint(bad)
    with pytest.raises(CheckpointError, match="flipped.ckpt is corrupt"):  # also where a run would continue it
        train(parse_args([*CP, "--total-steps", "192", "--out-dir", str(tmp_path / "fork"), "--resume", str(bad)]))
    assert not (tmp_path / "fork" / "summary.json").exists()


def test_resume_auto_skips_a_corrupt_newest_checkpoint(run: Path, tmp_path: Path) -> None:
    out = shutil.copytree(run, tmp_path / "run")
    shutil.copy2(run.parent / "old-64.ckpt", out / "checkpoints" / "step=64.ckpt")
    flip_tensor_byte(out / "checkpoints" / "last.ckpt")
    with pytest.warns(UserWarning, match="skipping checkpoint .*last.ckpt is corrupt"):
        assert find_latest_valid(out) == out / "checkpoints" / "step=64.ckpt"
    os.remove(out / "checkpoints" / "step=64.ckpt")
    before = (out / "checkpoints" / "last.ckpt").read_bytes()
    with pytest.raises(ValueError, match="no valid checkpoint to continue"), pytest.warns(UserWarning, match="corrupt"):
        train(parse_args([*CP, "--total-steps", "192", "--out-dir", str(out), "--resume", "auto"]))
    assert (out / "checkpoints" / "last.ckpt").read_bytes() == before  # nothing saved was changed


def test_resume_auto_is_not_fooled_by_a_newer_file_time(run: Path, tmp_path: Path) -> None:
    """The mtime trap: a backup copy of an older checkpoint, touched later, must not roll the run back."""
    out = shutil.copytree(run, tmp_path / "run")
    backup = out / "checkpoints" / "backup-copy.ckpt"
    shutil.copy2(run.parent / "old-64.ckpt", backup)
    later = time.time() + 3600
    os.utime(backup, (later, later))
    assert peek_step(backup) == 64 and peek_step(out / "checkpoints" / "last.ckpt") == 128
    assert find_latest_valid(out) == out / "checkpoints" / "last.ckpt"
    summary = train(parse_args([*CP, "--total-steps", "192", "--out-dir", str(out), "--resume", "auto"]))
    assert summary["resumed_from"]["global_step"] == 128 and summary["global_step"] == 192
    # ties go to the first by name: last.ckpt before a step=... file of the same step
    shutil.copy2(out / "checkpoints" / "last.ckpt", out / "checkpoints" / "step=000000192.ckpt")
    assert find_latest_valid(out) == out / "checkpoints" / "last.ckpt"


def test_every_writer_seals_its_checkpoint(run: Path, tmp_path: Path) -> None:
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["integrity"]["sha256"] == content_hash(ckpt)
    convert_file(run / "checkpoints" / "last.ckpt", tmp_path / "converted.ckpt")
    converted = torch.load(tmp_path / "converted.ckpt", map_location="cpu", weights_only=True)
    assert converted["integrity"]["sha256"] == content_hash(converted)
    assert list(tmp_path.glob("*.tmp")) == []
    # a hand-written checkpoint without the entry (older FxAI) is read unchecked
    torch.save({"global_step": 5}, tmp_path / "plain.ckpt")
    assert read_checkpoint(tmp_path / "plain.ckpt", convert=False)["global_step"] == 5
