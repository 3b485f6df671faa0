"""The FX env settings of the training presets, by name: what ``gym.make("FxAI/FxTrading-v0")`` builds.

The CLI's presets (``configs/fx.py``) train on these env configs; keeping them here, in the
simulator, lets the gymnasium entry points use the same defaults without importing the
training configs (dependencies point from ``configs`` to ``envs``, never back). So
``gym.make("FxAI/FxTrading-v0")`` is the env of the default job (``fx``: 15-minute bars on the
synthetic OU market, three levels, mirror augmentation, the default costs) and
``gym.make("FxAI/FxTrading-v0", preset="fx-h1", data="EURUSD_H1.csv")`` the one of
``python -m engine.ppo fx-h1 --data EURUSD_H1.csv``: a checkpoint of one fits the other.

Why these settings: see ``configs/fx.py``.
"""

from __future__ import annotations

import dataclasses
import math

from envs.fx.config import FxEnvConfig

M15 = FxEnvConfig(synthetic_kind="ou", synthetic_seed=0, synthetic_n_bars=180_000, bar_seconds=900,
                  synthetic_weekend_gap_hours=4.0, train_frac=0.9, val_frac=0.05, test_frac=0.05,
                  agg_medium=16, agg_low=96, ma_window=1200, ma_window_long=2400, episode_bars=1024,
                  mirror_augment=True, w_variance_penalty=0.25, position_levels=(-1.0, 0.0, 1.0))
"""15-minute bars: 4-hour and daily aggregates, 1,200- and 2,400-bar (12.5- and 25-day) moving-average gaps,
1,024-bar episodes, a variance penalty of 0.25; a synthetic OU market with weekend gaps without --data. Slow
enough for an edge that pays over hundreds of bars (``configs/fx.py`` says why)."""

H1 = dataclasses.replace(M15, synthetic_n_bars=43_000, bar_seconds=3600, train_frac=0.6, val_frac=0.2, test_frac=0.2,
                         window_high=48, window_medium=12, window_low=10, agg_medium=4, agg_low=24,
                         vol_window=24, ma_window=60, ma_window_long=120, episode_bars=96, w_variance_penalty=1.0)
"""Hourly bars: a 2-day window, 4-hour and daily aggregates, 15 days of warm-up; splits for one year of data."""

RANDOMWALK = dataclasses.replace(M15, synthetic_kind="randomwalk")
"""``fx-m15`` on a pure random walk: nothing to learn."""

ENV_PRESETS: dict[str, FxEnvConfig] = {"fx": M15, "fx-m15": M15, "fx-h1": H1, "fx-randomwalk": RANDOMWALK}
"""Env settings by preset name (``fx``, the default job, is ``fx-m15`` without a data file)."""

BY_BAR_SECONDS: dict[int, str] = {900: "fx-m15", 3600: "fx-h1"}
"""The bar-size presets the default ``fx`` picks from for a data file, by bar length in seconds."""

DEFAULT_PRESET = "fx"


def preset_for_bar_seconds(seconds: int) -> tuple[str, bool]:
    """(the bar-size preset nearest ``seconds`` on a log scale, whether it is exact)."""
    best = min(BY_BAR_SECONDS, key=lambda s: abs(math.log(s / max(seconds, 1))))
    return BY_BAR_SECONDS[best], best == seconds


def env_preset(name: str) -> FxEnvConfig:
    """The env settings of preset ``name`` (a ValueError listing the names when unknown)."""
    if name not in ENV_PRESETS:
        raise ValueError(f"FX preset {name!r} is unknown; choose from: {', '.join(ENV_PRESETS)}")
    return ENV_PRESETS[name]


__all__ = ["BY_BAR_SECONDS", "DEFAULT_PRESET", "ENV_PRESETS", "H1", "M15", "RANDOMWALK", "env_preset",
           "preset_for_bar_seconds"]
