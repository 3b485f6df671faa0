"""Training phases: parsing, transitions on step and metric triggers with their settings (LR scale,
entropy, clip), the phase on the on_update_start payload, and a resume that continues in its phase."""

from __future__ import annotations

import pytest

from engine.ppo import parse_args, train
from hooks.phases import parse_phases

PHASES = ["warmup:0:lr=0.1", "exploration:0.25:ent=0.05", "exploitation:cycle>=4:ent=0,clip=0.1",
          "fine_tuning:0.75:lr=0.5"]
CP = ["cartpole", "--total-steps", "512", "--num-envs", "2", "--rollout-steps", "32", "--hooks.no-progress",
      "--ppo.update-epochs", "1", "--seed", "9", "--hooks.phases", *PHASES]


def test_parse_phases() -> None:
    p = parse_phases(PHASES)
    assert [x.name for x in p] == ["warmup", "exploration", "exploitation", "fine_tuning"]
    assert p[1].fraction == 0.25 and p[2].metric == "cycle" and p[2].op == ">=" and p[2].value == 4
    assert p[2].settings == {"ent_coef": 0.0, "clip_coef": 0.1} and p[0].settings == {"lr_scale": 0.1}
    for bad, why in [("a", "needs a name and a trigger"), ("a:1.5", "not in"), ("a:x>y", "neither"),
                     ("a:0:speed=2", "unknown setting"), ("a:0:lr=0", "must be > 0")]:
        with pytest.raises(ValueError, match=rf"--hooks.phases '{bad}'.*{why}"):
            parse_phases([bad])
    with pytest.raises(ValueError, match="named twice"):
        parse_phases(["a:0", "a:0.5"])


class Probe:
    def __init__(self):
        self.rows: list[tuple] = []
        self.announced: list[dict] = []

    def on_update_start(self, info):
        self.announced.append(dict(info["phase"]))

    def on_metrics_computed(self, m):
        self.rows.append((int(m["cycle"]), m["train/phase"], m["train/lr"], m["train/ent_coef"], m["train/clip_coef"]))


class StopAfter:
    def __init__(self, cycles):
        self.cycles = cycles

    def on_cycle_complete(self, info):
        return info["cycle"] < self.cycles


def test_phase_transitions_and_settings(tmp_path) -> None:
    probe = Probe()
    summary = train(parse_args([*CP, "--out-dir", str(tmp_path)]), hooks=[probe])
    lr, clip = 1e-3, 0.2  # the cartpole preset: clip anneals with the scheduled learning rate (1 - u / 8)
    expected = []
    for c in range(1, 9):
        phase = 0 if c == 1 else 1 if c < 5 else 2 if c == 5 else 3
        scale = {0: 0.1, 3: 0.5}.get(phase, 1.0)
        ent = 0.05 if phase == 1 else 0.0
        clip_c = 0.1 if phase == 2 else clip * (1 - (c - 1) / 8)
        expected.append((c, float(phase), lr * scale * (1 - c / 8), ent, clip_c))
    for got, want in zip(probe.rows, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-12), (got, want)
    changed = [(i + 1, a["name"], a.get("previous")) for i, a in enumerate(probe.announced) if a["changed"]]
    assert changed == [(2, "exploration", "warmup"), (5, "exploitation", "exploration"),
                       (6, "fine_tuning", "exploitation")]
    assert probe.announced[4]["reason"] == "cycle = 4 >= 4" and probe.announced[4]["settings"] == \
        {"ent_coef": 0.0, "clip_coef": 0.1}
    assert [(p["phase"], p["global_step"]) for p in summary["phases"]] == \
        [("warmup", 0), ("exploration", 128), ("exploitation", 320), ("fine_tuning", 384)]


def test_phases_resume_where_they_were(tmp_path) -> None:
    whole, first, second = Probe(), Probe(), Probe()
    train(parse_args([*CP, "--out-dir", str(tmp_path / "whole")]), hooks=[whole])
    train(parse_args([*CP, "--out-dir", str(tmp_path / "split")]), hooks=[first, StopAfter(4)])
    summary = train(parse_args([*CP, "--out-dir", str(tmp_path / "split")]), hooks=[second])
    assert summary["resumed_from"]["global_step"] == 256
    assert first.rows + second.rows == pytest.approx(whole.rows, abs=1e-12)
    assert [a["name"] for a in first.announced + second.announced] == [a["name"] for a in whole.announced]


def test_a2c_has_no_clip_phase_setting(tmp_path) -> None:
    with pytest.raises(ValueError, match="--hooks.phases: phase 'x' sets clip"):
        train(parse_args(["--total-steps", "64", "--num-envs", "2", "--hooks.no-progress", "--hooks.phases",
                          "x:0:clip=0.1", "--out-dir", str(tmp_path)], algo="a2c"))
