"""A rollout without per-episode hooks asks the device nothing per step: the number of host reads
(``Tensor.item``, ``__bool__``, ``tolist``, ``nonzero``, ``__int__``, ``__float__``, ``numpy``) in one
rollout cycle does not grow with its length. Run on the CPU with the GPU behaviour forced (the loop's and
the FX env's ``host_checks`` off), on the FX env with episodes ending and truncating inside the rollout."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from configs import get_preset
from engine.ppo import train

READS = ("item", "__bool__", "tolist", "nonzero", "__int__", "__float__", "numpy", "__index__")


class CountReads:
    """Counts host reads of tensors between ``on_rollout_start`` and the end of the rollout's steps."""

    def __init__(self) -> None:
        self.counts: list[int] = []
        self._saved: dict[str, Any] = {}
        self._n = 0

    def on_training_start(self, run: Any) -> None:
        run.host_checks = False  # what a GPU run does
        run.envs.host_checks = False
        self.run = run

    def on_rollout_start(self, info: dict) -> None:
        self._n = 0
        for name in READS:
            orig = getattr(torch.Tensor, name)
            self._saved[name] = orig

            def counted(t: torch.Tensor, *a: Any, _orig: Any = orig, **kw: Any) -> Any:
                self._n += 1
                return _orig(t, *a, **kw)

            setattr(torch.Tensor, name, counted)

    def on_rollout_end(self, info: dict) -> None:  # after GAE, which reads nothing either
        for name, orig in self._saved.items():
            setattr(torch.Tensor, name, orig)
        self.counts.append(self._n)


def _run(tmp_path: Path, rollout_steps: int) -> tuple[list[int], dict]:
    cfg = get_preset("fx")
    fx = dataclasses.replace(cfg.fx, synthetic_n_bars=12_000, episode_bars=12, report_split="none")
    cfg = dataclasses.replace(cfg, fx=fx, policy="mlp", num_envs=8, rollout_steps=rollout_steps,
                              total_steps=2 * 8 * rollout_steps, builtin_hooks=False, out_dir=str(tmp_path))
    hook = CountReads()
    summary = train(cfg, hooks=[hook])
    return hook.counts, summary


def test_a_rollout_without_episode_hooks_reads_nothing_back_per_step(tmp_path: Path) -> None:
    short, _ = _run(tmp_path / "a", 16)
    long, summary = _run(tmp_path / "b", 64)
    assert summary["episodes"] > 0  # episodes ended (and truncated) inside the rollouts
    assert max(long) == max(short) <= 3, (short, long)  # the finished episodes, read once per rollout


@pytest.mark.parametrize("host_checks", [True, False])
def test_episode_statistics_are_the_same_with_and_without_host_checks(tmp_path: Path, host_checks: bool) -> None:
    cfg = get_preset("fx")
    fx = dataclasses.replace(cfg.fx, synthetic_n_bars=12_000, episode_bars=12, report_split="none")
    cfg = dataclasses.replace(cfg, fx=fx, policy="mlp", num_envs=4, rollout_steps=32, total_steps=4 * 32 * 2,
                              builtin_hooks=False, out_dir=str(tmp_path / str(host_checks)))

    class Listen:  # a per-episode listener: the per-step path
        def __init__(self) -> None:
            self.returns: list[float] = []

        def on_training_start(self, run: Any) -> None:
            run.host_checks = run.envs.host_checks = host_checks

        def on_episode_end(self, info: dict) -> None:
            self.returns.append(info["return"])

    class Quiet:
        def on_training_start(self, run: Any) -> None:
            run.host_checks = run.envs.host_checks = host_checks
            self.run = run

    listen, quiet = Listen(), Quiet()
    a = train(dataclasses.replace(cfg, out_dir=cfg.out_dir + "l"), hooks=[listen])
    b = train(cfg, hooks=[quiet])
    assert a["episodes"] == b["episodes"] > 0
    assert list(quiet.run.recent_returns) == pytest.approx(listen.returns[-len(quiet.run.recent_returns):], abs=1e-5)
