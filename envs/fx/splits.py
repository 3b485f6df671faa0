"""Time-ordered train/val/test splits and walk-forward folds over ``Bars``.

Splits are contiguous, never share a bar, and drop ``gap`` bars between consecutive parts
so that a feature window (callers pass their longest lookback in base bars) reaching back
from the first bar of one part cannot see the last bars of the previous part. Each function
has an ``*_indices`` twin returning ``(start, stop)`` ranges, so callers can map back.
"""

from __future__ import annotations

from envs.fx.data import Bars

SPLIT_NAMES = ("train", "val", "test")


def _length(bars_or_n: Bars | int) -> int:
    return len(bars_or_n) if isinstance(bars_or_n, Bars) else int(bars_or_n)


def split_indices(bars_or_n: Bars | int, train: float = 0.7, val: float = 0.15, test: float = 0.15,
                  gap: int = 0, min_len: int = 1) -> dict[str, tuple[int, int]]:
    """``{name: (start, stop)}`` of time-ordered, contiguous splits of ``n`` bars.

    The fractions must be >= 0 and sum to 1; a split whose fraction is exactly 0 is left out
    (with no gap for it). ``gap`` bars are dropped between consecutive splits; the remaining
    bars are shared out by the fractions (rounding the cumulative boundaries). Raises
    ValueError naming the split when it would hold fewer than ``min_len`` bars.
    """
    n = _length(bars_or_n)
    fracs = {"train": train, "val": val, "test": test}
    for name, f in fracs.items():
        if not (isinstance(f, (int, float)) and 0.0 <= f <= 1.0):
            raise ValueError(f"split fraction {name}={f!r} must be a number in [0, 1]")
    total = train + val + test
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1: train={train} + val={val} + test={test} = {total:g}")
    if not isinstance(gap, int) or gap < 0:
        raise ValueError(f"split gap must be an integer >= 0, got {gap!r}")
    if not isinstance(min_len, int) or min_len < 0:
        raise ValueError(f"split min_len must be an integer >= 0, got {min_len!r}")
    names = [k for k in SPLIT_NAMES if fracs[k] > 0]
    usable = n - gap * (len(names) - 1)
    if usable < min_len * len(names) or usable <= 0:
        raise ValueError(f"cannot split {n} bars into {', '.join(names)} with gap={gap} between them: "
                         f"only {max(usable, 0)} bars remain, need at least {max(min_len, 1) * len(names)}")
    out: dict[str, tuple[int, int]] = {}
    cum, start = 0.0, 0
    for i, name in enumerate(names):
        cum += fracs[name] / total
        size_end = usable if i == len(names) - 1 else int(round(cum * usable))
        size = size_end - (start - gap * i)
        stop = start + size
        if size < min_len:
            sizes = ", ".join(f"{k}={v[1] - v[0]}" for k, v in out.items())
            raise ValueError(f"split {name!r} would hold {size} bars (< min_len {min_len}); "
                             f"n={n}, gap={gap}, fractions train={train} val={val} test={test}"
                             + (f", earlier splits: {sizes}" if sizes else ""))
        out[name] = (start, stop)
        start = stop + gap
    return out


def split_bars(bars: Bars, train: float = 0.7, val: float = 0.15, test: float = 0.15, gap: int = 0,
               min_len: int = 1) -> dict[str, Bars]:
    """Time-ordered train/val/test ``Bars`` (see ``split_indices`` for the rules)."""
    return {name: bars.slice(a, b) for name, (a, b) in
            split_indices(bars, train, val, test, gap=gap, min_len=min_len).items()}


def walk_forward_indices(bars_or_n: Bars | int, n_folds: int, train_bars: int, test_bars: int, gap: int = 0,
                         step: int | None = None, anchored: bool = False) -> list[dict[str, tuple[int, int]]]:
    """Walk-forward folds ``[{"train": (a, b), "test": (c, d)}, ...]`` in time order.

    Fold k tests on ``[t_k, t_k + test_bars)`` with ``t_k = train_bars + gap + k * step``
    (``step`` defaults to ``test_bars``: back-to-back test windows). Its train window ends
    ``gap`` bars before the test window and holds the ``train_bars`` bars before that (rolling)
    or every bar from 0 (``anchored``). Raises ValueError when the bars are too few.
    """
    n = _length(bars_or_n)
    step = test_bars if step is None else step
    for name, value, low in (("n_folds", n_folds, 1), ("train_bars", train_bars, 1), ("test_bars", test_bars, 1),
                             ("gap", gap, 0), ("step", step, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"walk_forward {name} must be an integer >= {low}, got {value!r}")
    need = train_bars + gap + (n_folds - 1) * step + test_bars
    if need > n:
        raise ValueError(f"walk_forward needs {need} bars for {n_folds} folds (train_bars={train_bars}, gap={gap}, "
                         f"step={step}, test_bars={test_bars}) but there are only {n}")
    folds = []
    for k in range(n_folds):
        test_start = train_bars + gap + k * step
        train_stop = test_start - gap
        train_start = 0 if anchored else train_stop - train_bars
        folds.append({"train": (train_start, train_stop), "test": (test_start, test_start + test_bars)})
    return folds


def walk_forward(bars: Bars, n_folds: int, train_bars: int, test_bars: int, gap: int = 0,
                 step: int | None = None, anchored: bool = False) -> list[dict[str, Bars]]:
    """Walk-forward folds of ``Bars`` (see ``walk_forward_indices`` for the rules)."""
    return [{name: bars.slice(a, b) for name, (a, b) in fold.items()}
            for fold in walk_forward_indices(bars, n_folds, train_bars, test_bars, gap, step, anchored)]
