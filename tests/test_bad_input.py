"""Bad input fails before any work with one clear error naming the file or flag; nothing saved is lost."""

import subprocess
import sys

import pytest

from engine.checkpoint import CheckpointError, read_checkpoint
from engine.ppo import parse_args, train
from tests.paths import ROOT

CP = ["cartpole", "--num-envs", "2", "--rollout-steps", "16", "--hooks.no-progress",
      "--ppo.num-minibatches", "2", "--ppo.update-epochs", "1"]


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "engine.ppo", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    train(parse_args([*CP, "--total-steps", "64", "--out-dir", str(out)]))
    return out


def test_corrupt_checkpoint_named_explicitly(tmp_path):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    with pytest.raises(CheckpointError, match=r"broken\.ckpt is corrupt"):
        train(parse_args([*CP, "--total-steps", "64", "--out-dir", str(tmp_path / "o"), "--resume", str(bad)]))
    assert not (tmp_path / "o" / "summary.json").exists()  # no training happened
    res = _cli(*CP, "--total-steps", "64", "--out-dir", str(tmp_path / "o"), "--resume", str(bad))
    assert res.returncode == 2 and "broken.ckpt" in res.stderr and "Traceback" not in res.stderr


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="nope.ckpt does not exist"):
        train(parse_args([*CP, "--out-dir", str(tmp_path), "--resume", str(tmp_path / "nope.ckpt")]))


def test_incompatible_checkpoint_lists_the_mismatch_and_loses_nothing(trained):
    last = trained / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    with pytest.raises(CheckpointError) as err:
        train(parse_args([*CP, "--total-steps", "128", "--out-dir", str(trained), "--resume", "auto",
                          "--mlp.hidden", "32", "32"]))
    msg = str(err.value)
    assert "last.ckpt does not fit this run" in msg and "network" in msg and "32" in msg
    # found from the settings alone, before any env is built or any file touched
    with pytest.raises(CheckpointError, match="env: checkpoint 'CartPole-v1' vs this run 'Acrobot-v1'"):
        train(parse_args(["gym", "--env", "Acrobot-v1", "--policy", "mlp", "--num-envs", "2", "--rollout-steps", "16",
                          "--hooks.no-progress", "--out-dir", str(trained), "--resume", str(last)]))
    assert last.read_bytes() == before
    assert read_checkpoint(last)["global_step"] == 64


def test_unwritable_out_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"--out-dir .*a_file/run.* is not writable"):
        train(parse_args([*CP, "--out-dir", str(blocker / "run")]))
    res = _cli(*CP, "--out-dir", str(blocker / "run"))
    assert res.returncode == 2 and "--out-dir" in res.stderr


@pytest.mark.parametrize("flags,needle", [
    (["--num-envs", "0"], "--num-envs"),
    (["--total-steps", "-5"], "--total-steps"),
    (["--ppo.num-minibatches", "3"], "--ppo.num-minibatches"),
    (["--ppo.gamma", "1.5"], "--ppo.gamma"),
    (["--ppo.ent-coef-final", "-0.1"], "--ppo.ent-coef-final"),
    (["--precision", "bf17"], "--precision"),
    (["--env", "CartPole-v9"], "CartPole-v9"),
    (["--preset", "no-such"], "--preset"),
])
def test_bad_flags_name_the_flag(tmp_path, flags, needle):
    res = _cli(*CP, "--out-dir", str(tmp_path), *flags)
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr and "Traceback" not in res.stderr
