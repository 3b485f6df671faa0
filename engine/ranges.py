"""Every numeric flag's allowed range, checked in one walk before any work.

A config dataclass declares the ranges of its numeric fields beside them, as interval notation::

    RANGES: ClassVar[dict[str, str]] = {"gamma": "(0, 1]", "num_envs": "[1, 65536]", "threads": "[0, {cpus}]"}

``[``/``]`` include the bound, ``(``/``)`` exclude it, ``inf`` is no bound (``(-inf, inf)``: any finite
number) and ``{cpus}`` is this machine's CPU count. :func:`check_numbers` walks a config tree (nested dataclasses are the
``--section.*`` flags) and raises one ``ValueError`` line naming the first bad flag and its range:
``--ppo.max-grad-norm: must be a finite number in (0, 1e+09] (got -1.0)``. Every float, listed or
not, must be finite (NaN and inf slip through every comparison); a tuple field's range applies to
each of its values; ``None`` (an optional field left unset) is not checked. Cross-flag conditions
(divisibility, one flag bounded by another, what the data allows) stay with the parts that own
them; they run after this walk, still before any work.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Any

_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,]+?)\s*,\s*([^,]+?)\s*([\])])\s*$")


@dataclasses.dataclass(frozen=True)
class Interval:
    """An interval of numbers, parsed from interval notation (see the module docstring)."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool
    text: str

    @classmethod
    def parse(cls, spec: str) -> Interval:
        spec = spec.replace("{cpus}", str(os.cpu_count() or 1))
        m = _INTERVAL.match(spec)
        if m is None:
            raise ValueError(f"bad interval {spec!r}: write e.g. '[0, 1)' or '(0, inf)'")
        lo, hi = float(m.group(2)), float(m.group(3))
        return cls(lo, hi, m.group(1) == "[", m.group(4) == "]", f"{m.group(1)}{m.group(2)}, {m.group(3)}{m.group(4)}")

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below


def flag_name(prefix: str, field: str) -> str:
    """``--ppo.`` + ``max_grad_norm`` -> ``--ppo.max-grad-norm`` (tyro's spelling)."""
    return f"{prefix}{field.replace('_', '-')}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_value(value: Any, flag: str, spec: str | None) -> None:
    """Raise one line naming ``flag`` when ``value`` (a number or a tuple of them) is not finite or not in ``spec``."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    interval = Interval.parse(spec) if spec is not None else None
    for v in values:
        if not _is_number(v):
            continue
        finite = math.isfinite(v)
        if interval is not None and (not finite or v not in interval):
            kind = "a finite number" if isinstance(v, float) else "an integer"
            where = "" if math.isinf(interval.low) and math.isinf(interval.high) else f" in {interval.text}"
            raise ValueError(f"{flag}: must be {kind}{where} (got {value!r})")
        if not finite:
            raise ValueError(f"{flag}: must be a finite number (got {value!r})")


def check_numbers(cfg: Any, prefix: str = "--") -> None:
    """Check every numeric field of the dataclass tree ``cfg`` against its section's ``RANGES`` (and every
    float for finiteness). A section's flags are ``<prefix><field>.``; a class may list in ``FLAT_SECTIONS``
    the fields whose flags carry no prefix (a command's embedded trainer config)."""
    ranges: dict[str, str] = getattr(type(cfg), "RANGES", {})
    flat = getattr(type(cfg), "FLAT_SECTIONS", ())
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_numbers(value, prefix if f.name in flat else f"{prefix}{f.name.replace('_', '-')}.")
        elif value is not None:
            check_value(value, flag_name(prefix, f.name), ranges.get(f.name))


def unranged_fields(cls: type, prefix: str = "--") -> list[str]:
    """Flags of the numeric fields of ``cls`` (and its sections, by their defaults) that have no range:
    the test suite keeps this empty, so a new numeric flag cannot skip its range."""
    out: list[str] = []
    ranges = getattr(cls, "RANGES", {})
    flat = getattr(cls, "FLAT_SECTIONS", ())
    hints = {f.name: f for f in dataclasses.fields(cls)}
    default = None
    try:
        default = cls()
    except TypeError:  # a class with required fields: look at the annotations alone
        pass
    for name, f in hints.items():
        value = getattr(default, name, None) if default is not None else None
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out += unranged_fields(type(value), prefix if name in flat else f"{prefix}{name.replace('_', '-')}.")
            continue
        annotation = str(f.type)
        numeric = re.search(r"\b(int|float)\b", annotation) is not None and re.search(r"\bstr\b", annotation) is None
        if numeric and name not in ranges and not annotation.startswith("ClassVar"):
            out.append(flag_name(prefix, name))
    return out
