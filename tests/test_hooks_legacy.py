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


# -- the old system's (trainer, payload) form and its metric names, in a real run --------------------------------
CARTPOLE = ["cartpole", "--total-steps", "512", "--num-envs", "4", "--rollout-steps", "32", "--hooks.no-progress",
            "--ppo.update-epochs", "2", "--seed", "5"]


class KeepBestModel:
    """The callback plan's "before" checkpoint callback: ``on_cycle_complete(self, trainer, metrics)``."""

    def __init__(self, save_dir) -> None:
        self.save_dir = save_dir
        self.best_reward = -float("inf")
        self.seen: list[tuple[float, float]] = []

    def on_cycle_complete(self, trainer, metrics):
        self.seen.append((metrics["episode_reward_mean"], metrics["episode/return_mean"]))
        if metrics["episode_reward_mean"] > self.best_reward:
            self.best_reward = metrics["episode_reward_mean"]
            self.write(trainer.model, "best_model.pt")

    def write(self, model, filename) -> None:
        import torch

        torch.save(model.state_dict(), f"{self.save_dir}/{filename}")


class LegacyPruner:
    """The old Optuna callback's use of the metrics: ``episode_reward_mean`` at ``timesteps_total``."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, int]] = []

    def on_metrics_computed(self, metrics):
        self.reports.append((metrics.get("episode_reward_mean", 0), metrics["timesteps_total"]))


def test_seed_on_cycle_complete_trainer_metrics_callback_plugs_in(tmp_path) -> None:
    import math

    import torch

    from engine.ppo import parse_args, train

    keep, pruner = KeepBestModel(tmp_path), LegacyPruner()
    summary = train(parse_args([*CARTPOLE, "--out-dir", str(tmp_path / "run")]), hooks=[keep, pruner])
    assert summary["cycles"] == 4 and len(keep.seen) == 4
    for legacy, new in keep.seen:  # the alias is the engine's value, NaN before the first episode ends
        assert legacy == new or (math.isnan(legacy) and math.isnan(new))
    finite = [v for v, _ in keep.seen if not math.isnan(v)]
    assert finite and keep.best_reward == max(finite)
    state = torch.load(tmp_path / "best_model.pt", weights_only=True)
    final = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["policy"]
    assert state.keys() == final.keys()
    assert [step for _, step in pruner.reports] == [128, 256, 384, 512]
    # the old names are for the hooks only: the logged metrics do not carry them
    header = (tmp_path / "run" / "logs").rglob("metrics.csv").__next__().read_text().splitlines()[0]
    assert "episode/return_mean" in header and "episode_reward_mean" not in header and "timesteps_total" not in header


def test_a_method_with_three_arguments_is_refused_before_any_work(tmp_path) -> None:
    import pytest

    from engine.ppo import parse_args, train

    class ThreeArgs:
        def on_cycle_complete(self, trainer, module, metrics):
            pass

    with pytest.raises(ValueError, match=r"ThreeArgs\.on_cycle_complete requires 3 positional"):
        train(parse_args([*CARTPOLE, "--out-dir", str(tmp_path)]), hooks=[ThreeArgs()])
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "checkpoints").exists()


def test_two_argument_methods_get_the_run_and_the_legacy_payload() -> None:
    seen = []

    class Old:
        def on_episode_end(self, trainer, episode_info):
            seen.append((trainer, episode_info["reward"]))

        def on_cycle_complete(self, trainer, metrics):
            seen.append((trainer, metrics["m"]))

        def on_step_end(self, info, extra=None):  # one required argument: the payload alone
            seen.append(("step", info["global_step"], extra))

    run = object()
    bus = HookBus([Old()], run=run)
    bus.fire("on_episode_end", {"reward": 2.5})
    bus.fire("on_cycle_complete", {"cycle": 1, "global_step": 8, "metrics": {"m": 0.5}})
    bus.fire("on_step_end", {"global_step": 3})
    assert seen == [(run, 2.5), (run, 0.5), ("step", 3, None)]
