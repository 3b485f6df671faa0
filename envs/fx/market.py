"""The FX market as the rest of FxAI gets it: bars loaded once and split, feature normalisation,
and the factories of training, backtest and gymnasium envs (``FxAI/FxTrading-v0``).

* ``gymnasium.make("FxAI/FxTrading-v0", data=PATH_OR_DATAFRAME_OR_BARS, split="train", **fx_fields)``
  gives a single :class:`envs.fx.single.FxTradingEnv`;
  ``gymnasium.make_vec("FxAI/FxTrading-v0", num_envs=N, vectorization_mode="vector_entry_point", ...)``
  gives the native torch :class:`envs.fx.vector.FxVectorEnv`. ``fx_fields`` are any
  :class:`envs.fx.config.FxEnvConfig` fields (or pass ``cfg=FxEnvConfig(...)``).
* :func:`load_market` loads or generates the bars once per config and splits them with a gap of
  at least the longest lookback; :func:`fit_norm` fits feature normalisation on the train split.
* :func:`make_fx_vector_env` / :func:`make_fx_eval_env` build training and backtest envs.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import gymnasium as gym
import pandas as pd

from envs.fx.config import FxEnvConfig, first_valid_index
from envs.fx.data import Bars
from envs.fx.features import FeatureNorm

ENV_ID = "FxAI/FxTrading-v0"
SPLITS = ("train", "val", "test")
_MARKETS: dict[tuple, dict[str, Bars]] = {}
_NORMS: dict[tuple, FeatureNorm] = {}


def split_gap(cfg: FxEnvConfig) -> int:
    """Bars dropped between splits: the longest lookback in base bars (plus one)."""
    return first_valid_index(cfg) + 1


def _market_key(cfg: FxEnvConfig) -> tuple:
    return (cfg.data, cfg.synthetic_kind, cfg.synthetic_n_bars, cfg.synthetic_seed, cfg.bar_seconds,
            cfg.train_frac, cfg.val_frac, cfg.test_frac, split_gap(cfg))


def split_market(bars: Bars, cfg: FxEnvConfig) -> dict[str, Bars]:
    from envs.fx.splits import split_bars

    return split_bars(bars, train=cfg.train_frac, val=cfg.val_frac, test=cfg.test_frac, gap=split_gap(cfg))


def load_market(cfg: FxEnvConfig) -> dict[str, Bars]:
    """{"train", "val", "test"} bars for ``cfg`` (file ``cfg.data`` or a synthetic market); cached."""
    cfg.validate()
    key = _market_key(cfg)
    if key not in _MARKETS:
        if cfg.data is None:
            from envs.fx.synthetic import generate

            bars = generate(cfg.synthetic_kind, cfg.synthetic_n_bars, cfg.synthetic_seed,
                            bar_seconds=cfg.bar_seconds)
        else:
            from envs.fx.data import load_bars

            bars = load_bars(cfg.data)
        _MARKETS[key] = split_market(bars, cfg)
    return _MARKETS[key]


def fit_norm(train: Bars, cfg: FxEnvConfig, cache: bool = False) -> FeatureNorm | None:
    """Feature normalisation fitted on the training split (None in ``price`` obs mode);
    ``cache`` reuses the fit for markets that came from :func:`load_market`."""
    if cfg.obs_mode == "price":
        return None
    if not cache:
        return FeatureNorm.fit(train, cfg)
    key = _market_key(cfg) + (cfg.vol_window, cfg.ma_window, cfg.ma_window_long, cfg.agg_medium, cfg.agg_low,
                               cfg.mirror_augment)
    if key not in _NORMS:
        _NORMS[key] = FeatureNorm.fit(train, cfg)
    return _NORMS[key]


def _market_from(data: Any, cfg: FxEnvConfig) -> tuple[dict[str, Bars], FxEnvConfig, bool]:
    """(splits, cfg, whether the market is cached by config)."""
    if isinstance(data, (str, os.PathLike)):
        cfg = dataclasses.replace(cfg, data=str(data))
        data = None
    if data is None:
        return load_market(cfg), cfg, True
    if isinstance(data, pd.DataFrame):
        from envs.fx.data import load_bars

        data = load_bars(data)
    if isinstance(data, Bars):
        return split_market(data, cfg), cfg, False
    raise TypeError(f"data must be a file path, a pandas DataFrame, envs.fx.data.Bars or None (got {type(data).__name__})")


def _pick(market: dict[str, Bars], split: str) -> Bars:
    if split not in market:
        raise ValueError(f"split must be one of {sorted(market)} (got {split!r})")
    return market[split]


def make_fx_vector_env(cfg: FxEnvConfig, num_envs: int, seed: int, device: str = "cpu",
                       split: str = "train", data: Any = None):
    """Training env: ``num_envs`` accounts with random episode starts in ``split``."""
    from envs.fx.vector import FxVectorEnv

    market, cfg, cached = _market_from(data, cfg)
    return FxVectorEnv(_pick(market, split), cfg, num_envs=num_envs, seed=seed, device=device,
                       norm=fit_norm(market["train"], cfg, cached), split=split)


def make_fx_eval_env(cfg: FxEnvConfig, split: str = "val", seed: int = 0, device: str = "cpu",
                     data: Any = None):
    """Deterministic backtest env: ONE account over the whole ``split`` from its first valid bar."""
    from envs.fx.vector import FxVectorEnv

    market, cfg, cached = _market_from(data, cfg)
    bars = _pick(market, split)
    return FxVectorEnv(bars, cfg, num_envs=1, seed=seed, device=device, norm=fit_norm(market["train"], cfg, cached),
                       episode_bars=max(1, len(bars) - 1 - first_valid_index(cfg)), start_mode="first",
                       split=split)


def _cfg_from(cfg: FxEnvConfig | None, overrides: dict[str, Any]) -> FxEnvConfig:
    cfg = cfg if cfg is not None else FxEnvConfig()
    names = {f.name for f in dataclasses.fields(FxEnvConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"{ENV_ID}: unknown keyword(s) {unknown}; FxEnvConfig fields are {sorted(names)}")
    return dataclasses.replace(cfg, **overrides).validate()


def make_single_env(data: Any = None, cfg: FxEnvConfig | None = None, split: str = "train", seed: int = 0,
                    device: str = "cpu", episode_bars: int | None = None, start_mode: str = "random",
                    **overrides: Any):
    """``gymnasium.make`` entry point: one :class:`envs.fx.single.FxTradingEnv`."""
    from envs.fx.single import FxTradingEnv

    cfg = _cfg_from(cfg, overrides)
    market, cfg, cached = _market_from(data, cfg)
    return FxTradingEnv(_pick(market, split), cfg, seed=seed, device=device,
                        norm=fit_norm(market["train"], cfg, cached), episode_bars=episode_bars,
                        start_mode=start_mode, split=split)


def make_vector_env(num_envs: int = 1, data: Any = None, cfg: FxEnvConfig | None = None, split: str = "train",
                    seed: int = 0, device: str = "cpu", **overrides: Any):
    """``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` entry point."""
    cfg = _cfg_from(cfg, overrides)
    return make_fx_vector_env(cfg, num_envs=num_envs, seed=seed, device=device, split=split, data=data)


def register() -> None:
    """Register ``FxAI/FxTrading-v0`` with gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="envs.fx.market:make_single_env",
                     vector_entry_point="envs.fx.market:make_vector_env")
