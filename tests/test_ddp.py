"""CPU DDP with 2 gloo processes: parameters stay identical across ranks; only rank 0 writes."""

import json
import subprocess
import sys
from tests.paths import ROOT, child_env



def test_two_process_ddp_keeps_ranks_identical_and_rank0_writes(tmp_path):
    out, probe = tmp_path / "run", tmp_path / "probe"
    env = child_env()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "ddp_worker.py"), str(out), str(probe),
         "--total-steps", "2048", "--num-envs", "4", "--rollout-steps", "64", "--seed", "5",
         "--hooks.no-progress", "--hooks.checkpoint-every", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((probe / "rank0.json").read_text())
    r1 = json.loads((probe / "rank1.json").read_text())
    # gradients were all-reduced: after 4 updates both ranks hold the same parameters
    assert r0["digest"] == r1["digest"]
    assert r0["world_size"] == r1["world_size"] == 2
    # the clock counts both ranks' env steps: 4 cycles x 64 steps x 4 envs x 2 ranks
    assert r0["global_step"] == r1["global_step"] == 2048
    # rank 0 wrote the run's files, rank 1 wrote nothing under the run dir
    assert any("last.ckpt" in w for w in r0["writes"]) and any("summary.json" in w for w in r0["writes"])
    assert r1["writes"] == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["global_step"] == 2048
    # metrics were reduced across ranks: both ranks report the same episode return
    assert r0["episode_return_mean"] == r1["episode_return_mean"]
