"""engine.tune: one tyro command line (search space, trainer preset and flags), pruning and study persistence
with a stub trainer (no env)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import optuna
import pandas as pd
import pytest

from engine import tune
from engine.events import HookBus

optuna.logging.set_verbosity(optuna.logging.WARNING)


def quality(p) -> float:
    """Final return of the stub: best at learning_rate 1e-3, clip 0.2, lambda 0.95."""
    return 500.0 - 150.0 * abs(math.log10(p.learning_rate) + 3.0) - 400.0 * abs(p.clip_coef - 0.2) \
        - 300.0 * abs(p.gae_lambda - 0.95)


class StubRun:
    def __init__(self, cfg, hooks: list) -> None:
        self.cfg, self.bus, self.global_step, self.stop_reason = cfg, HookBus(hooks), 0, None
        self.total_steps = cfg.total_steps

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason


def make_stub_train(calls: list, metric: str = "episode/return_mean"):
    def train(cfg, hooks: list) -> dict:
        calls.append(cfg)
        run = StubRun(cfg, hooks)
        run.bus.fire("on_training_start", run)
        q, cycles = quality(cfg.ppo), 10
        for c in range(1, cycles + 1):
            run.global_step = c * cfg.total_steps // cycles
            run.bus.fire("on_metrics_computed", {metric: q * c / cycles, "train/loss": 1.0 / c})
            if run.stop_reason:
                break
        return {"global_step": run.global_step}

    return train


def _args(tmp_path: Path, *argv: str) -> tune.TuneArgs:
    return tune.parse_cli(["--out-dir", str(tmp_path), *argv])


def test_apply_params_sets_fields_and_names_unknown_ones() -> None:
    base = tune.parse_cli([]).train
    cfg = tune.apply_params(base, {"learning_rate": 1e-3, "num_minibatches": 8})
    assert cfg.ppo.learning_rate == 1e-3 and cfg.ppo.num_minibatches == 8 and base.ppo.num_minibatches == 4  # the preset's, untouched
    with pytest.raises(ValueError, match="learning_rat"):
        tune.apply_params(base, {"learning_rat": 1e-3})
    with pytest.raises(ValueError, match="nothing"):
        tune.apply_params(base, {}, section="nothing")


def test_default_space_names_are_ppo_fields() -> None:
    from algos import PPOConfig

    assert {name for name, _ in tune.SearchSpace().items()} <= {f.name for f in dataclasses.fields(PPOConfig)}


def test_cli_parses_tune_flags_space_and_trainer_flags_together(tmp_path: Path) -> None:
    args = _args(tmp_path, "--n-trials", "3", "--seed", "7", "--ppo.update-epochs", "4",
                 "--space.learning-rate.high", "0.01", "--space.fixed", "ent_coef")
    assert args.n_trials == 3 and args.metric is None
    assert args.train.seed == 7 and args.train.ppo.update_epochs == 4 and args.train.out_dir == str(tmp_path)
    assert args.train.preset == "cartpole" and args.train.total_steps == tune.DEFAULT_TOTAL_STEPS
    assert args.space.learning_rate.high == 0.01 and "ent_coef" not in dict(args.space.items())
    fx = tune.parse_cli(["fx", "--total-steps", "5000", "--out-dir", str(tmp_path)])  # the preset comes first
    assert fx.train.env == "fx" and fx.train.total_steps == 5000
    assert tune.default_metric(fx.train) == "val/sharpe" and tune.default_metric(args.train) == "episode/return_mean"
    with pytest.raises(SystemExit):  # a misspelled trainer flag fails while parsing, before any study exists
        _args(tmp_path, "--ppo.learnig-rate", "0.1")
    assert not (tmp_path / "study.db").exists()
    with pytest.raises(ValueError, match="--space.fixed"):
        _args(tmp_path, "--space.fixed", "nope").check()


def test_study_prunes_bad_trials_and_continues_from_storage(tmp_path: Path) -> None:
    calls: list = []
    args = _args(tmp_path, "--n-trials", "8", "--total-steps", "5000", "--ppo.update-epochs=2")
    study = tune.tune(args, train_fn=make_stub_train(calls), gc_after_trial=False)
    states = [t.state for t in study.trials]
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(states) == 8 and len(pruned) >= 1 and len(complete) >= 2
    assert len(pruned) + len(complete) == 8
    # every trial trained in its own directory with the shared flags and its own sample
    assert [c.out_dir for c in calls] == [str(tmp_path / f"trial_{i}") for i in range(8)]
    assert all(c.ppo.update_epochs == 2 and c.total_steps == 5000 for c in calls)
    for trial, cfg in zip(study.trials, calls):
        assert cfg.ppo.learning_rate == trial.params["learning_rate"]
        assert cfg.ppo.num_minibatches == trial.params["num_minibatches"]
    # a complete trial's value is the last reported value (the stub's final return); a pruned one stopped early
    for t in complete:
        assert t.value == pytest.approx(quality(calls[t.number].ppo))
        assert max(t.intermediate_values) == 5000
    for t in pruned:  # never before the warm-up (25% of 5000 steps), never at the end
        assert 1250 <= max(t.intermediate_values) < 5000
    assert study.best_value == max(t.value for t in complete)
    table = pd.read_csv(tmp_path / tune.RESULTS_FILE)
    assert len(table) == 8 and {"number", "state", "value", "params_learning_rate"} <= set(table.columns)
    assert (tmp_path / "study.db").is_file()

    # the same command again adds trials to the same study
    args2 = _args(tmp_path, "--n-trials", "2", "--total-steps", "5000")
    study2 = tune.tune(args2, train_fn=make_stub_train(calls), gc_after_trial=False)
    assert len(study2.trials) == 10 and calls[-1].out_dir == str(tmp_path / "trial_9")
    assert len(pd.read_csv(tmp_path / tune.RESULTS_FILE)) == 10
    assert "best trial #" in tune.best_trial_text(study2, "episode/return_mean")


def test_hyperband_pruner_runs(tmp_path: Path) -> None:
    args = _args(tmp_path, "--n-trials", "6", "--pruner", "hyperband", "--total-steps", "1000",
                 "--storage", "memory")
    study = tune.tune(args, train_fn=make_stub_train([]), gc_after_trial=False)
    assert len(study.trials) == 6 and isinstance(study.pruner, optuna.pruners.HyperbandPruner)
    assert not (tmp_path / "study.db").exists()
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in study.trials)


def test_missing_metric_fails_with_the_keys_seen(tmp_path: Path) -> None:
    args = _args(tmp_path, "--n-trials", "1", "--metric", "val/sharpe", "--storage", "memory")
    with pytest.raises(ValueError, match=r"val/sharpe.*episode/return_mean, train/loss"):
        tune.tune(args, train_fn=make_stub_train([]), gc_after_trial=False)


def test_main_prints_best(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = tune.main(["--out-dir", str(tmp_path), "--n-trials", "3", "--pruner", "none", "--storage", "memory"],
                   train_fn=make_stub_train([]))
    out = capsys.readouterr().out
    assert rc == 0 and "3 trials: 3 complete, 0 pruned" in out and "best trial #" in out
    assert "tune_results.csv" in out


def test_a_failing_trial_is_failed_with_its_reason_in_one_line(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    """An expected error inside a trial (here: the metric never logged) fails the trial with the reason stored on
    it, and the command ends with one error line (exit 2): Optuna's log of the failure carries no traceback."""
    with pytest.raises(SystemExit) as exit_:
        tune.main(["--out-dir", str(tmp_path), "--n-trials", "1", "--metric", "no/such"], train_fn=make_stub_train([]))
    err = capfd.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err, err
    (line,) = [e for e in err.splitlines() if e.startswith("error:")]
    assert "metric 'no/such' never appeared" in line
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{tmp_path / 'study.db'}")
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.FAIL and "never appeared" in trial.user_attrs["fail_reason"]
