"""MetricsHook, RewardComponentsHook, LearningRateMonitor and EpisodeMetricsHook through the HookBus."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.events import HookBus
from hooks import EpisodeMetricsHook, LearningRateMonitor, MetricsHook, RewardComponentsHook


def _episode(ret: float, length: int, **final_info: float) -> dict:
    return {"env_index": 0, "return": ret, "reward": ret, "length": length, "terminated": True,
            "truncated": False, "final_info": final_info or None, "global_step": 0}


def _roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_metrics_hook_windowed_and_running_statistics() -> None:
    hook = MetricsHook(window=3)
    bus = HookBus([hook])
    assert bus.fire("on_metrics_computed", m := {}) is False and m == {}  # nothing before an episode
    for ret, length, pnl in [(2.0, 10, 1.0), (-1.0, 20, -3.0), (4.0, 30, 5.0), (-3.0, 40, 0.0)]:
        bus.fire("on_episode_end", _episode(ret, length, **{"reward/pnl": pnl, "note": "text"}))
    metrics: dict = {}
    bus.fire("on_metrics_computed", metrics)
    # window = last 3 episodes: returns -1, 4, -3; lengths 20, 30, 40; pnl -3, 5, 0
    assert metrics["episode/return_mean"] == pytest.approx(0.0)
    assert metrics["episode/return_std"] == pytest.approx(math.sqrt((1 + 16 + 9) / 3))
    assert metrics["episode/return_min"] == -3.0 and metrics["episode/return_max"] == 4.0
    assert metrics["episode/length_mean"] == pytest.approx(30.0)
    assert metrics["episode/win_rate"] == pytest.approx(1 / 3)
    assert metrics["reward/pnl_episode"] == pytest.approx(2 / 3)
    # whole run: returns 2, -1, 4, -3
    assert metrics["episode/return_mean_all"] == pytest.approx(0.5)
    assert metrics["episode/length_mean_all"] == pytest.approx(25.0)
    assert metrics["episode/win_rate_all"] == pytest.approx(0.5)
    assert metrics["episode/return_max_all"] == 4.0
    assert metrics["episode/count"] == 4.0
    assert "reward/note_episode" not in metrics


def test_metrics_hook_keeps_engine_keys() -> None:
    hook = MetricsHook(window=2)
    hook.on_episode_end(_episode(1.0, 5))
    metrics = {"episode/return_mean": 7.5, "episode/count": 12.0}  # reduced over ranks by the engine
    HookBus([hook]).fire("on_metrics_computed", metrics)
    assert metrics["episode/return_mean"] == 7.5 and metrics["episode/count"] == 12.0
    assert metrics["episode/length_mean"] == 5.0


def test_metrics_hook_state_roundtrip_continues_exactly() -> None:
    a = MetricsHook(window=2)
    for r in (1.0, -2.0, 3.0):
        a.on_episode_end(_episode(r, 10, **{"reward/cost": -0.5}))
    b = MetricsHook(window=2)
    b.load_state_dict(_roundtrip(a.state_dict()))
    for h in (a, b):
        h.on_episode_end(_episode(5.0, 20))
    assert a.compute() == b.compute()
    assert b.compute()["episode/return_mean_all"] == pytest.approx((1 - 2 + 3 + 5) / 4)
    assert b.compute()["episode/return_mean"] == pytest.approx(4.0)


def test_metrics_hook_rejects_payload_without_return() -> None:
    with pytest.raises(ValueError, match="return"):
        MetricsHook().on_episode_end({"length": 3})


def test_reward_components_rollout_means_with_masks() -> None:
    hook = RewardComponentsHook()
    bus = HookBus([hook])
    bus.fire("on_rollout_start", {"cycle": 1, "global_step": 0})
    bus.fire("on_step_end", {"info": {"reward/pnl": torch.tensor([1.0, 3.0]), "reward/cost": np.array([-1.0, -2.0]),
                                      "_reward/cost": np.array([True, False]), "other": torch.ones(2)}})
    bus.fire("on_step_end", {"info": {"reward/pnl": torch.tensor([2.0, 6.0]), "reward/cost": np.array([-4.0, -8.0])}})
    metrics: dict = {}
    bus.fire("on_metrics_computed", metrics)
    assert metrics == {"reward/pnl": pytest.approx(3.0), "reward/cost": pytest.approx((-1 - 4 - 8) / 3)}
    bus.fire("on_rollout_start", {"cycle": 2, "global_step": 4})
    bus.fire("on_step_end", {"info": {"reward/pnl": torch.tensor([10.0, 10.0])}})
    metrics = {}
    bus.fire("on_metrics_computed", metrics)
    assert metrics == {"reward/pnl": 10.0}


def _run_with_optimizer(lrs: list[float]) -> SimpleNamespace:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)])
    return SimpleNamespace(algo=SimpleNamespace(optimizer=opt))


def test_learning_rate_monitor_single_and_multiple_groups() -> None:
    run = _run_with_optimizer([0.01])
    hook = LearningRateMonitor()
    bus = HookBus([hook])
    bus.fire("on_training_start", run)
    run.algo.optimizer.param_groups[0]["lr"] = 0.005  # as a scheduler would
    metrics: dict = {}
    bus.fire("on_metrics_computed", metrics)
    assert metrics == {"train/lr": 0.005}
    run2 = _run_with_optimizer([0.1, 0.2])
    bus.fire("on_training_start", run2)
    metrics = {}
    bus.fire("on_metrics_computed", metrics)
    assert metrics == {"train/lr/pg0": 0.1, "train/lr/pg1": 0.2}


def test_episode_metrics_hook_logs_every_k_on_rank_zero_only() -> None:
    logged: list[tuple[dict, int]] = []
    run = SimpleNamespace(is_global_zero=True, global_step=0, log=lambda m, step: logged.append((m, step)))
    bus = HookBus([EpisodeMetricsHook(every_k=2)])
    bus.fire("on_training_start", run)
    for i in range(5):
        ep = _episode(float(i), 10 + i, **{"reward/pnl": 0.5 * i, "_mask": 1.0})
        ep["global_step"] = 100 * (i + 1)
        bus.fire("on_episode_end", ep)
    assert [s for _, s in logged] == [200, 400]
    assert logged[0][0] == {"episode/return": 1.0, "episode/length": 11.0, "episode/info/reward/pnl": 0.5}
    other = SimpleNamespace(is_global_zero=False, global_step=0, log=lambda m, step: logged.append((m, step)))
    bus2 = HookBus([EpisodeMetricsHook(every_k=1)])
    bus2.fire("on_training_start", other)
    bus2.fire("on_episode_end", _episode(1.0, 3))
    assert len(logged) == 2
