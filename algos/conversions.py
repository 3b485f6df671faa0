"""Checkpoint conversion steps for the algorithms' sections and states (see :mod:`engine.formats`).

Format 2 -> 3: ``anneal_lr`` (linear to 0, or constant) became ``lr_schedule`` ("linear" or
"constant", with ``lr_final`` 0 and no warmup), and the algorithm's state gained its schedule
(``lr_schedule``: the progress over the run's updates, rebuilt from the scheduler's update count
and the run's horizon, ``ceil(total_steps / (rollout_steps x num_envs x world_size))``) and its
overrides (none).
"""

from __future__ import annotations

import math
from typing import Any

from engine.formats import register_conversion

SECTIONS = ("ppo", "a2c")
"""The config sections of the algorithms ``algos`` registers."""


def lr_schedule_2_to_3(ckpt: dict[str, Any]) -> None:
    cfg = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    for name in SECTIONS:
        section = cfg.get(name)
        if isinstance(section, dict) and "anneal_lr" in section:
            section["lr_schedule"] = "linear" if section.pop("anneal_lr") else "constant"
            section.setdefault("lr_final", 0.0)
            section.setdefault("lr_warmup", 0.0)
    state = ckpt.get("algo")
    if not isinstance(state, dict) or "scheduler" not in state or "lr_schedule" in state:
        return
    per_cycle = int(cfg.get("rollout_steps", 1)) * int(cfg.get("num_envs", 1)) * int(ckpt.get("world_size", 1))
    horizon = max(1, math.ceil(int(cfg.get("total_steps", per_cycle)) / max(per_cycle, 1)))
    kind = (cfg.get(cfg.get("algo", "ppo")) or {}).get("lr_schedule", "linear")
    state["lr_schedule"] = {"kind": kind, "warmup_updates": 0,
                            "progress": {"horizon": horizon, "anchor_update": 0, "anchor_progress": 0.0}}
    state.setdefault("overrides", {})


register_conversion(2, lr_schedule_2_to_3, "algos.lr_schedule_2_to_3")
