"""PhaseHook: named training phases (e.g. warmup -> exploration -> exploitation -> fine-tuning), each with
its own learning-rate scale, entropy bonus and clip range, entered on step or metric triggers.

A phase is ``NAME:TRIGGER[:SETTINGS]`` (``--hooks.phases``, in order):

* ``TRIGGER``: a number ``f`` in [0, 1] (enter once ``global_step >= f * total_steps``), or
  ``METRIC>=VALUE`` / ``METRIC<=VALUE`` on the last cycle's metrics dict (e.g.
  ``episode/return_mean>=400``, ``val/sharpe>=1``). The first phase is active from the start
  (its trigger is not checked); phases only move forward, one or several at a time.
* ``SETTINGS``: comma-separated ``lr=SCALE`` (multiplies the scheduled learning rate),
  ``ent=COEF`` (entropy bonus) and ``clip=COEF`` (PPO clip range); a setting a phase leaves out
  goes back to the configured schedule. They are applied through the algorithm's overrides
  (:meth:`algos.base.Algorithm.set_overrides`), so they are checkpointed with it.

Triggers are checked in ``on_update_start``, right before the update they affect. The phase is
announced on that event: the hook is first in the built-in list and adds to the engine's
``on_update_start`` payload ``"phase": {"name", "index", "changed"}``, plus, on the update where
the phase changed, ``"previous"``, ``"reason"`` and ``"settings"``; every hook after it sees it
(the event vocabulary stays at 16). Each cycle's metrics get ``train/phase`` (the index).
The current phase, the transitions and the last values of the trigger metrics are the hook's
state: a resumed run continues in its phase.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.events import Hook
from hooks._util import to_float

SETTING_KEYS: dict[str, str] = {"lr": "lr_scale", "ent": "ent_coef", "clip": "clip_coef"}
"""Phase setting -> the algorithm override it sets."""

_METRIC_TRIGGER = re.compile(r"^(?P<metric>[^<>=]+?)\s*(?P<op>>=|<=)\s*(?P<value>\S+)$")


@dataclass(frozen=True)
class Phase:
    name: str
    trigger: str
    fraction: float | None = None
    metric: str | None = None
    op: str | None = None
    value: float | None = None
    settings: dict[str, float] = field(default_factory=dict)


def parse_phases(specs: Sequence[str]) -> list[Phase]:
    """Phases from ``NAME:TRIGGER[:SETTINGS]`` strings; ValueError naming ``--hooks.phases`` and the spec."""
    phases: list[Phase] = []
    for spec in specs:
        def bad(why: str) -> ValueError:
            return ValueError(f"--hooks.phases {spec!r}: {why} (form NAME:TRIGGER[:lr=S,ent=C,clip=C], TRIGGER a "
                              f"fraction of --total-steps in [0, 1] or METRIC>=VALUE / METRIC<=VALUE)")

        parts = spec.split(":", 2)
        if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
            raise bad("needs a name and a trigger")
        name, trigger = parts[0].strip(), parts[1].strip()
        if any(p.name == name for p in phases):
            raise bad(f"phase {name!r} is named twice")
        kwargs: dict[str, Any] = {}
        try:
            fraction = float(trigger)
        except ValueError:
            m = _METRIC_TRIGGER.match(trigger)
            if m is None:
                raise bad(f"trigger {trigger!r} is neither a fraction nor METRIC>=VALUE") from None
            try:
                value = float(m["value"])
            except ValueError:
                raise bad(f"trigger value {m['value']!r} is not a number") from None
            kwargs = {"metric": m["metric"], "op": m["op"], "value": value}
        else:
            if not 0.0 <= fraction <= 1.0:
                raise bad(f"trigger fraction {fraction} is not in [0, 1]")
            kwargs = {"fraction": fraction}
        settings: dict[str, float] = {}
        for item in (parts[2].split(",") if len(parts) == 3 and parts[2].strip() else []):
            key, _, raw = item.partition("=")
            key = key.strip()
            if key not in SETTING_KEYS:
                raise bad(f"unknown setting {key!r}; settings are {', '.join(SETTING_KEYS)}")
            try:
                v = float(raw)
            except ValueError:
                raise bad(f"setting {key}={raw!r} is not a number") from None
            if not math.isfinite(v) or v < 0 or (key != "ent" and v == 0):
                raise bad(f"setting {key}={v} must be {'>= 0' if key == 'ent' else '> 0'}")
            settings[SETTING_KEYS[key]] = v
        phases.append(Phase(name=name, trigger=trigger, settings=settings, **kwargs))
    return phases


class PhaseHook(Hook):
    """Moves through ``phases`` (see the module doc) and sets the algorithm's overrides for each."""

    def __init__(self, phases: Sequence[Phase]) -> None:
        if not phases:
            raise ValueError("PhaseHook: needs at least one phase")
        self.phases = list(phases)
        self.index = 0
        self.history: list[dict[str, Any]] = []
        self.last: dict[str, float] = {}  # last values of the trigger metrics
        self.run: Any = None

    @property
    def phase(self) -> Phase:
        return self.phases[self.index]

    def on_training_start(self, run: Any) -> None:
        self.run = run
        allowed = set(run.algo.OVERRIDES)
        for p in self.phases:
            unknown = sorted(set(p.settings) - allowed)
            if unknown:
                names = [k for k, v in SETTING_KEYS.items() if v in unknown]
                raise ValueError(f"--hooks.phases: phase {p.name!r} sets {', '.join(names)}, which --algo "
                                 f"{run.cfg.algo} does not have")
        if not self.history:
            self.history.append({"phase": self.phase.name, "global_step": int(run.global_step), "reason": "start"})
        self._apply()

    def _apply(self) -> None:
        self.run.algo.set_overrides(**{key: self.phase.settings.get(key) for key in self.run.algo.OVERRIDES})

    def _due(self, phase: Phase) -> str | None:
        """Why ``phase`` should start now (None: not yet)."""
        if phase.fraction is not None:
            at = phase.fraction * self.run.total_steps
            return f"global_step {self.run.global_step} >= {phase.fraction} x total_steps" \
                if self.run.global_step >= at else None
        value = self.last.get(phase.metric)
        if value is None or math.isnan(value):
            return None
        hit = value >= phase.value if phase.op == ">=" else value <= phase.value
        return f"{phase.metric} = {value:.6g} {phase.op} {phase.value:g}" if hit else None

    def on_update_start(self, info: dict) -> None:
        previous, reason = self.index, None
        while self.index + 1 < len(self.phases):
            why = self._due(self.phases[self.index + 1])
            if why is None:
                break
            self.index, reason = self.index + 1, why
            self.history.append({"phase": self.phase.name, "global_step": int(self.run.global_step), "reason": why})
        changed = self.index != previous
        if changed:
            self._apply()
        payload: dict[str, Any] = {"name": self.phase.name, "index": self.index, "changed": changed}
        if changed:
            payload.update(previous=self.phases[previous].name, reason=reason, settings=dict(self.phase.settings))
        info["phase"] = payload

    def on_metrics_computed(self, metrics: dict) -> None:
        metrics["train/phase"] = float(self.index)
        for p in self.phases:
            if p.metric is not None and p.metric in metrics:
                v = to_float(metrics[p.metric])
                if v is not None:
                    self.last[p.metric] = v

    def on_training_end(self, summary: dict) -> None:
        if isinstance(summary, dict):
            summary["phases"] = [dict(h) for h in self.history]

    def state_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.phase.name, "history": [dict(h) for h in self.history],
                "last": dict(self.last)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        names = [p.name for p in self.phases]
        if state["name"] not in names:
            raise ValueError(f"--hooks.phases: the checkpoint is in phase {state['name']!r}, which these phases "
                             f"({', '.join(names)}) do not have")
        self.index = names.index(state["name"])
        self.history = [dict(h) for h in state["history"]]
        self.last = {k: float(v) for k, v in state["last"].items()}
