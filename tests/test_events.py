"""The hook bus alone (no env, no Fabric), and the event grammar of a real short run."""

import re

import pytest

from engine.events import EVENTS, Hook, HookBus


class Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):  # records any of the 16 events
        if name in EVENTS:
            return lambda payload=None: self.calls.append((name, payload))
        raise AttributeError(name)


def test_sixteen_events():
    assert len(EVENTS) == 16 and len(set(EVENTS)) == 16


def test_bus_dispatch_payload_and_no_payload():
    seen = []

    class Legacy:  # old-style: only some methods, old argument names, one without arguments
        def on_training_start(self):
            seen.append("start")

        def on_episode_end(self, episode_info):
            seen.append(episode_info["reward"])

        def on_metrics_computed(self, metrics):
            seen.append(metrics["episode/return_mean"])

    bus = HookBus([Legacy()])
    bus.fire("on_training_start", object())
    bus.fire("on_episode_end", {"reward": 3.5, "return": 3.5, "length": 7})
    bus.fire("on_metrics_computed", {"episode/return_mean": 1.25})
    bus.fire("on_step_end", {"global_step": 1})  # not implemented: ignored
    assert seen == ["start", 3.5, 1.25]
    assert not bus.has("on_step_end") and bus.has("on_episode_end")


def test_misspelled_event_is_rejected():
    class Typo:
        def on_episod_end(self, info):
            pass

    with pytest.raises(ValueError, match=re.escape("on_episod_end")):
        HookBus([Typo()])


def test_base_class_noops_are_not_dispatched():
    class OnlyCycle(Hook):
        def on_cycle_complete(self, info):
            return None

    bus = HookBus([OnlyCycle()])
    assert bus.has("on_cycle_complete")
    assert not any(bus.has(e) for e in EVENTS if e != "on_cycle_complete")


def test_any_hook_stops_but_all_run():
    ran = []

    class Stopper:
        def on_cycle_complete(self, info):
            ran.append("stopper")
            return False

    class After:
        def on_cycle_complete(self, info):
            ran.append("after")

    bus = HookBus([Stopper(), After()])
    assert bus.fire("on_cycle_complete", {}) is True
    assert ran == ["stopper", "after"]
    assert HookBus([After()]).fire("on_cycle_complete", {}) is False


def test_hook_state_roundtrip():
    class Counter:
        def __init__(self):
            self.n = 0

        def on_step_end(self, info):
            self.n += 1

        def state_dict(self):
            return {"n": self.n}

        def load_state_dict(self, s):
            self.n = s["n"]

    a = HookBus([Counter()])
    for _ in range(3):
        a.fire("on_step_end", {})
    b = HookBus([Counter()])
    b.load_state_dict(a.state_dict())
    assert b.hooks[0].n == 3


def test_hook_state_follows_its_class_when_positions_move():
    class Counter:
        def __init__(self, n=0):
            self.n = n

        def state_dict(self):
            return {"n": self.n}

        def load_state_dict(self, s):
            self.n = s["n"]

    class Other(Counter):
        pass

    saved = HookBus([Counter(5), Other(9)]).state_dict()
    restored = HookBus([Other(), Hook(), Counter()])  # order changed and a hook added
    restored.load_state_dict(saved)
    assert restored.hooks[0].n == 9 and restored.hooks[2].n == 5


def test_event_grammar_of_a_real_run(tmp_path):
    from engine.ppo import parse_args, train

    T, N = 8, 2
    cfg = parse_args(["cartpole", "--total-steps", "64", "--num-envs", str(N), "--rollout-steps",
                      str(T), "--out-dir", str(tmp_path), "--seed", "3", "--hooks.no-progress",
                      "--ppo.num-minibatches", "2", "--ppo.update-epochs", "1"])
    rec = Recorder()
    summary = train(cfg, hooks=[rec])
    names = [n for n, _ in rec.calls]
    # episode events interleave with steps; check them separately
    core = [n for n in names if n not in ("on_episode_start", "on_episode_end")]
    cycles = summary["cycles"]
    assert cycles == 4
    per_cycle = ["on_rollout_start", *["on_step_start", "on_step_end"] * T, "on_rollout_end",
                 "on_update_start", "on_update_end", "on_metrics_computed", "on_cycle_complete"]
    expected = ["on_training_start", *per_cycle * cycles, "on_checkpoint_saved", "on_training_end"]
    assert core == expected
    ends = [p for n, p in rec.calls if n == "on_episode_end"]
    starts = [p for n, p in rec.calls if n == "on_episode_start"]
    assert len(ends) == summary["episodes"] > 0
    assert len(starts) == N + len(ends)  # every env starts once, then once after each finished episode
    for p in ends:
        assert p["length"] > 0 and p["return"] == p["reward"] == float(p["length"])  # CartPole: +1 per step
    # an episode ends between a step_end and the next step_start
    for i, n in enumerate(names):
        if n == "on_episode_end":
            prev = [m for m in names[:i] if m in ("on_step_start", "on_step_end")][-1]
            assert prev == "on_step_end"
    metrics = [p for n, p in rec.calls if n == "on_metrics_computed"]
    assert all("train/policy_loss" in m and "perf/sps" in m for m in metrics)
    assert rec.calls[-1][1]["global_step"] == summary["global_step"] == 64
