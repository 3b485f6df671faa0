"""Checkpoint formats and the conversions between them.

Every checkpoint carries its format number (top-level ``"format"``; format 1, the first,
kept it in ``meta["format"]``). Reading a checkpoint (:func:`engine.checkpoint.read_checkpoint`)
converts an older one in memory, one format at a time, by the *steps* registered here, so
old checkpoints resume, backtest and convert (``python -m engine.convert OLD NEW``) without
a retrain. A checkpoint newer than this code is refused.

A step converts a checkpoint dict from format ``v`` to ``v + 1`` in place. Several parts may
register a step for the same ``v`` (the engine for its own keys, ``algos`` for its sections
and states, ``configs`` for the layout of the config tree, an env family for its section);
they run in registration order. **Changing the format**: bump :data:`CHECKPOINT_FORMAT`,
describe the new format in :data:`FORMATS`, and register a step from the old number with
:func:`register_conversion` where the change is made (an env family registers its own step
when its module is imported, so the engine core never names it). Steps must accept partial
dicts (a hand-written test checkpoint may hold only ``global_step``).

Formats:

1. the first: ``meta["format"] == 1``, no top-level format, no ``config_class``;
2. adds ``format`` and ``config_class`` (the config tree's class), and the config tree's
   redesign (sections moved; converted by the step ``configs`` registers);
3. adds ``run`` (the run's identity kept across resumes: id, log version, resume count, logger
   versions) and ``best_checkpoint``; algorithms keep their learning-rate schedule and progress
   (``algo["lr_schedule"]``) and hook overrides, and their config's ``anneal_lr`` became
   ``lr_schedule`` (step registered by ``algos``);
4. adds ``env_spec``: what the env family needs to rebuild the policy's inputs without the
   training data (the FX family: the fitted feature normalisation, bar length, pair); older
   checkpoints get none (the FX family's step notes what changed in its observations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CHECKPOINT_FORMAT = 4
"""The format this code writes."""

FORMATS: dict[int, str] = {
    1: "first format (meta['format'])",
    2: "top-level format and config_class; config tree redesigned",
    3: "run identity (id, log version, resumes), best_checkpoint, LR schedule state",
    4: "env_spec (what the env family needs without the training data)",
}

Step = Callable[[dict[str, Any]], None]
_STEPS: dict[int, list[tuple[str, Step]]] = {}


def register_conversion(from_format: int, step: Step, name: str | None = None) -> None:
    """Add ``step`` (``ckpt dict -> None``, in place) to the conversion from ``from_format`` to the next.

    Registering the same ``name`` twice for one format replaces the first (module re-imports)."""
    if not 1 <= from_format < CHECKPOINT_FORMAT:
        raise ValueError(f"a conversion starts at a format in [1, {CHECKPOINT_FORMAT - 1}], got {from_format}")
    name = name or f"{step.__module__}.{step.__qualname__}"
    steps = [s for s in _STEPS.setdefault(from_format, []) if s[0] != name]
    _STEPS[from_format] = [*steps, (name, step)]


def conversion_steps(from_format: int) -> list[str]:
    """Names of the steps registered from ``from_format`` to the next, in the order they run."""
    return [name for name, _ in _STEPS.get(from_format, [])]


def checkpoint_format(ckpt: dict[str, Any]) -> int:
    """The format a checkpoint dict was written in."""
    if "format" in ckpt:
        return int(ckpt["format"])
    meta = ckpt.get("meta")
    if isinstance(meta, dict) and "format" in meta:
        return int(meta["format"])
    return 1


def convert_checkpoint(ckpt: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """``(ckpt converted to CHECKPOINT_FORMAT in place, the format it had)``; ValueError for a newer format."""
    found = version = checkpoint_format(ckpt)
    if version > CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint format {version} is newer than this FxAI's ({CHECKPOINT_FORMAT}); update FxAI")
    while version < CHECKPOINT_FORMAT:
        for _name, step in _STEPS.get(version, []):
            step(ckpt)
        version += 1
        ckpt["format"] = version
    return ckpt, found


# -- the engine's own steps --------------------------------------------------------------------
def _run_record(ckpt: dict[str, Any]) -> None:
    """2 -> 3: a run record (no id yet: the next session that continues the run assigns one)."""
    ckpt.setdefault("run", {"id": None, "version": 0, "resumes": 0, "loggers": {}})
    ckpt.setdefault("best_checkpoint", None)


def _env_spec(ckpt: dict[str, Any]) -> None:
    """3 -> 4: no env spec was recorded (a family's own step may add what it can)."""
    ckpt.setdefault("env_spec", None)


register_conversion(2, _run_record, "engine.run_record")
register_conversion(3, _env_spec, "engine.env_spec")
