"""An old-style callback (some of the events, old argument names, no base class) plugs into HookBus unchanged."""

from __future__ import annotations

from engine.events import HookBus
from hooks import MetricsHook


class LegacyCallback:
    def __init__(self) -> None:
        self.started = 0
        self.rewards: list[float] = []
        self.seen_metrics: list[dict] = []

    def on_training_start(self):  # no payload argument at all
        self.started += 1

    def on_episode_end(self, episode_info):
        self.rewards.append(episode_info["reward"])

    def on_metrics_computed(self, metrics):
        self.seen_metrics.append(dict(metrics))
        metrics["legacy/episodes"] = len(self.rewards)


def test_legacy_callback_receives_correct_values() -> None:
    legacy = LegacyCallback()
    bus = HookBus([MetricsHook(window=10), legacy])
    assert bus.has("on_episode_end") and not bus.has("on_step_end")
    assert bus.fire("on_training_start", object()) is False
    for i, ret in enumerate([1.5, -0.5, 2.0]):
        bus.fire("on_episode_end", {"env_index": i, "return": ret, "reward": ret, "length": 10, "terminated": True,
                                    "truncated": False, "final_info": None, "global_step": 8 * (i + 1)})
    metrics = {"train/loss": 0.25}
    bus.fire("on_metrics_computed", metrics)
    assert legacy.started == 1 and legacy.rewards == [1.5, -0.5, 2.0]
    # it ran after MetricsHook, so it saw its keys; what it added reaches the dict that gets logged
    assert legacy.seen_metrics[0]["episode/return_mean"] == 1.0 and legacy.seen_metrics[0]["train/loss"] == 0.25
    assert metrics["legacy/episodes"] == 3
    assert bus.state_dict().keys() == {"0:MetricsHook"}  # no state_dict on the legacy class: skipped
