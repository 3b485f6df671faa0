"""EvaluationHook, EarlyStoppingHook and OptunaHook through the HookBus with a fake run."""

from __future__ import annotations

import optuna
import pytest

from engine.events import Hook, HookBus
from hooks import EarlyStoppingHook, EvaluationHook, OptunaHook


class FakeRun:
    def __init__(self, hooks: list, eval_values: list[float] | None = None) -> None:
        self.bus = HookBus(hooks)
        self.global_step = 0
        self.cycle = 0
        self.stop_reasons: list[str] = []
        self.eval_calls: list[int | None] = []
        self._eval_values = list(eval_values or [])

    def request_stop(self, reason: str) -> None:
        self.stop_reasons.append(reason)

    def fire(self, event: str, payload: object = None) -> bool:
        return self.bus.fire(event, payload)

    def evaluate(self, num_episodes: int | None = None) -> dict[str, float]:
        self.eval_calls.append(num_episodes)
        v = self._eval_values.pop(0)
        return {"sharpe": v, "return_mean": 10 * v, "label": "not a number"}

    def start(self) -> None:
        self.bus.fire("on_training_start", self)

    def cycle_with(self, metrics: dict | None = None, steps: int = 64) -> tuple[dict, bool]:
        self.cycle += 1
        self.global_step += steps
        metrics = dict(metrics or {})
        stop = self.bus.fire("on_metrics_computed", metrics)
        return metrics, stop


class Recorder(Hook):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def on_evaluation_start(self, info: dict) -> None:
        self.events.append(("start", info))

    def on_evaluation_end(self, info: dict) -> None:
        self.events.append(("end", info))

    def on_metrics_computed(self, metrics: dict) -> None:
        self.events.append(("metrics", dict(metrics)))


def test_evaluation_every_n_cycles_adds_val_keys_and_fires_events() -> None:
    ev, rec = EvaluationHook(every_n_cycles=2, num_episodes=3), Recorder()
    run = FakeRun([ev, rec], eval_values=[0.5, 1.25])
    run.start()
    seen = [run.cycle_with({"train/loss": 1.0})[0] for _ in range(4)]
    assert [("val/sharpe" in m) for m in seen] == [False, True, False, True]
    assert seen[1]["val/sharpe"] == 0.5 and seen[3]["val/return_mean"] == 12.5
    assert "val/label" not in seen[1]
    assert run.eval_calls == [3, 3]
    kinds = [k for k, _ in rec.events]
    assert kinds == ["metrics", "start", "end", "metrics", "metrics", "start", "end", "metrics"]
    assert rec.events[1][1] == {"cycle": 2, "global_step": 128}
    assert rec.events[2][1]["metrics"] == {"val/sharpe": 0.5, "val/return_mean": 5.0}
    assert rec.events[3][1]["val/sharpe"] == 0.5  # hooks after the evaluator see the val/ keys
    assert ev.last_metrics == {"val/sharpe": 1.25, "val/return_mean": 12.5} and ev.last_step == 256
    fresh = EvaluationHook(every_n_cycles=2)
    fresh.load_state_dict(ev.state_dict())
    assert fresh.cycles_seen == 4 and fresh.last_metrics == ev.last_metrics


def test_the_last_cycle_is_evaluated_even_off_the_schedule() -> None:
    ev = EvaluationHook(every_n_cycles=3)
    run = FakeRun([ev], eval_values=[0.5, 2.0])
    run.total_steps = 5 * 64  # 5 cycles: the schedule evaluates cycle 3, the end adds cycle 5
    run.start()
    seen = [run.cycle_with()[0] for _ in range(5)]
    assert [("val/sharpe" in m) for m in seen] == [False, False, True, False, True]
    assert seen[4]["val/sharpe"] == 2.0 and ev.last_step == 320


def test_early_stopping_patience_min_delta_and_nan() -> None:
    hook = EarlyStoppingHook("val/sharpe", patience=2, min_delta=0.1, mode="max")
    run = FakeRun([hook])
    run.start()
    results = []
    for v in [1.0, None, 1.05, 1.2, float("nan"), 1.25]:  # 1.05 and 1.25 are within min_delta
        results.append(run.cycle_with({} if v is None else {"val/sharpe": v})[1])
    assert results == [False, False, False, False, False, True]
    assert hook.best == 1.2 and hook.wait == 2 and hook.stopped
    assert len(run.stop_reasons) == 1 and "val/sharpe" in run.stop_reasons[0]
    again = EarlyStoppingHook("val/sharpe", patience=2, min_delta=0.1)
    again.load_state_dict(hook.state_dict())
    assert (again.best, again.wait, again.stopped) == (1.2, 2, True)


def test_early_stopping_min_mode_resets_wait_on_improvement() -> None:
    hook = EarlyStoppingHook("train/loss", patience=3, mode="min")
    run = FakeRun([hook])
    run.start()
    stops = [run.cycle_with({"train/loss": v})[1] for v in [5.0, 6.0, 7.0, 4.0, 4.0, 4.5, 4.0]]
    assert stops == [False, False, False, False, False, False, True]


def test_early_stopping_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="patience"):
        EarlyStoppingHook("m", patience=0)
    with pytest.raises(ValueError, match="mode"):
        EarlyStoppingHook("m", mode="best")


def test_optuna_hook_reports_at_global_steps_and_prunes() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    curves = [[1.0, 2.0, 3.0], [0.1, 0.2, 0.3]]
    hooks = []
    for curve in curves:
        trial = study.ask()
        hook = OptunaHook(trial, "episode/return_mean", mode="max")
        run = FakeRun([hook])
        run.start()
        run.cycle_with({"episode/return_mean": float("nan")})  # not reported
        for v in curve:
            _, stop = run.cycle_with({"episode/return_mean": v, "other": 0.0})
            if stop:
                break
        hooks.append((trial, hook, run))
        if hook.pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, hook.last_value)
    (t0, h0, _), (t1, h1, r1) = hooks
    assert not h0.pruned and h0.reports == 3 and h0.best_value == 3.0
    assert study.trials[0].intermediate_values == {128: 1.0, 192: 2.0, 256: 3.0}
    assert h1.pruned and h1.reports == 1 and h1.last_value == 0.1  # below the median at step 128
    assert len(r1.stop_reasons) == 1 and "pruned" in r1.stop_reasons[0]
    assert study.trials[1].state == optuna.trial.TrialState.PRUNED


def test_optuna_hook_min_mode_tracks_best_and_ignores_missing_key() -> None:
    class NeverPrune:
        number = 0

        def __init__(self) -> None:
            self.reports: list[tuple[float, int]] = []

        def report(self, value: float, step: int) -> None:
            self.reports.append((value, step))

        def should_prune(self) -> bool:
            return False

    trial = NeverPrune()
    hook = OptunaHook(trial, "val/loss", mode="min")
    run = FakeRun([hook])
    run.start()
    for m in [{"val/loss": 3.0}, {}, {"val/loss": 1.0}, {"val/loss": 2.0}]:
        run.cycle_with(m, steps=10)
    assert trial.reports == [(3.0, 10), (1.0, 30), (2.0, 40)]
    assert hook.best_value == 1.0 and hook.last_value == 2.0 and not hook.pruned
    assert hook.seen_keys == ["val/loss"]
