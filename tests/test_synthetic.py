"""Synthetic markets: determinism, OHLC consistency, FX scale, OU mean reversion that pays net of
a 1-pip round trip, regime statistics and the FX-week calendar."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from envs.fx.data import bars_to_frame, load_bars
from envs.fx.synthetic import (KINDS, REGIMES, SyntheticSpec, bars_per_year, generate, generate_from_spec,
                            regime_labels, session_times)

PIP = 1e-4


def _log_returns(close: np.ndarray) -> np.ndarray:
    return np.diff(np.log(close))


def _half_life(close: np.ndarray) -> float:
    """Half-life from an AR(1) fit of the demeaned log price."""
    x = np.log(close)
    x = x - x.mean()
    phi = float(np.dot(x[1:], x[:-1]) / np.dot(x[:-1], x[:-1]))
    return math.log(0.5) / math.log(phi)


def _variance_ratio(close: np.ndarray, k: int) -> float:
    """Var of overlapping k-bar log returns / (k x var of 1-bar log returns): 1 for a random walk."""
    x = np.log(close)
    return float(np.var(x[k:] - x[:-k]) / (k * np.var(np.diff(x))))


def _zscore_reversion(close: np.ndarray, window: int, enter: float, round_trip_pips: float) -> tuple[float, int]:
    """Short above +enter, long below -enter z-score of close vs its rolling mean; flat when z crosses 0.
    The position is taken at a bar's close and held to the next; half the round trip is paid per unit
    of position change. Returns (annualised Sharpe of per-bar PnL for 1-minute bars, round trips)."""
    s = pd.Series(close)
    z = ((s - s.rolling(window).mean()) / s.rolling(window).std()).to_numpy()
    pos = np.zeros(len(close))
    p = 0.0
    for t, zt in enumerate(z):
        if np.isnan(zt):
            continue
        if p == 0.0:
            p = -1.0 if zt > enter else (1.0 if zt < -enter else 0.0)
        elif (p > 0 and zt >= 0) or (p < 0 and zt <= 0):
            p = 0.0
        pos[t] = p
    turnover = np.abs(np.diff(np.concatenate(([0.0], pos))))[:-1]
    pnl = pos[:-1] * np.diff(close) - 0.5 * round_trip_pips * PIP * turnover
    return float(pnl.mean() / pnl.std() * math.sqrt(bars_per_year(60))), int(turnover.sum() // 2)


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_per_seed_and_different_across_seeds(kind: str) -> None:
    a, b, c = generate(kind, 3000, 7), generate(kind, 3000, 7), generate(kind, 3000, 8)
    for field in ("time", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.source == b.source
    assert not np.array_equal(a.close, c.close)
    np.testing.assert_array_equal(a.time, c.time)  # the calendar does not depend on the seed


@pytest.mark.parametrize("kind", KINDS)
def test_ohlc_consistent_fx_scale_and_passes_loader_validation(kind: str) -> None:
    bars = generate(kind, 20_000, 3)
    assert len(bars) == 20_000 and bars.time.dtype == np.dtype("datetime64[ns]")
    assert (bars.high >= np.maximum(bars.open, bars.close)).all()
    assert (bars.low <= np.minimum(bars.open, bars.close)).all()
    assert bars.open[0] == 1.10 and np.array_equal(bars.open[1:], bars.close[:-1])  # open = previous close
    assert np.array_equal(np.round(bars.close, 5), bars.close)  # 5-decimal quotes
    assert 0.9 < bars.close.min() and bars.close.max() < 1.3
    median_range_pips = np.median(bars.high - bars.low) / PIP
    assert 0.5 < median_range_pips < 5.0, median_range_pips
    assert (bars.volume >= 0).all() and bars.volume.mean() > 50
    again = load_bars(bars_to_frame(bars))  # the loader's full validation accepts it
    np.testing.assert_array_equal(again.close, bars.close)


@pytest.mark.parametrize("kind", KINDS)
def test_annualised_vol_of_defaults_is_fx_like(kind: str) -> None:
    bars = generate(kind, 50_000, 11)
    vol = _log_returns(bars.close).std() * math.sqrt(bars_per_year(60))
    assert 0.04 <= vol <= 0.12, vol


def test_annual_vol_parameter_scales_with_bar_length() -> None:
    daily = generate("gbm", 2520, 5, bar_seconds=86_400, annual_vol=0.06)
    vol = _log_returns(daily.close).std() * math.sqrt(252)
    assert abs(vol - 0.06) < 0.006, vol  # 2520 daily returns: relative error ~1.4 %
    hourly = generate("gbm", 20_000, 5, bar_seconds=3600, annual_vol=0.10)
    assert abs(_log_returns(hourly.close).std() * math.sqrt(252 * 24) - 0.10) < 0.005


def test_gbm_drift_shows_up_in_the_mean_return() -> None:
    bars = generate("gbm", 5040, 2, bar_seconds=86_400, drift=0.2, annual_vol=0.05)
    annual_mean = _log_returns(bars.close).mean() * 252
    # log drift = 0.2 - 0.05^2 / 2; std error of the mean = 0.05 / sqrt(5040 / 252) = 0.011
    assert abs(annual_mean - (0.2 - 0.00125)) < 0.04
    assert abs(_log_returns(generate("gbm", 5040, 2, bar_seconds=86_400, annual_vol=0.05).close).mean() * 252) < 0.04


def test_ou_half_life_and_stationary_std_match_parameters() -> None:
    for half_life in (60.0, 30.0):
        bars = generate("ou", 60_000, 4, half_life_bars=half_life)
        assert abs(_half_life(bars.close) / half_life - 1) < 0.25
    bars = generate("ou", 60_000, 4, ou_sigma_pips=20.0)
    assert abs((bars.close.std() / PIP) / 20.0 - 1) < 0.2
    assert abs(bars.close.mean() - 1.10) < 5 * PIP  # reverts to ou_level (default start_price)
    default = generate("ou", 60_000, 4)
    # default stationary std: sigma_bar / sqrt(1 - phi^2), sigma_bar = 0.08 / sqrt(252 * 1440), phi = 0.5^(1/60)
    phi = 0.5 ** (1 / 60)
    expected_pips = 0.08 / math.sqrt(252 * 1440) / math.sqrt(1 - phi * phi) * 1.10 / PIP
    assert abs(expected_pips - 9.7) < 0.1
    assert abs(default.close.std() / PIP / expected_pips - 1) < 0.2


def test_ou_mean_reverts_and_random_walk_does_not() -> None:
    ou, rw = generate("ou", 40_000, 9), generate("randomwalk", 40_000, 9)
    # OU with half-life 60: VR(240) = 2 (1 - phi^240) / (240 x 2 (1 - phi)) = 0.34
    assert _variance_ratio(ou.close, 240) < 0.5
    assert 0.7 < _variance_ratio(rw.close, 240) < 1.3
    assert np.corrcoef(np.diff(np.log(ou.close))[240:], (np.log(ou.close) - np.log(1.10))[240:-1])[0, 1] < -0.05


def test_ou_zscore_reversion_pays_well_above_a_one_pip_round_trip() -> None:
    # Back of the envelope: a 1-sigma entry is ~9.7 pips from the level and half of it comes back
    # within one half-life, so ~5 pips gross per trade against 1 pip of cost.
    for seed in (0, 1):
        sharpe, trades = _zscore_reversion(generate("ou", 20_000, seed).close, window=240, enter=1.0,
                                           round_trip_pips=1.0)
        assert sharpe >= 3.0 and trades > 100, (seed, sharpe, trades)
    # The same rule on a random walk only pays the costs.
    sharpe, trades = _zscore_reversion(generate("randomwalk", 20_000, 0).close, 240, 1.0, 1.0)
    assert sharpe < 0.0 and trades > 100


def test_regime_switches_at_the_set_rate_and_regimes_behave() -> None:
    n, p = 100_000, 0.002
    labels = regime_labels(n, 12, switch_prob=p)
    switches = int((np.diff(labels) != 0).sum())
    assert abs(switches - p * (n - 1)) < 4 * math.sqrt(p * n)  # binomial: 200 +/- 14
    assert set(np.unique(labels)) == set(range(len(REGIMES)))
    bars = generate("regime", n, 12, switch_prob=p)
    r = _log_returns(bars.close)
    lab = labels[1:]  # r[t-1] is the return of bar t
    sigma = {name: r[lab == i].std() for i, name in enumerate(REGIMES)}
    mean = {name: r[lab == i].mean() for i, name in enumerate(REGIMES)}
    assert 1.7 < sigma["high_vol"] / sigma["trend_up"] < 2.3  # high_vol_mult = 2
    # trend drift = 0.08 x base sigma per bar; the mean over ~25k bars has std error ~0.006 sigma
    assert mean["trend_up"] > 0.04 * sigma["trend_up"]
    assert mean["trend_down"] < -0.04 * sigma["trend_down"]
    assert abs(mean["mean_revert"]) < 0.03 * sigma["mean_revert"]


def test_weekends_are_skipped_like_the_fx_week() -> None:
    bars = generate("gbm", 20_000, 0)  # 2024-01-01 is a Monday
    t = pd.DatetimeIndex(bars.time)
    closed = ((t.day_of_week == 4) & (t.hour >= 22)) | (t.day_of_week == 5) | ((t.day_of_week == 6) & (t.hour < 22))
    assert not closed.any()
    # Monday 00:00 .. Friday 21:59 is 4 x 1440 + 22 x 60 = 7080 one-minute bars; then Sunday 22:00.
    assert t[7079] == pd.Timestamp("2024-01-05 21:59") and t[7080] == pd.Timestamp("2024-01-07 22:00")
    gaps = np.diff(bars.time).astype("timedelta64[s]").astype(np.int64)
    assert set(np.unique(gaps)) == {60, 48 * 3600 + 60}
    assert int((gaps > 60).sum()) == 2  # 20000 bars span two weekends and a bit
    flat = session_times(5, 3600, "2024-01-06", skip_weekends=False)
    np.testing.assert_array_equal(np.diff(flat).astype("timedelta64[s]").astype(np.int64), [3600] * 4)
    assert session_times(1, 60, "2024-01-06")[0] == np.datetime64("2024-01-07T22:00")


def test_spec_round_trip_and_errors() -> None:
    spec = SyntheticSpec("ou", 2000, 3, bar_seconds=300, params={"half_life_bars": 20.0})
    again = SyntheticSpec.from_dict(spec.to_dict())
    np.testing.assert_array_equal(generate_from_spec(again).close,
                                  generate("ou", 2000, 3, bar_seconds=300, half_life_bars=20.0).close)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['half_life'\]"):
        generate_from_spec(SyntheticSpec("ou", 100, 0, params={"half_life": 3}))
    with pytest.raises(ValueError, match="kind must be one of"):
        generate("brownian", 10, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_bars must be an integer >= 1"):
        generate("gbm", 0, 0)
    with pytest.raises(ValueError, match="switch_prob must be in"):
        generate("regime", 10, 0, switch_prob=1.5)
    with pytest.raises(ValueError, match="drift must be 0 for kind='randomwalk'"):
        generate("randomwalk", 10, 0, drift=0.1)
