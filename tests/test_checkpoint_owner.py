"""engine.checkpoint owns checkpoints: the final last.ckpt is written once per step, whoever asks."""

from __future__ import annotations

from pathlib import Path

from engine.checkpoint import read_checkpoint
from engine.ppo import parse_args, train


class SavedProbe:
    def __init__(self) -> None:
        self.saved: list[tuple[str, int]] = []

    def on_checkpoint_saved(self, info: dict) -> None:
        self.saved.append((Path(info["path"]).name, int(info["global_step"])))


def test_final_last_checkpoint_is_written_once(tmp_path: Path) -> None:
    probe = SavedProbe()
    # 4 cycles of 64 steps; the periodic hook writes last.ckpt after cycles 2 and 4, the engine at the end
    summary = train(parse_args(["cartpole", "--total-steps", "256", "--num-envs", "2", "--rollout-steps", "32",
                                "--hooks.checkpoint-every", "2", "--hooks.no-progress", "--out-dir", str(tmp_path)]),
                    hooks=[probe])
    assert probe.saved == [("last.ckpt", 128), ("last.ckpt", 256)]  # not a second write at step 256
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert summary["last_checkpoint"] == str(last) and read_checkpoint(last)["global_step"] == 256
    assert read_checkpoint(last)["config_class"] == "configs.train:TrainConfig"
