"""bf16-mixed through Fabric on CPU: training runs, weights stay finite, and the RL targets stay fp32."""

import torch

from engine import keys as K
from engine.checkpoint import read_checkpoint
from engine.ppo import parse_args, train


class DtypeProbe:
    def __init__(self):
        self.dtypes = {}

    def on_rollout_end(self, info):
        buf = info["buffer"]
        for key in (K.ADVANTAGE, K.VALUE_TARGET, K.LOG_PROB, K.VALUE, K.REWARD):
            self.dtypes[key] = buf[key].dtype


def test_bf16_mixed_transformer_keeps_targets_fp32(tmp_path):
    probe = DtypeProbe()
    cfg = parse_args(["--policy", "transformer", "--precision", "bf16-mixed", "--total-steps", "256",
                      "--num-envs", "4", "--rollout-steps", "32", "--out-dir", str(tmp_path), "--report-split", "none",
                      "--hooks.eval-every", "0", "--hooks.no-progress", "--fx.synthetic-n-bars", "12000",
                      "--model.d-model", "16", "--model.n-layers", "1", "--model.n-heads", "2"])
    summary = train(cfg, hooks=[probe])
    assert summary["precision"] == "bf16-mixed" and summary["nonfinite_updates"] == 0
    assert probe.dtypes and all(d == torch.float32 for d in probe.dtypes.values()), probe.dtypes
    params = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["policy"]
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in params.values())
