"""``FxAI/FxTrading-v0``: the gymnasium registration and its entry points.

* ``gym.make("FxAI/FxTrading-v0")`` is one :class:`envs.fx.single.FxTradingEnv` with the env
  settings of the default job (preset ``fx``: 15-minute bars on the synthetic OU market), so a
  checkpoint of ``python -m engine.ppo`` fits it. ``preset="fx-h1"`` (any name of
  :data:`envs.fx.presets.ENV_PRESETS`) picks another preset; with ``data=FILE`` and no preset the
  bar-size preset of the file is picked, as the CLI does. Any :class:`~envs.fx.config.FxEnvConfig`
  field given as a keyword overrides the preset's value.
* ``gym.make_vec(..., vectorization_mode="vector_entry_point")`` is the native torch vector env
  (:class:`envs.fx.vector.FxVectorEnv`: torch tensors, SAME_STEP autoreset, the fast one the
  engine trains on); with ``numpy=True`` it is :class:`envs.fx.numpy_vector.FxNumpyVectorEnv`, the
  gymnasium-standard numpy vector env (NEXT_STEP autoreset by default, ``autoreset_mode=`` to
  choose) that gymnasium's vector wrappers take.
* ``gym.make_vec(..., "sync" | "async")`` vectorises single envs the gymnasium way.

Every entry point sets torch's intra-op threads (``threads=1`` by default, ``None`` leaves them):
the env's per-step tensors are small, and on a busy machine two OpenMP threads spinning against
each other ran the vector env 20x slower; a forked ``async`` worker with one thread also cannot
hang in an OpenMP pool inherited from its parent.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import torch

from envs.fx.config import FxEnvConfig
from envs.fx.presets import DEFAULT_PRESET, env_preset, preset_for_bar_seconds

ENV_ID = "FxAI/FxTrading-v0"


def set_threads(threads: int | None) -> None:
    """torch intra-op threads for the env (None: leave them)."""
    if threads is not None and threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _unknown_keyword(names: list[str]) -> TypeError:
    fields = sorted(f.name for f in dataclasses.fields(FxEnvConfig))
    # Python's own wording, which callers that probe optional keywords (TorchRL's ``frameskip``) recognise
    return TypeError(f"{ENV_ID}: got an unexpected keyword argument {names[0]!r} (unknown: {names}); "
                     f"FxEnvConfig fields are {fields}, plus preset, data, cfg, split, seed, device, threads")


def _data_bar_seconds(data: Any, timezone: str) -> int:
    from envs.fx.data import Bars, infer_bar_seconds, load_bars
    from envs.fx.market import Market

    if isinstance(data, Market):
        return infer_bar_seconds(data.bars)
    if not isinstance(data, Bars):
        data = load_bars(data, timezone=timezone)
    return infer_bar_seconds(data)


def env_config(preset: str | None = None, cfg: FxEnvConfig | None = None, data: Any = None,
               **overrides: Any) -> FxEnvConfig:
    """The env settings of a gymnasium entry point: ``cfg`` if given, else preset ``preset`` (default ``fx``;
    ``fx`` with ``data`` picks the preset of the data's bar size), then ``overrides`` (FxEnvConfig fields)."""
    names = {f.name for f in dataclasses.fields(FxEnvConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise _unknown_keyword(unknown)
    if cfg is not None and preset is not None:
        raise ValueError(f"{ENV_ID}: give cfg or preset, not both")
    if cfg is None:
        name = preset if preset is not None else DEFAULT_PRESET
        if name == DEFAULT_PRESET and data is not None:
            name, _ = preset_for_bar_seconds(_data_bar_seconds(data, overrides.get("timezone", "UTC")))
        cfg = env_preset(name)
    return dataclasses.replace(cfg, **overrides).validate()


def make_single_env(data: Any = None, cfg: FxEnvConfig | None = None, preset: str | None = None,
                    split: str = "train", seed: int = 0, device: str = "cpu", start_mode: str = "random",
                    threads: int | None = 1, **overrides: Any) -> gym.Env:
    """``gymnasium.make`` entry point: one :class:`envs.fx.single.FxTradingEnv` (see the module docstring)."""
    from envs.fx.market import _market_from, fit_norm
    from envs.fx.single import FxTradingEnv

    set_threads(threads)
    cfg = env_config(preset, cfg, data, **overrides)
    market, cfg, cached = _market_from(data, cfg)
    return FxTradingEnv(market.bars, cfg, seed=seed, device=device, norm=fit_norm(market, cfg, cached),
                        start_mode=start_mode, split=split,
                        bounds=market.bounds(split), context=market.context, bar_ns=market.bar_ns)


def make_vector_env(num_envs: int = 1, data: Any = None, cfg: FxEnvConfig | None = None, preset: str | None = None,
                    split: str = "train", seed: int = 0, device: str = "cpu", threads: int | None = 1,
                    numpy: bool = False, autoreset_mode: Any = None, **overrides: Any) -> gym.vector.VectorEnv:
    """``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` entry point: the native torch vector
    env, or with ``numpy=True`` the gymnasium-standard numpy one (``autoreset_mode``: NEXT_STEP by default)."""
    from envs.fx.market import make_fx_vector_env

    set_threads(threads)
    cfg = env_config(preset, cfg, data, **overrides)
    if not numpy and autoreset_mode is not None and gym.vector.AutoresetMode(autoreset_mode) != \
            gym.vector.AutoresetMode.SAME_STEP:
        raise ValueError(f"{ENV_ID}: the native torch vector env autoresets in the same step; pass numpy=True for "
                         f"{autoreset_mode} (the gymnasium-standard numpy vector env)")
    env = make_fx_vector_env(cfg, num_envs=num_envs, seed=seed, device=device, split=split, data=data)
    if not numpy:
        return env
    from envs.fx.numpy_vector import FxNumpyVectorEnv

    mode = gym.vector.AutoresetMode.NEXT_STEP if autoreset_mode is None else gym.vector.AutoresetMode(autoreset_mode)
    return FxNumpyVectorEnv(env, autoreset_mode=mode)


def register() -> None:
    """Register ``FxAI/FxTrading-v0`` with gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="envs.fx.gym_api:make_single_env",
                     vector_entry_point="envs.fx.gym_api:make_vector_env")


__all__ = ["ENV_ID", "env_config", "make_single_env", "make_vector_env", "register", "set_threads"]
