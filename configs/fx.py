"""FX presets by bar size, and the synthetic sanity markets.

* ``fx`` (the default job): settings by bar size. With ``--data FILE`` it becomes the preset
  for the file's bar size (``fx-h1`` for hourly bars, ``fx-m15`` for 15-minute bars, the
  nearest for others, said in one line); without a file it is ``fx-m15`` on the synthetic
  15-minute OU market: a planted mean-reversion signal, the sanity check that the agent
  learns what is there.
* ``fx-m15``: 15-minute bars (a year is ~25k bars). ``fx-h1``: hourly bars; its windows,
  aggregates, episode length and splits fit ONE year (~6,200 bars, e.g. the EURUSD 2017
  file in the gym-anytrading package): 15 days of warm-up, 60/20/20 % splits, so validation
  and test hold ~2 months each.
* ``fx-randomwalk``: ``fx-m15`` on a random walk: nothing to learn, the agent should stay out.

All train the multi-branch transformer with PPO at the default costs (0.8 pip spread, 0.05 pip
slippage, 20 per million commission: ~1.3 pips a EURUSD round trip) and fit a few minutes of
wall time on a 2-core CPU: a small transformer (one layer per branch, 8-bar patches) on one
torch thread.

Why these settings (each was needed for PPO to learn anything but "stay flat"):
* 15-minute bars or longer: the OU market (half-life 60 bars) then swings tens of pips around
  its level, so a round trip is small next to the edge. On 1-minute bars every setting tried
  collapsed to a flat policy.
* three levels (short, flat, long), so the flat baseline of the report really is flat.
* a strong entropy bonus (0.15): exploring trades costs money on every step, and with a
  usual bonus (<= 0.05) the policy learns "never trade" before it finds the signal; the
  deterministic (argmax) policy that is evaluated still trades only where the signal is.
* short episodes (128 bars at 15 minutes, 96 hourly): many episode starts per rollout.
* a moving-average gap over ~4 half-lives in the per-bar features: the z-score a mean-reverting
  market rewards trading on; clock-aligned aggregates of 4 hours and 1 day.

Why these settings (each was needed for the agent to stay out of a market with no edge):
* mirror augmentation (``mirror_augment``): half of the training episodes run on the log-mirrored
  series with the swap rates exchanged, so neither the training split's chance drift nor the
  carry of one side can be learned as an "edge"; without it a random-walk agent picked a side
  and held it through the test split (one seed lost 50 %).
* seven years of synthetic bars, 90 % of them for training (validation and test ~3 months):
  fewer chance patterns to fit.
* a portfolio observation without equity, drawdown or episode-progress features (see
  ``envs/fx/vector.py:PORTFOLIO_FEATURES``): they drift out of the training range in a long
  backtest, where the policy then held positions for weeks.
* a holding penalty of 1e-4 of equity per bar at full size: a risk charge that makes holding a
  position with no edge worse than being flat.
"""

from __future__ import annotations

import dataclasses
import math

from algos import PPOConfig, TransformerConfig
from configs.train import TrainConfig
from envs.fx.config import FxEnvConfig
from hooks.config import HooksConfig

SMALL_TRANSFORMER = TransformerConfig(d_model=32, n_heads=4, n_layers=1, dim_feedforward=64, patch_size=8,
                                      portfolio_hidden=32, head_hidden=64)
"""The transformer sizes of the FX presets (about 48k parameters on the FX observation)."""

_M15 = FxEnvConfig(synthetic_kind="ou", synthetic_seed=0, synthetic_n_bars=180_000, bar_seconds=900,
                   synthetic_weekend_gap_hours=4.0, train_frac=0.9, val_frac=0.05, test_frac=0.05,
                   agg_medium=16, agg_low=96, ma_window=240, episode_bars=128,
                   mirror_augment=True, w_holding_penalty=1e-4, position_levels=(-1.0, 0.0, 1.0))
"""15-minute bars: 4-hour and daily aggregates, a 240-bar (2.5-day) moving-average gap; a synthetic OU market
with weekend gaps without --data."""

_H1 = dataclasses.replace(_M15, synthetic_n_bars=43_000, bar_seconds=3600, train_frac=0.6, val_frac=0.2, test_frac=0.2,
                          window_high=48, window_medium=12, window_low=10, agg_medium=4, agg_low=24,
                          vol_window=24, ma_window=60, ma_window_long=120, episode_bars=96)
"""Hourly bars: a 2-day window, 4-hour and daily aggregates, 15 days of warm-up; splits for one year of data."""

_PPO = PPOConfig(learning_rate=3e-4, gamma=0.99, gae_lambda=0.95, update_epochs=4, num_minibatches=4,
                 ent_coef=0.15, max_grad_norm=0.5)

_HOOKS = HooksConfig(eval_every=50, checkpoint_every=50, save_top_k=1)


def _fx_job(preset: str, fx: FxEnvConfig, total_steps: int = 400_000) -> TrainConfig:
    return TrainConfig(env="fx", preset=preset, policy="transformer", total_steps=total_steps, num_envs=16,
                       rollout_steps=128, seed=1, threads=1, ppo=_PPO, model=SMALL_TRANSFORMER, fx=fx, hooks=_HOOKS)


def fx_m15() -> TrainConfig:
    """15-minute bars: the synthetic OU market without --data."""
    return _fx_job("fx-m15", _M15)


def fx_h1() -> TrainConfig:
    """Hourly bars; splits fit one year of data (validation and test ~2 months each)."""
    return _fx_job("fx-h1", _H1)


def fx() -> TrainConfig:
    """The default job: with --data FILE the preset for the file's bar size (fx-h1, fx-m15); without, fx-m15 on
    the synthetic 15-minute OU market (the planted-signal sanity check), ~2.5 minutes on 2 cores."""
    return dataclasses.replace(fx_m15(), preset="fx")


def fx_randomwalk() -> TrainConfig:
    """fx-m15 on a pure random walk with costs on: nothing to learn, so the agent should stay (mostly) flat."""
    return _fx_job("fx-randomwalk", dataclasses.replace(_M15, synthetic_kind="randomwalk"))


BY_BAR_SECONDS = {900: fx_m15, 3600: fx_h1}
"""The bar-size presets ``fx`` picks from, by bar length in seconds."""


def preset_for_data(cfg: TrainConfig) -> tuple[TrainConfig, str] | None:
    """For the auto preset ``fx`` with ``--data``: the bar-size preset that fits the file and a line saying so
    (None when nothing is to be picked)."""
    if cfg.preset != "fx" or cfg.fx.data is None:
        return None
    import warnings

    from envs.fx.data import DataAnomalyWarning, DataChecks, infer_bar_seconds, load_bars

    with warnings.catch_warnings():  # only the bar size is wanted here; the data checks run in validation
        warnings.simplefilter("ignore", DataAnomalyWarning)
        bars = load_bars(cfg.fx.data, timezone=cfg.fx.timezone, checks=DataChecks(accept=True))
    seconds = infer_bar_seconds(bars)
    best = min(BY_BAR_SECONDS, key=lambda s: abs(math.log(s / max(seconds, 1))))
    make = BY_BAR_SECONDS[best]
    exact = "" if best == seconds else f" (the nearest; no preset for {seconds} s bars: its windows are counted in bars)"
    picked = make()
    return picked, f"--data {cfg.fx.data}: {seconds} s bars -> preset {picked.preset}{exact}; name a preset to choose another"
