"""``FxEnvConfig``: every knob of the FX trading env in one dataclass.

tyro turns each field into a CLI flag (``--fx.spread-pips 0.8``); the docstring under each
field is its help text. Prices are quote-currency prices and the account currency is the
quote currency (USD for EURUSD), so every money amount below is in quote currency.
Defaults give a 1-minute synthetic market with a ~1 pip spread that a PPO agent can learn
on in minutes on two CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import tyro

ACTION_MODES = ("discrete", "continuous")
OBS_MODES = ("full", "price")
REWARD_COMPONENTS = ("pnl", "transaction_cost", "swap", "drawdown_penalty", "holding_penalty",
                     "differential_sharpe")


@dataclass
class FxEnvConfig:
    """Market data, features, execution costs, account and reward of the FX trading env."""

    # --- market data -------------------------------------------------------------------------
    data: Annotated[str | None, tyro.conf.arg(aliases=("--data",))] = None
    """CSV/Parquet file of OHLCV bars to train on (``--data FILE`` for short); None generates a synthetic market."""
    synthetic_kind: str = "ou"
    """Synthetic market generator when ``data`` is None: gbm, ou, regime or randomwalk."""
    synthetic_n_bars: int = 60_000
    """Number of synthetic bars to generate."""
    synthetic_seed: int = 0
    """Seed of the synthetic market (independent of the agent/env seed)."""
    bar_seconds: int = 60
    """Bar length in seconds of the synthetic market."""
    train_frac: float = 0.7
    """Fraction of bars in the training split."""
    val_frac: float = 0.15
    """Fraction of bars in the validation split."""
    test_frac: float = 0.15
    """Fraction of bars in the test split."""

    mirror_augment: bool = False
    """Training episodes run on the real or the mirrored price series (log price reflected around
    the split's first open, so every rise is a fall, and the long and short swap rates trade
    places as for the inverted pair), chosen at random per episode; feature normalisation is
    fitted on both. A policy then cannot profit from the training split's net
    drift, only from patterns that pay in both directions. Validation, test and backtests
    always use the real series."""

    report_split: Annotated[Literal["test", "val", "none"], tyro.conf.arg(aliases=("--report-split",))] = "test"
    """Backtest the final policy on this split at the end of training and write report.json + PNGs to
    <out_dir>/report (``none``: no report)."""

    # --- observation ---------------------------------------------------------------------------
    obs_mode: str = "full"
    """full: causal multi-timeframe features; price: raw close and its difference per bar
    (the gym-anytrading style observation, for benchmarks)."""
    window_high: int = 64
    """W1: base bars in the ``high_freq`` window."""
    window_medium: int = 16
    """W2: aggregated bars in the ``medium_freq`` window."""
    window_low: int = 16
    """W3: aggregated bars in the ``low_freq`` window."""
    agg_medium: int = 15
    """Base bars per ``medium_freq`` aggregate (only fully closed aggregates are observed)."""
    agg_low: int = 60
    """Base bars per ``low_freq`` aggregate (only fully closed aggregates are observed)."""
    vol_window: int = 16
    """Base bars in the rolling realised-volatility feature (and the slippage volatility)."""
    ma_window: int = 60
    """Base bars in the moving average of ``high_freq``'s ``ma_gap`` feature (log close minus mean log close)."""
    ma_window_long: int = 600
    """Base bars in the moving average of the ``ma_gap`` feature of the medium/low aggregates."""
    obs_clip: float = 10.0
    """Observation features are clipped to [-obs_clip, obs_clip] (the Box bounds)."""

    # --- episodes and actions ------------------------------------------------------------------
    episode_bars: int = 1024
    """Steps per training episode (truncated after this many, or at the end of the split)."""
    action_mode: str = "discrete"
    """discrete: Discrete(len(position_levels)); continuous: Box(-1, 1, (1,)) target fraction."""
    position_levels: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)
    """Target positions of the discrete actions, as fractions of ``max_position``."""
    max_position: float = 100_000.0
    """Largest position in base-currency units (100k = one standard lot)."""

    # --- account and execution -----------------------------------------------------------------
    initial_equity: float = 10_000.0
    """Starting cash of every episode, in account (quote) currency."""
    max_leverage: float = 30.0
    """Orders are cut so that |position| x price <= max_leverage x equity at the fill."""
    pip_size: float = 1e-4
    """Price of one pip (1e-4 for EURUSD, 1e-2 for USDJPY)."""
    spread_pips: float = 1.0
    """Bid/ask spread in pips; half of it is paid on each fill (bars are mid prices)."""
    commission_per_million: float = 20.0
    """Commission in account currency per one million of traded notional (units x price)."""
    slippage_bps_per_million: float = 0.5
    """Slippage, in basis points of price per million units traded (grows with order size)."""
    slippage_vol_mult: float = 1.0
    """Extra slippage = this x recent per-bar volatility x (units / 1e6), as a price fraction."""
    latency_bars: int = 1
    """An action decided on bar t's close fills at the open of bar t + latency_bars (>= 1)."""
    initial_margin: float = 0.05
    """Initial margin rate: orders are also cut so that |position| x price <= equity / initial_margin."""
    maintenance_margin: float = 0.025
    """Forced liquidation (episode terminates) when equity < maintenance_margin x |position| x close."""
    swap_long: float = -0.00004
    """Swap credited per unit of a LONG position held across the rollover (negative = charge)."""
    swap_short: float = 0.00001
    """Swap credited per unit of a SHORT position held across the rollover (negative = charge)."""
    rollover_hour_utc: float = 22.0
    """Daily rollover time (UTC hour); every crossing while a position is held accrues swap."""

    # --- reward ----------------------------------------------------------------------------------
    w_pnl: float = 1.0
    """Weight of gross mark-to-market PnL (relative to initial equity)."""
    w_transaction_cost: float = 1.0
    """Weight of spread + commission + slippage paid (a negative component)."""
    w_swap: float = 1.0
    """Weight of overnight swap (financing; with pnl and costs it makes the reward the net equity change)."""
    w_drawdown_penalty: float = 0.0
    """Weight of the increase of drawdown (peak equity - equity) / initial equity (negative)."""
    w_holding_penalty: float = 0.0
    """Weight of -|position| / max_position per step."""
    w_differential_sharpe: float = 0.0
    """Weight of Moody's differential Sharpe ratio of per-step returns."""
    dsr_eta: float = 0.01
    """Adaptation rate of the differential Sharpe ratio's moving moments."""
    reward_scale: float = 100.0
    """Reward = reward_scale x sum of weighted components; with default weights an episode's
    rewards sum to reward_scale x (net equity change) / initial equity (i.e. percent)."""

    def validate(self) -> "FxEnvConfig":
        """Raise ValueError naming the ``--fx.*`` flag of the first bad value; return self."""
        def bad(name: str, why: str) -> None:
            raise ValueError(f"--fx.{name.replace('_', '-')}: {why} (got {getattr(self, name)!r})")

        if self.synthetic_kind not in ("gbm", "ou", "regime", "randomwalk"):
            bad("synthetic_kind", "must be gbm, ou, regime or randomwalk")
        if self.action_mode not in ACTION_MODES:
            bad("action_mode", f"must be one of {ACTION_MODES}")
        if self.obs_mode not in OBS_MODES:
            bad("obs_mode", f"must be one of {OBS_MODES}")
        for name in ("window_high", "window_medium", "window_low", "agg_medium", "agg_low",
                     "episode_bars", "latency_bars", "synthetic_n_bars", "bar_seconds"):
            if int(getattr(self, name)) < 1:
                bad(name, "must be >= 1")
        if self.vol_window < 2:
            bad("vol_window", "must be >= 2")
        if self.ma_window < 1:
            bad("ma_window", "must be >= 1")
        if self.ma_window_long < 1:
            bad("ma_window_long", "must be >= 1")
        for name in ("train_frac", "val_frac", "test_frac"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                bad(name, "must be in [0, 1]")
        if abs(self.train_frac + self.val_frac + self.test_frac - 1.0) > 1e-9:
            bad("train_frac", "train_frac + val_frac + test_frac must equal 1")
        if not self.position_levels or any(abs(x) > 1.0 for x in self.position_levels):
            bad("position_levels", "must be a non-empty list of fractions in [-1, 1]")
        for name in ("max_position", "initial_equity", "max_leverage", "pip_size", "obs_clip",
                     "initial_margin", "reward_scale"):
            if not getattr(self, name) > 0:
                bad(name, "must be > 0")
        for name in ("spread_pips", "commission_per_million", "slippage_bps_per_million",
                     "slippage_vol_mult", "maintenance_margin", "dsr_eta"):
            if getattr(self, name) < 0:
                bad(name, "must be >= 0")
        if self.maintenance_margin > self.initial_margin:
            bad("maintenance_margin", "must not exceed --fx.initial-margin")
        if not 0.0 <= self.rollover_hour_utc < 24.0:
            bad("rollover_hour_utc", "must be in [0, 24)")
        return self

    def reward_weights(self) -> dict[str, float]:
        return {name: float(getattr(self, f"w_{name}")) for name in REWARD_COMPONENTS}

    def lookback_bars(self) -> int:
        """Base bars before the first observable bar (the longest lookback of any window)."""
        return first_valid_index(self)


def first_valid_index(cfg: FxEnvConfig) -> int:
    """Smallest bar index t at which every window is filled with defined features.

    The oldest base bar in the window needs ``vol_window`` earlier returns and ``ma_window``
    closes; the oldest aggregate j0 needs a previous aggregate (j0 >= 1) and its last bar
    (j0 + 1) * k - 1 needs ``ma_window_long`` closes. The newest closed aggregate at bar t is
    (t + 1) // k - 1, so the oldest is (t + 1) // k - W."""
    t_high = max(cfg.vol_window, cfg.ma_window - 1) + cfg.window_high - 1

    def t_agg(k: int, w: int) -> int:
        j0 = max(1, -(-cfg.ma_window_long // k) - 1)
        return (j0 + w) * k - 1

    return max(t_high, t_agg(cfg.agg_medium, cfg.window_medium), t_agg(cfg.agg_low, cfg.window_low))
