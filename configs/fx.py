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
* clock-aligned aggregates of 4 hours and 1 day, and moving-average gaps in the per-bar features:
  the z-score a mean-reverting market rewards trading on.
* hourly bars: 96-bar episodes, 60- and 120-bar moving averages, γ 0.99, 400k steps.
* 15-minute bars: made for edges that pay over hundreds of bars as well as fast ones (issue 12's
  slow-edge check: an OU market with a 600-bar half-life, where a z-score rule nets Sharpe ~1.5).
  1,200- and 2,400-bar moving averages, 1,024-bar episodes, γ 0.999 (a ~1,000-bar horizon), a
  variance-penalty weight of 0.25 and 800k steps. Added one at a time in walk-forwards on the 600-bar
  market (3 folds, seed 1, the earlier 16 x 128 training shape), from Sharpe 0.55 (no edge) to 1.69
  with DSR 0.957 (edge); the previous
  settings (240-bar average, 128-bar episodes, γ 0.99, weight 1, 400k steps) found no edge there
  (−0.26). With these, one preset gives "edge" on the 600-bar market and on the 60-bar one and "no
  edge" for every random-walk seed. Staying *out* of the random walk takes the walk-forward's validation
  gate on a validation long enough to be evidence (2 years of bars: ``--val-bars 50000 --gate-psr 0.95``):
  with 3 months the random walk's chance patterns and the slow edge looked alike. The README's learning
  checks have the commands and intervals.

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
* a variance penalty (``w_variance_penalty``, 1 hourly and 0.25 at 15 minutes: the quadratic term of a
  mean-variance utility, ``-(equity change / E0)^2`` per bar) instead of a flat holding penalty. The old holding penalty
  (1e-4 of equity per bar at full size) kept random-walk agents out but was a hurdle worth about
  Sharpe 2.75 on 15-minute bars that also rejected real slow edges: on an OU market with a 600-bar
  half-life it left the agent with 5 trades and test Sharpe -0.65, against 31 trades and Sharpe 2.04
  with the variance penalty; 20x the variance penalty kept both markets at 0 trades. Measured with
  ``python -m engine.ppo fx[-randomwalk] [--fx.synthetic-half-life 600] --fx.w-holding-penalty W
  --fx.w-variance-penalty V`` (seed 1, 2026-11-24): random walk 7 trades, exposure 7 %, no edge;
  OU (half-life 60) Sharpe 7.46, edge, beside the z-score rule's 5.93. One seed each: walk-forwards
  in the README carry the intervals.
"""

from __future__ import annotations

import dataclasses

from algos import PPOConfig, TransformerConfig
from configs.train import TrainConfig
from envs.fx.config import FxEnvConfig
from envs.fx.presets import BY_BAR_SECONDS as _ENV_BY_BAR_SECONDS, H1, M15, RANDOMWALK, preset_for_bar_seconds
from hooks.config import HooksConfig

SMALL_TRANSFORMER = TransformerConfig(d_model=32, n_heads=4, n_layers=1, dim_feedforward=64, patch_size=8,
                                      portfolio_hidden=32, head_hidden=64)
"""The transformer sizes of the FX presets (about 48k parameters on the FX observation)."""

_M15 = M15
_H1 = H1
_RANDOMWALK = RANDOMWALK
# the env settings live in envs/fx/presets.py, so that gym.make("FxAI/FxTrading-v0") builds the same env

_PPO = PPOConfig(learning_rate=1e-3, gamma=0.99, gae_lambda=0.95, update_epochs=2, num_minibatches=2,
                 ent_coef=0.15, max_grad_norm=0.5)
"""The FX presets' PPO: 2 epochs of 2 minibatches of 1,024 at lr 1e-3 on 256 envs x 8-step rollouts (the same
2,048 steps a cycle as the earlier 16 x 128 with 4 x 4 at 3e-4, at a seventh of the CPU time to the same validation
Sharpe: ``python -m engine.bench ttq``; the random-walk preset still stays flat)."""

_PPO_M15 = dataclasses.replace(_PPO, gamma=0.999)
"""15-minute bars: γ 0.999 (a horizon of ~1,000 bars, ten days), for trades that pay over hundreds of bars."""

_HOOKS = HooksConfig(eval_every=50, checkpoint_every=50, save_top_k=1)


def _fx_job(preset: str, fx: FxEnvConfig, total_steps: int = 400_000, ppo: PPOConfig = _PPO) -> TrainConfig:
    return TrainConfig(env="fx", preset=preset, policy="transformer", total_steps=total_steps, num_envs=256,
                       rollout_steps=8, seed=1, threads=1, ppo=ppo, model=SMALL_TRANSFORMER, fx=fx, hooks=_HOOKS)


def fx_m15() -> TrainConfig:
    """15-minute bars: the synthetic OU market without --data."""
    return _fx_job("fx-m15", _M15, total_steps=800_000, ppo=_PPO_M15)


def fx_h1() -> TrainConfig:
    """Hourly bars; splits fit one year of data (validation and test ~2 months each)."""
    return _fx_job("fx-h1", _H1)


def fx() -> TrainConfig:
    """The default job: with --data FILE the preset for the file's bar size (fx-h1, fx-m15); without, fx-m15 on
    the synthetic 15-minute OU market (the planted-signal sanity check), ~2.5 minutes on 2 cores."""
    return dataclasses.replace(fx_m15(), preset="fx")


def fx_randomwalk() -> TrainConfig:
    """fx-m15 on a pure random walk with costs on: nothing to learn, so the agent should stay (mostly) flat."""
    return _fx_job("fx-randomwalk", _RANDOMWALK, total_steps=800_000, ppo=_PPO_M15)


BY_BAR_SECONDS = {seconds: {"fx-m15": fx_m15, "fx-h1": fx_h1}[name] for seconds, name in _ENV_BY_BAR_SECONDS.items()}
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
    name, exact = preset_for_bar_seconds(seconds)
    picked = {"fx-m15": fx_m15, "fx-h1": fx_h1}[name]()
    note = "" if exact else f" (the nearest; no preset for {seconds} s bars: its windows are counted in bars)"
    return picked, f"--data {cfg.fx.data}: {seconds} s bars -> preset {picked.preset}{note}; name a preset to choose another"
