"""A 2-process CPU DDP run (gloo) driven by tests/test_ddp.py through a subprocess.

Fabric's ``ddp`` launcher re-runs this script for rank 1. Each rank records a digest of its
parameters after training, and every file write it makes under the run dir (via a Python
audit hook), into ``<probe_dir>/rank<r>.json`` — the probe dir is outside the run dir.
"""

import atexit
import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from engine.ppo import parse_args, train

out_dir, probe_dir = Path(sys.argv[1]), Path(sys.argv[2])
extra = sys.argv[3:]
writes: list[str] = []


def audit(event: str, args: tuple) -> None:
    if event == "open" and args and isinstance(args[0], (str, os.PathLike)):
        path, mode = str(args[0]), args[1] if len(args) > 1 else "r"
        writable = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(mode, int) and mode & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writable and str(out_dir) in os.path.abspath(path):
            writes.append(path)
    elif event in ("os.rename", "os.remove", "os.mkdir") and args and str(out_dir) in str(args[0]):
        writes.append(f"{event}:{args[0]}")


class ParamProbe:
    def on_training_start(self, run):
        self.run = run
        sys.addaudithook(audit)

    def on_training_end(self, summary):
        flat = torch.cat([p.detach().flatten().float() for p in self.run.algo.policy.parameters()])
        record = {
            "digest": hashlib.sha256(flat.numpy().tobytes()).hexdigest(),
            "global_step": summary["global_step"],
            "world_size": summary["world_size"],
            "episode_return_mean": summary["episode_return_mean"],
        }
        rank = self.run.rank

        def dump():  # at process exit, so writes made after this event are recorded too
            record["writes"] = sorted(set(writes))
            probe_dir.mkdir(parents=True, exist_ok=True)
            (probe_dir / f"rank{rank}.json").write_text(json.dumps(record))

        atexit.register(dump)


if __name__ == "__main__":
    cfg = parse_args(["cartpole", "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp",
                      "--out-dir", str(out_dir), *extra])
    train(cfg, hooks=[ParamProbe()])
