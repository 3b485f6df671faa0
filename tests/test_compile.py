"""``--compile``: the policy's forward runs compiled, training still learns the same way, and the checkpoint is
the plain module's (a run continues without --compile, and the other way round)."""

import torch

from engine.checkpoint import read_checkpoint
from engine.ppo import parse_args, train

CP = ["cartpole", "--num-envs", "4", "--rollout-steps", "16", "--hooks.no-progress", "--ppo.update-epochs", "2",
      "--ppo.num-minibatches", "2", "--seed", "3"]


def test_compiled_run_saves_the_plain_module_and_resumes_eagerly(tmp_path) -> None:
    seen = {}

    class Probe:
        def on_training_start(self, run) -> None:
            seen["act"] = run.algo._act_forward
            seen["train"] = run.algo._train_forward

    out = tmp_path / "run"
    summary = train(parse_args([*CP, "--total-steps", "128", "--compile", "--out-dir", str(out)]), hooks=[Probe()])
    assert isinstance(seen["act"], torch._dynamo.eval_frame.OptimizedModule)
    assert seen["train"] is seen["act"]  # one process: training uses the compiled module too
    assert summary["global_step"] == 128
    state = read_checkpoint(out / "checkpoints" / "last.ckpt")
    keys = list(state["policy"].keys()) if "policy" in state else []
    assert keys and not any("_orig_mod" in k for k in keys), keys
    # the same run continues without --compile (a per-session flag), from the compiled run's checkpoint
    resumed = train(parse_args([*CP, "--total-steps", "192", "--out-dir", str(out)]))
    assert resumed["resumed_from"]["global_step"] == 128 and resumed["global_step"] == 192


def test_compile_gives_the_eager_numbers(tmp_path) -> None:
    eager = train(parse_args([*CP, "--total-steps", "128", "--out-dir", str(tmp_path / "e")]))
    compiled = train(parse_args([*CP, "--total-steps", "128", "--compile", "--out-dir", str(tmp_path / "c")]))
    for key in ("episode_return_mean", "global_step"):
        assert abs(eager[key] - compiled[key]) <= 1e-6 * max(1.0, abs(eager[key])), (key, eager[key], compiled[key])
