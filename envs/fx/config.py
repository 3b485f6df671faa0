"""``FxEnvConfig``: every knob of the FX trading env in one dataclass.

tyro turns each field into a CLI flag (``--fx.spread-pips 0.8``); the docstring under each
field is its help text. Prices are quote-currency prices of the pair (USD for EURUSD, JPY
for USDJPY); money amounts of the account (equity, costs, commission, margin) are in the
account currency (``--fx.account-currency``, USD by default), converted at the bar's rate.
Defaults describe a 1-minute synthetic EURUSD-like market; the presets in ``configs/fx.py``
set what fits 15-minute and hourly bars.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Annotated, ClassVar, Literal

import tyro

ACTION_MODES = ("discrete", "continuous")
OBS_MODES = ("full", "price")
PRICE_SIDES = ("auto", "mid", "bid", "ask")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REWARD_COMPONENTS = ("pnl", "transaction_cost", "swap", "drawdown_penalty", "holding_penalty",
                     "variance_penalty", "differential_sharpe")


@dataclass
class FxEnvConfig:
    """Market data, features, execution costs, account and reward of the FX trading env."""

    RANGES: ClassVar[dict[str, str]] = {
        "synthetic_n_bars": "[2, 1e9]", "synthetic_seed": "[0, 4294967295]", "bar_seconds": "[1, 2678400]",
        "synthetic_annual_vol": "[0, 10]", "synthetic_half_life": "(0, 1e9]", "synthetic_level_drift": "[0, 10]",
        "synthetic_switch_prob": "[0, 1]", "synthetic_weekend_gap_hours": "[0, 1000]",
        "train_frac": "(0, 1]", "val_frac": "[0, 1]", "test_frac": "[0, 1]", "split_bounds": "[0, 1e12]",
        "embargo_bars": "[0, 1e9]", "max_return_sigmas": "[0, 1e12]", "max_gap_days": "[0, 1e6]",
        "window_high": "[1, 100000]", "window_medium": "[1, 100000]", "window_low": "[1, 100000]",
        "agg_medium": "[1, 100000]", "agg_low": "[1, 100000]", "vol_window": "[2, 1000000]",
        "ma_window": "[1, 1000000]", "ma_window_long": "[1, 1000000]", "obs_clip": "(0, 1e6]",
        "episode_bars": "[1, 1e9]", "position_levels": "[-1, 1]", "max_position": "(0, 1e12]", "lot_size": "[0, 1e12]",
        "conversion_rate": "(0, 1e9]", "initial_equity": "(0, 1e15]", "max_leverage": "(0, 10000]",
        "initial_margin": "(0, 1]", "maintenance_margin": "[0, 1]", "pip_size": "(0, 1000]",
        "spread_pips": "[0, 1e6]", "commission_per_million": "[0, 1e9]", "slippage_pips": "[0, 1e6]",
        "impact_pips_per_million": "[0, 1e9]", "cost_scale": "[0, 1e6]", "latency_bars": "[1, 1000000]",
        "swap_long": "[-1e6, 1e6]", "swap_short": "[-1e6, 1e6]", "w_pnl": "[-1e6, 1e6]",
        "w_transaction_cost": "[-1e6, 1e6]", "w_swap": "[-1e6, 1e6]", "w_drawdown_penalty": "[-1e6, 1e6]",
        "w_holding_penalty": "[-1e6, 1e6]", "w_variance_penalty": "[-1e6, 1e6]", "w_differential_sharpe": "[-1e6, 1e6]",
        "dsr_eta": "[0, 1]", "reward_scale": "(0, 1e6]",
    }
    """Allowed values of the numeric flags, in interval notation (the commands check them with
    :mod:`engine.ranges` before any work; :meth:`validate` checks them for direct users of the env)."""
    SESSION_FIELDS: ClassVar[tuple[str, ...]] = ("accept_anomalies", "max_return_sigmas", "max_gap_days")
    """Fields a later session of the same run may change (what the data checks accept)."""

    # --- market data -------------------------------------------------------------------------
    data: Annotated[str | None, tyro.conf.arg(aliases=("--data",))] = None
    """CSV/Parquet file of OHLCV bars to train on (``--data FILE`` for short); None generates a synthetic market."""
    pair: str | None = None
    """The currency pair of the bars, e.g. EURUSD or USDJPY (None: from the data file's name, else EURUSD)."""
    timezone: str = "UTC"
    """Time zone of naive timestamps in the file (MT4/MT5 exports are often ``EET``); aware ones are converted."""
    price_side: Literal["auto", "mid", "bid", "ask"] = "auto"
    """Which prices a file without bid/ask columns holds. auto: ``bid_*``/``ask_*`` columns are used as
    such; otherwise a file named ``..._BID...``/``..._ASK...`` holds that side, any other mid prices.
    One-sided prices become mid prices by half of ``--fx.spread-pips``."""
    synthetic_kind: str = "ou"
    """Synthetic market generator when ``data`` is None: gbm, ou, regime or randomwalk."""
    synthetic_n_bars: int = 60_000
    """Number of synthetic bars to generate."""
    synthetic_seed: int = 0
    """Seed of the synthetic market (independent of the agent/env seed)."""
    bar_seconds: int = 60
    """Bar length in seconds of the synthetic market."""
    synthetic_annual_vol: float = 0.08
    """Annualised volatility of the synthetic market's log returns."""
    synthetic_half_life: float = 60.0
    """Mean-reversion half-life in bars (ou, and the mean-revert regime of ``regime``)."""
    synthetic_level_drift: float = 0.0
    """ou: annualised volatility of the slow random walk of the equilibrium level (0 = a fixed level)."""
    synthetic_switch_prob: float = 0.002
    """regime: probability per bar of switching regime."""
    synthetic_weekend_gap_hours: float = 0.0
    """Volatility of the weekend gap (Friday close to Sunday open), in hours of trading volatility (0 = no gap)."""
    max_return_sigmas: float = 100.0
    """Data check: a bar whose move from the previous close (open, high, low or close; over a gap, per square root
    of the bars it spans) is more than this many robust standard deviations (1.4826 x the median absolute
    deviation of the file's bar returns) is an error naming its row (0 = no check). A decimal slip or a bad
    tick is thousands; real news bars stay well below 100."""
    max_gap_days: float = 7.0
    """Data check: a hole between two bars longer than this many days (and 3 bar lengths) is an error naming
    its row (0 = no check). Weekends and holidays are a few days."""
    accept_anomalies: bool = False
    """Train on a file the data checks flag (big moves, long holes, naive and aware times mixed) anyway, with a
    warning that counts them: for real events you know about (e.g. the CHF de-peg of 2015)."""
    train_frac: float = 0.7
    """Fraction of the usable bars (after the observation windows are filled) in the training split."""
    val_frac: float = 0.15
    """Fraction of the usable bars in the validation split."""
    test_frac: float = 0.15
    """Fraction of the usable bars in the test split."""
    split_bounds: tuple[int, ...] | None = None
    """Explicit bar ranges (train_lo, train_hi, val_lo, val_hi, test_lo, test_hi) instead of the fractions: how
    ``engine.walkforward`` gives each fold its periods. Bars before train_lo still fill the windows."""
    embargo_bars: int | None = None
    """Bars left out between splits so that no reward horizon spans two of them (None: ``episode_bars``).
    A split's observation windows still look back across the embargo: history is observable."""

    mirror_augment: bool = False
    """Training episodes run on the real or the mirrored price series (log price reflected around
    the series' first open, so every rise is a fall, and the long and short swap rates trade
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
    """Bar lengths per ``medium_freq`` aggregate (clock-aligned blocks; only closed blocks are observed)."""
    agg_low: int = 60
    """Bar lengths per ``low_freq`` aggregate (clock-aligned blocks; only closed blocks are observed)."""
    vol_window: int = 16
    """Base bars in the rolling realised-volatility feature."""
    ma_window: int = 60
    """Base bars in the moving average of ``high_freq``'s ``ma_gap`` feature (log close minus mean log close)."""
    ma_window_long: int = 600
    """Base bars in the moving average of the ``ma_gap`` feature of the medium/low aggregates."""
    volume_feature: bool = False
    """Add the tick volume as a feature (log volume minus its recent mean)."""
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
    lot_size: float = 1_000.0
    """Orders trade whole multiples of this many base units (1,000 = a micro lot; 0 = any size)."""

    # --- account -------------------------------------------------------------------------------
    account_currency: str = "USD"
    """Currency of the account: equity, P&L, costs, swap and margin are converted into it."""
    conversion_rate: float | None = None
    """Fixed quote -> account currency rate, when the account currency is neither leg of the pair."""
    conversion_data: str | None = None
    """Bar file of ``--fx.conversion-pair`` to convert quote into account currency at each bar (as-of its closes)."""
    conversion_pair: str | None = None
    """The pair of ``--fx.conversion-data`` (quote/account or account/quote, e.g. USDJPY for a JPY quote and a USD account)."""
    initial_equity: float = 10_000.0
    """Starting equity of every episode, in account currency."""
    max_leverage: float = 30.0
    """Orders are cut so that |position| x price <= max_leverage x equity at the fill (in account currency)."""
    initial_margin: float = 0.05
    """Initial margin rate: orders are also cut so that |position| x price <= equity / initial_margin."""
    maintenance_margin: float = 0.025
    """Stop-out (the episode terminates) when equity falls below this x |position| x price, checked at the
    bar's open, at its adverse extreme (the low for a long, the high for a short) and at its close."""

    # --- costs ---------------------------------------------------------------------------------
    pip_size: float | None = None
    """Price of one pip (None: 0.01 for JPY-quoted pairs, else 0.0001)."""
    spread_pips: float = 0.8
    """Bid/ask spread in pips when the file has no bid/ask columns (those give the spread of every bar);
    half of it is paid on each fill."""
    commission_per_million: float = 20.0
    """Commission in account currency per one million of traded notional (units x price, converted), each side."""
    slippage_pips: float = 0.05
    """Slippage per unit traded, in pips, each side: the cost is linear in the order size and does not
    depend on the bar length."""
    impact_pips_per_million: float = 0.0
    """Optional market impact: extra pips per unit for every million units of the order (cost grows with size^2)."""
    cost_scale: float = 1.0
    """Multiplies every spread (the file's or --fx.spread-pips), the slippage and the impact term (not the
    commission): the knob of the reports' cost-sensitivity table."""
    latency_bars: int = 1
    """An action decided on bar t's close fills at the open of bar t + latency_bars (>= 1)."""

    # --- financing -----------------------------------------------------------------------------
    swap_long: float | None = None
    """Swap per unit of a LONG position per night, in quote currency (negative = charge; None: the pair's
    indicative default, see envs/fx/instruments.py)."""
    swap_short: float | None = None
    """Swap per unit of a SHORT position per night, in quote currency (negative = charge; None: the pair's default)."""
    swap_data: str | None = None
    """CSV schedule of swap rates (columns date, swap_long, swap_short; each row applies from its date on),
    instead of constant rates."""
    rollover_time: str = "17:00"
    """Local time of the daily rollover (``HH:MM`` in ``--fx.rollover-timezone``)."""
    rollover_timezone: str = "America/New_York"
    """Time zone of the rollover (New York: 21:00 UTC in summer, 22:00 in winter)."""
    triple_swap_day: Literal["mon", "tue", "wed", "thu", "fri"] = "wed"
    """Weekday whose rollover books three nights (the weekend's value dates); no rollover on Saturday or Sunday."""

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
    w_variance_penalty: float = 0.0
    """Weight of -(step equity change / initial equity)^2: with it the reward is a mean-variance (quadratic)
    utility, which charges a position for the risk it carries and pays for it only where it earns more."""
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

        _check_ranges(self)  # NaN and inf pass every comparison below: the ranges reject them first
        if self.synthetic_kind not in ("gbm", "ou", "regime", "randomwalk"):
            bad("synthetic_kind", "must be gbm, ou, regime or randomwalk")
        if self.action_mode not in ACTION_MODES:
            bad("action_mode", f"must be one of {ACTION_MODES}")
        if self.obs_mode not in OBS_MODES:
            bad("obs_mode", f"must be one of {OBS_MODES}")
        if self.price_side not in PRICE_SIDES:
            bad("price_side", f"must be one of {PRICE_SIDES}")
        if self.report_split not in ("test", "val", "none"):
            bad("report_split", "must be test, val or none")
        if self.latency_bars > self.episode_bars:
            bad("latency_bars", f"must not exceed --fx.episode-bars ({self.episode_bars})")
        if self.split_bounds is not None:
            b = list(self.split_bounds)
            if len(b) != 6 or any(x < 0 for x in b) or b != sorted(b) or b[0] == b[1]:
                bad("split_bounds", "must be 6 increasing bar indices train_lo < train_hi <= val_lo <= val_hi <= "
                                    "test_lo <= test_hi")
        if abs(self.train_frac + self.val_frac + self.test_frac - 1.0) > 1e-9:
            bad("train_frac", "train_frac + val_frac + test_frac must equal 1")
        if not self.position_levels:
            bad("position_levels", "must be a non-empty list of fractions in [-1, 1]")
        if self.lot_size > self.max_position:
            bad("lot_size", f"must not exceed --fx.max-position ({self.max_position})")
        if self.maintenance_margin > self.initial_margin:
            bad("maintenance_margin", "must not exceed --fx.initial-margin")
        for name in ("pair", "account_currency", "conversion_pair"):
            value = getattr(self, name)
            width = 3 if name == "account_currency" else 6
            if value is not None and (len(value) != width or not value.isalpha()):
                bad(name, f"must be {width} letters, e.g. {'USD' if width == 3 else 'EURUSD'}")
        if (self.conversion_data is None) != (self.conversion_pair is None):
            bad("conversion_pair", "--fx.conversion-data and --fx.conversion-pair go together")
        hh, _, mm = self.rollover_time.partition(":")
        if not (hh.isdigit() and mm.isdigit() and 0 <= int(hh) < 24 and 0 <= int(mm) < 60):
            bad("rollover_time", "must be HH:MM")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.rollover_timezone)
            ZoneInfo(self.timezone)
        except Exception:  # noqa: BLE001  (zoneinfo raises several types)
            bad("timezone", f"--fx.timezone {self.timezone!r} and --fx.rollover-timezone {self.rollover_timezone!r} "
                            "must be IANA time zones (e.g. UTC, EET, America/New_York)")
        return self

    def reward_weights(self) -> dict[str, float]:
        return {name: float(getattr(self, f"w_{name}")) for name in REWARD_COMPONENTS}

    @property
    def embargo(self) -> int:
        """Bars between splits (``embargo_bars``, or ``episode_bars`` when unset)."""
        return self.episode_bars if self.embargo_bars is None else int(self.embargo_bars)


_INTERVAL = re.compile(r"^([\[(])\s*([^,]+?)\s*,\s*([^,]+?)\s*([\])])$")


def _check_ranges(cfg: FxEnvConfig) -> None:
    """``cfg.RANGES`` for direct users of the env (gym.make, scripts). The simulator imports nothing of the
    engine, so this reads the same interval notation as :mod:`engine.ranges` (which the commands use) itself."""
    for name, spec in cfg.RANGES.items():
        value = getattr(cfg, name)
        m = _INTERVAL.match(spec)
        lo, hi = float(m.group(2)), float(m.group(3))
        for v in value if isinstance(value, tuple) else (value,):
            if v is None or isinstance(v, bool):
                continue
            inside = ((v >= lo) if m.group(1) == "[" else (v > lo)) and ((v <= hi) if m.group(4) == "]" else (v < hi))
            if not (math.isfinite(v) and inside):
                kind = "a finite number" if isinstance(v, float) else "an integer"
                raise ValueError(f"--fx.{name.replace('_', '-')}: must be {kind} in {spec} (got {value!r})")


def lookback_estimate(cfg: FxEnvConfig) -> int:
    """About how many bars fill every observation window (the exact first valid bar depends on the data:
    clock-aligned aggregates skip the empty weekend blocks). Used to say how much data settings need."""
    t_high = max(cfg.vol_window, cfg.ma_window - 1) + cfg.window_high - 1

    def t_agg(k: int, w: int) -> int:
        j0 = max(1, -(-cfg.ma_window_long // k) - 1)
        return (j0 + w + 1) * k - 1

    return max(t_high, t_agg(cfg.agg_medium, cfg.window_medium), t_agg(cfg.agg_low, cfg.window_low))
