"""Exact resume and determinism: 2K cycles == K cycles + resume + K cycles, parameter for parameter."""

import torch

from engine.checkpoint import read_checkpoint
from engine.ppo import parse_args, train

FX_SMALL = ["--policy", "mlp", "--num-envs", "4", "--rollout-steps", "32", "--total-steps", "512",
            "--fx.synthetic-n-bars", "12000", "--fx.episode-bars", "200", "--report-split", "none",
            "--hooks.eval-every", "0", "--hooks.no-progress", "--hooks.save-top-k", "0", "--norm-obs",
            "--seed", "11", "--accelerator", "cpu", "--precision", "32-true"]


class StopAfter:
    def __init__(self, cycles):
        self.cycles = cycles

    def on_cycle_complete(self, info):
        return info["cycle"] < self.cycles  # False at cycle K asks the loop to stop


def _params(path):
    return read_checkpoint(path)["policy"]


def test_resume_is_exact(tmp_path):
    full, split = tmp_path / "full", tmp_path / "split"
    s_full = train(parse_args([*FX_SMALL, "--out-dir", str(full)]))
    assert s_full["cycles"] == 4
    s1 = train(parse_args([*FX_SMALL, "--out-dir", str(split)]), hooks=[StopAfter(2)])
    assert s1["cycles"] == 2 and s1["global_step"] == 256
    s2 = train(parse_args([*FX_SMALL, "--out-dir", str(split), "--resume", "auto"]))
    assert s2["resumed_from"]["global_step"] == 256
    assert s2["global_step"] == s_full["global_step"] == 512
    a, b = _params(full / "checkpoints" / "last.ckpt"), _params(split / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"parameter {k} differs after resume"
    ca, cb = read_checkpoint(full / "checkpoints" / "last.ckpt"), read_checkpoint(split / "checkpoints" / "last.ckpt")
    assert torch.equal(ca["obs_norm"]["high_freq"]["mean"], cb["obs_norm"]["high_freq"]["mean"])
    assert ca["episodes"] == cb["episodes"]
    # the optimizer moments continued exactly too
    for sa, sb in zip(ca["optimizer"]["state"].values(), cb["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])


def test_same_seed_same_summary(tmp_path):
    args = ["cartpole", "--total-steps", "1024", "--num-envs", "4", "--rollout-steps", "32",
            "--hooks.no-progress", "--seed", "7"]
    s1 = train(parse_args([*args, "--out-dir", str(tmp_path / "a")]))
    s2 = train(parse_args([*args, "--out-dir", str(tmp_path / "b")]))
    volatile = {"run_id", "wall_s", "sps", "sps_cpu", "out_dir", "last_checkpoint", "best_checkpoint"}
    assert {k: v for k, v in s1.items() if k not in volatile} == {k: v for k, v in s2.items() if k not in volatile}
    pa = _params(tmp_path / "a" / "checkpoints" / "last.ckpt")
    pb = _params(tmp_path / "b" / "checkpoints" / "last.ckpt")
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
