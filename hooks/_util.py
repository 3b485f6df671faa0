"""Small helpers shared by the hooks: turning payload values into floats, naming metrics in files."""

from __future__ import annotations

import math
from typing import Any

import torch


def to_float(value: Any) -> float | None:
    """A python float from a number, 0-d/1-element tensor or numpy scalar; ``None`` when not numeric."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor):
        return float(value.item()) if value.numel() == 1 else None
    item = getattr(value, "item", None)  # numpy scalars and 1-element arrays
    if callable(item) and getattr(value, "size", 1) == 1:
        try:
            out = item()
        except (TypeError, ValueError):
            return None
        return float(out) if isinstance(out, (bool, int, float)) else None
    return None


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def better(value: float, best: float, mode: str, min_delta: float = 0.0) -> bool:
    """True when ``value`` improves on ``best`` by more than ``min_delta`` in direction ``mode``."""
    if mode == "max":
        return value > best + min_delta
    return value < best - min_delta


def check_mode(mode: str, who: str) -> str:
    if mode not in ("min", "max"):
        raise ValueError(f"{who}: mode must be 'min' or 'max', got {mode!r}")
    return mode
