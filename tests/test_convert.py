"""Checkpoint conversion: a format-1 checkpoint (the layout before the redesign, rebuilt by hand from a
current one) converts with ``python -m engine.convert`` and resumes directly; a newer format is refused."""

from __future__ import annotations

import copy

import pytest
import torch

from engine.checkpoint import CheckpointError, read_checkpoint
from engine.convert import main as convert_main
from engine.formats import CHECKPOINT_FORMAT, checkpoint_format, conversion_steps
from engine.loop import load_config
from engine.ppo import parse_args, train

CP = ["cartpole", "--total-steps", "256", "--num-envs", "2", "--rollout-steps", "32", "--hooks.no-progress",
      "--ppo.update-epochs", "1", "--ppo.learning-rate", "0.001", "--seed", "4"]


def as_format_1(ckpt: dict) -> dict:
    """A current checkpoint dict in the shape FxAI wrote before the redesign."""
    old = copy.deepcopy(ckpt)
    for key in ("format", "config_class", "run", "best_checkpoint", "env_spec"):
        old.pop(key)
    old["meta"]["format"] = 1
    cfg = old["config"]
    for section in ("ppo", "a2c"):
        sec = cfg[section]
        sec["anneal_lr"] = sec.pop("lr_schedule") == "linear"
        for key in ("lr_final", "lr_warmup", "accumulate_grad_batches"):
            sec.pop(key, None)
    cfg["data"], cfg["report_split"] = cfg["fx"].pop("data"), cfg["fx"].pop("report_split")
    cfg["eval_episodes"], cfg["hooks"]["eval_episodes"] = cfg["hooks"]["eval_episodes"], None
    cfg["hooks"]["metrics_window"] = cfg.pop("metrics_window")
    for key in ("checkpoint_every_minutes", "phases", "wandb_tags", "histogram_every"):
        cfg["hooks"].pop(key)
    cfg.pop("overwrite")
    old["algo"].pop("lr_schedule")
    old["algo"].pop("overrides")
    return old


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("fmt")
    train(parse_args([*CP, "--out-dir", str(out / "run")]))
    current = read_checkpoint(out / "run" / "checkpoints" / "last.ckpt", convert=False)
    old_path = out / "format1.ckpt"
    torch.save(as_format_1(current), old_path)
    return out, current, old_path


def test_steps_are_registered_for_every_format() -> None:
    assert conversion_steps(1) == ["configs.config_tree_1_to_2"]
    assert conversion_steps(2) == ["engine.run_record", "algos.lr_schedule_2_to_3"]
    assert conversion_steps(3) == ["engine.env_spec", "envs.fx.observations_3_to_4"]
    assert CHECKPOINT_FORMAT == 4


def test_convert_command_writes_the_current_format(trained, capsys) -> None:
    out, current, old_path = trained
    assert checkpoint_format(read_checkpoint(old_path, convert=False)) == 1
    new = out / "converted.ckpt"
    assert convert_main([str(old_path), str(new)]) == 0
    assert "format 1 -> 4" in capsys.readouterr().out
    got = read_checkpoint(new, convert=False)
    assert got["format"] == 4 and "converted_from" not in got and got["env_spec"] is None
    assert got["config_class"] == "configs.train:TrainConfig"
    assert load_config(got, new) == load_config(current, "current")  # the same config, field for field
    # the schedule state rebuilt: 4 updates planned (256 steps / 64 per cycle), 4 done
    assert got["algo"]["lr_schedule"]["progress"] == {"horizon": 4, "anchor_update": 0, "anchor_progress": 0.0}
    assert got["algo"]["scheduler"]["last_epoch"] == 4
    assert got["run"] == {"id": None, "version": 0, "resumes": 0, "loggers": {}}
    for k, v in current["policy"].items():
        assert torch.equal(got["policy"][k], v)
    with pytest.raises(SystemExit) as exit_:  # never over an existing file
        convert_main([str(old_path), str(new)])
    assert exit_.value.code == 2
    assert "exists" in capsys.readouterr().err


def test_a_format_1_checkpoint_resumes_directly(trained) -> None:
    out, current, old_path = trained

    class Lr:
        lrs: list[float] = []

        def on_metrics_computed(self, metrics):
            self.lrs.append(metrics["train/lr"])

    probe = Lr()
    summary = train(parse_args([*CP, "--total-steps", "512", "--ppo.lr-final", "0.0", "--resume", str(old_path),
                                "--out-dir", str(out / "forked")]), hooks=[probe])
    assert summary["resumed_from"]["global_step"] == 256 and summary["global_step"] == 512
    assert probe.lrs == [0.0] * 4  # the old linear schedule had ended at 0 and continues there


def test_a_newer_format_is_refused(tmp_path, trained) -> None:
    _, current, _ = trained
    future = copy.deepcopy(current)
    future["format"] = CHECKPOINT_FORMAT + 1
    torch.save(future, tmp_path / "future.ckpt")
    with pytest.raises(CheckpointError, match="newer than this FxAI"):
        read_checkpoint(tmp_path / "future.ckpt")
