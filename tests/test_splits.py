"""Splits: contiguous, time-ordered, no shared bar, gaps respected, clear errors; walk-forward folds."""

from __future__ import annotations

import numpy as np
import pytest

from envs.fx.splits import split_bars, split_indices, walk_forward, walk_forward_indices
from envs.fx.synthetic import generate


def test_default_fractions_on_100_bars() -> None:
    assert split_indices(100) == {"train": (0, 70), "val": (70, 85), "test": (85, 100)}


def test_gap_is_dropped_between_consecutive_splits() -> None:
    # 100 - 2 x 5 = 90 usable bars: boundaries at round(0.7 x 90) = 63 and round(0.85 x 90) = 76.
    assert split_indices(100, gap=5) == {"train": (0, 63), "val": (68, 81), "test": (86, 100)}


@pytest.mark.parametrize("n, gap", [(1000, 0), (1000, 64), (997, 13), (50, 3)])
def test_splits_cover_in_order_without_overlap(n: int, gap: int) -> None:
    idx = split_indices(n, 0.6, 0.2, 0.2, gap=gap)
    ranges = [idx["train"], idx["val"], idx["test"]]
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    for (a0, a1), (b0, b1) in zip(ranges, ranges[1:]):
        assert b0 - a1 == gap  # exactly `gap` bars between them, none shared
    sizes = [b - a for a, b in ranges]
    assert sum(sizes) == n - 2 * gap
    usable = n - 2 * gap
    for size, frac in zip(sizes, (0.6, 0.2, 0.2)):
        assert abs(size - frac * usable) <= 1


def test_split_bars_slices_the_bars() -> None:
    bars = generate("gbm", 1000, 0)
    parts = split_bars(bars, gap=10)
    idx = split_indices(bars, gap=10)
    for name, part in parts.items():
        a, b = idx[name]
        np.testing.assert_array_equal(part.time, bars.time[a:b])
        np.testing.assert_array_equal(part.close, bars.close[a:b])
    assert parts["train"].time[-1] < parts["val"].time[0] < parts["val"].time[-1] < parts["test"].time[0]
    shared = set(parts["train"].time.tolist()) & set(parts["val"].time.tolist()) | \
        set(parts["val"].time.tolist()) & set(parts["test"].time.tolist())
    assert not shared


def test_zero_fraction_split_is_left_out() -> None:
    assert split_indices(10, 0.8, 0.0, 0.2, gap=1) == {"train": (0, 7), "test": (8, 10)}


def test_errors_name_the_split_and_sizes() -> None:
    with pytest.raises(ValueError, match=r"split 'val' would hold 0 bars \(< min_len 1\); n=20"):
        split_indices(20, 0.98, 0.01, 0.01)
    with pytest.raises(ValueError, match=r"split 'val' would hold 15 bars \(< min_len 20\).*earlier splits: train=70"):
        split_indices(100, min_len=20)
    with pytest.raises(ValueError, match=r"split 'test' would hold 10 bars \(< min_len 11\).*train=70, val=20"):
        split_indices(100, 0.7, 0.2, 0.1, min_len=11)
    with pytest.raises(ValueError, match="cannot split 10 bars into train, val, test with gap=4"):
        split_indices(10, gap=4)
    with pytest.raises(ValueError, match="must sum to 1"):
        split_indices(100, 0.7, 0.2, 0.2)
    with pytest.raises(ValueError, match="split gap must be an integer >= 0"):
        split_indices(100, gap=-1)


def test_walk_forward_rolling_folds() -> None:
    folds = walk_forward_indices(100, 3, train_bars=40, test_bars=10, gap=2)
    assert folds == [{"train": (0, 40), "test": (42, 52)},
                     {"train": (10, 50), "test": (52, 62)},
                     {"train": (20, 60), "test": (62, 72)}]


def test_walk_forward_anchored_with_step() -> None:
    folds = walk_forward_indices(100, 3, 40, 10, gap=2, step=20, anchored=True)
    assert folds == [{"train": (0, 40), "test": (42, 52)},
                     {"train": (0, 60), "test": (62, 72)},
                     {"train": (0, 80), "test": (82, 92)}]


@pytest.mark.parametrize("anchored", [False, True])
def test_walk_forward_folds_ordered_and_non_overlapping(anchored: bool) -> None:
    bars = generate("ou", 5000, 1)
    folds = walk_forward(bars, 6, train_bars=1500, test_bars=500, gap=60, anchored=anchored)
    assert len(folds) == 6
    for k, fold in enumerate(folds):
        train, test = fold["train"], fold["test"]
        assert len(test) == 500 and len(train) == (1500 + 500 * k if anchored else 1500)
        assert train.time[-1] < test.time[0]
        gap_bars = int(np.searchsorted(bars.time, test.time[0]) - np.searchsorted(bars.time, train.time[-1])) - 1
        assert gap_bars == 60
        if k:
            prev = folds[k - 1]["test"]
            assert prev.time[-1] < test.time[0]  # test windows move forward and do not overlap


def test_walk_forward_errors() -> None:
    with pytest.raises(ValueError, match=r"walk_forward needs 1130 bars for 3 folds .* only 1000"):
        walk_forward_indices(1000, 3, train_bars=800, test_bars=100, gap=30, step=100)
    with pytest.raises(ValueError, match="walk_forward test_bars must be an integer >= 1"):
        walk_forward_indices(1000, 3, train_bars=800, test_bars=0)
