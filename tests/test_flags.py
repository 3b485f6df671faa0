"""Every numeric flag is checked for range and finiteness in one walk before any work, and the flags that bound
each other (or ask the machine for what it lacks) fail just as early: one ``error:`` line naming the flag and its
allowed range, exit code 2, and nothing saved changed.

The bad-flag cases are the adversarial battery's own (``tests/adversarial/cases.py``), run here in-process."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from engine.cli import main
from engine.launch import launcher_detected
from engine.ranges import Interval, check_numbers, unranged_fields
from tests.adversarial.cases import FX_FLAGS, TRAIN_FLAGS, Case

CP = ["cartpole", "--num-envs", "2", "--rollout-steps", "16", "--hooks.no-progress", "--ppo.num-minibatches", "2",
      "--ppo.update-epochs", "1", "--threads", "1"]


def _argv(case: Case, tmp_path: Path) -> list[str]:
    (tmp_path / "a_file").write_text("not a directory")
    return [a.replace("{out}", str(tmp_path / "out")).replace("{file}", str(tmp_path / "a_file")) for a in case.args]


def _skip_if_the_machine_allows(case: Case) -> None:
    if "cuda" in case.name and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    if "launcher" in case.name and launcher_detected():
        pytest.skip("a multi-node launcher started this process")


@pytest.mark.parametrize("case", TRAIN_FLAGS + FX_FLAGS, ids=lambda c: c.name)
def test_bad_flag_is_one_line_before_any_work(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _skip_if_the_machine_allows(case)
    with pytest.raises(SystemExit) as exit_:
        main(_argv(case, tmp_path), algo=case.module.rsplit(".", 1)[1])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert exit_.value.code == 2, err
    assert len(errors) == 1 and case.needle in errors[0], err
    assert "Traceback" not in err
    out = tmp_path / "out"
    assert not (out / "summary.json").exists() and not (out / "checkpoints").exists()


def _files(directory: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(directory)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    main([*CP, "--total-steps", "64", "--out-dir", str(out)])
    return out


@pytest.mark.parametrize("flags", [
    ["--ppo.max-grad-norm", "-1"], ["--ppo.learning-rate", "nan"], ["--threads", "100000"], ["--num-nodes", "2"],
    ["--hooks.checkpoint-every-minutes", "inf"], ["--out-dir", ""], ["--resume", "auto", "--ppo.vf-coef", "-1"],
], ids=lambda f: f[-2])
def test_a_bad_flag_on_a_used_run_dir_changes_nothing(trained: Path, flags: list[str], capsys) -> None:
    before = _files(trained)
    argv = [*CP, "--total-steps", "128", "--out-dir", str(trained), *flags]
    if "launcher" in flags and launcher_detected():
        pytest.skip("a multi-node launcher started this process")
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2, capsys.readouterr().err
    assert _files(trained) == before


def test_every_numeric_flag_of_every_command_has_a_range() -> None:
    from configs import TrainConfig
    from engine.bench import BenchArgs
    from engine.tune import TuneArgs
    from envs.fx.research.backtest import BacktestArgs
    from envs.fx.live.export import ExportArgs
    from envs.fx.live.paper import PaperArgs
    from envs.fx.research.walkforward import WalkForwardArgs

    for cls in (TrainConfig, TuneArgs, BacktestArgs, WalkForwardArgs, BenchArgs, ExportArgs, PaperArgs):
        assert unranged_fields(cls) == [], cls.__name__


def test_ranges_name_the_flag_and_the_interval() -> None:
    from configs import get_preset

    cfg = get_preset("cartpole")
    check_numbers(cfg)
    cfg.ppo.max_grad_norm = float("inf")
    with pytest.raises(ValueError, match=r"^--ppo\.max-grad-norm: must be a finite number in \(0, 1e9\] \(got inf\)$"):
        check_numbers(cfg)
    cfg.ppo.max_grad_norm = 0.5
    cfg.mlp.hidden = (64, 0)
    with pytest.raises(ValueError, match=r"^--mlp\.hidden: must be an integer in \[1, 65536\] \(got \(64, 0\)\)$"):
        check_numbers(cfg)
    assert 1.0 in Interval.parse("(0, 1]") and 0.0 not in Interval.parse("(0, 1]")
    assert float("nan") not in Interval.parse("[-inf, inf]")
