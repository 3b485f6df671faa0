"""Data quirks of real exports: time zones, bid/ask columns, one-sided files, tick volume; synthetic markets
with weekend gaps and a drifting level."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from envs.fx.config import FxEnvConfig
from envs.fx.data import DataError, load_bars
from envs.fx.features import VOLUME_FEATURE, feature_names
from envs.fx.market import build_market
from envs.fx.synthetic import generate
from envs.fx.vector import FxVectorEnv

SMALL = FxEnvConfig(window_high=8, window_medium=2, window_low=2, agg_medium=4, agg_low=8, vol_window=4, ma_window=8,
                    ma_window_long=16, episode_bars=32, train_frac=0.6, val_frac=0.2, test_frac=0.2)


def test_naive_times_in_a_named_time_zone_become_utc(tmp_path):
    path = tmp_path / "mt4.csv"
    path.write_text("time,open,high,low,close\n"
                    "2024.07.01 03:00,1.1,1.2,1.0,1.1\n"   # EEST (UTC+3) in summer
                    "2024.12.02 02:00,1.1,1.2,1.0,1.1\n")  # EET (UTC+2) in winter
    utc = load_bars(path)
    eet = load_bars(path, timezone="EET")
    assert str(utc.time[0]) .startswith("2024-07-01T03:00")
    assert str(eet.time[0]).startswith("2024-07-01T00:00") and str(eet.time[1]).startswith("2024-12-02T00:00")
    gap = tmp_path / "dst.csv"  # 03:30 on 31 March 2024 does not exist in EET (clocks jump 03:00 -> 04:00)
    gap.write_text("time,open,high,low,close\n2024.03.31 02:30,1,1,1,1\n2024.03.31 03:30,1,1,1,1\n")
    with pytest.raises(DataError, match=r"row 2.*does not exist in time zone EET"):
        load_bars(gap, timezone="EET")


def test_bid_and_ask_columns_give_mid_prices_and_the_spread_of_every_bar(tmp_path):
    path = tmp_path / "quotes.csv"
    path.write_text("time,bid_open,bid_high,bid_low,bid_close,ask_open,ask_high,ask_low,ask_close,volume\n"
                    "2024-01-02T00:00Z,1.1000,1.1010,1.0990,1.1005,1.1002,1.1012,1.0992,1.1007,10\n"
                    "2024-01-02T01:00Z,1.1005,1.1020,1.1000,1.1010,1.1009,1.1024,1.1004,1.1014,12\n")
    bars = load_bars(path)
    assert bars.side == "bidask" and bars.open.tolist() == pytest.approx([1.1001, 1.1007])
    assert bars.spread[:, 0].tolist() == pytest.approx([2e-4, 4e-4]) and bars.volume.tolist() == [10, 12]
    crossed = tmp_path / "crossed.csv"
    crossed.write_text(path.read_text().replace("1.1009,1.1024", "1.1004,1.1024"))
    with pytest.raises(DataError, match=r"row 2.*ask_open.*crossed"):
        load_bars(crossed)
    bid_only = tmp_path / "bid.csv"
    bid_only.write_text("time,bid_open,bid_high,bid_low,bid_close\n2024-01-02T00:00Z,1.1,1.2,1.0,1.1\n")
    assert load_bars(bid_only).side == "bid"


def test_a_one_sided_file_becomes_mid_by_half_the_spread_with_a_note():
    bars = generate("ou", 3000, seed=2, bar_seconds=3600)
    ask = dataclasses.replace(bars, source="data/EURUSD_H1_ASK.csv")
    cfg = dataclasses.replace(SMALL, data="data/EURUSD_H1_ASK.csv", spread_pips=1.0)
    market = build_market(ask, cfg)
    assert market.bars.open == pytest.approx(bars.open - 0.5e-4)
    assert any("ask prices (from its name)" in n and "0.5 pips" in n for n in market.notes)
    told = build_market(bars, dataclasses.replace(SMALL, price_side="bid", spread_pips=1.0))
    assert told.bars.close == pytest.approx(bars.close + 0.5e-4)
    assert build_market(bars, SMALL).bars.close == pytest.approx(bars.close) and not build_market(bars, SMALL).notes


def test_tick_volume_is_offered_as_a_feature():
    bars = generate("ou", 3000, seed=2, bar_seconds=3600)
    cfg = dataclasses.replace(SMALL, volume_feature=True)
    assert feature_names(cfg)[-1] == VOLUME_FEATURE
    env = FxVectorEnv(bars, cfg, num_envs=1)
    obs, _ = env.reset(options={"start": 1000})
    assert obs["high_freq"].shape[-1] == 10 and obs["low_freq"].shape[-1] == 10
    assert float(obs["high_freq"][0, :, -1].abs().sum()) > 0  # it carries the volume's variation


def test_synthetic_weekend_gaps_and_a_drifting_ou_level():
    plain = generate("ou", 20_000, seed=4, bar_seconds=900)
    gapped = generate("ou", 20_000, seed=4, bar_seconds=900, weekend_gap_hours=6.0)
    t = plain.time.astype(np.int64)
    after = np.flatnonzero(np.diff(t) > 900 * 10**9) + 1  # first bars after a weekend
    assert len(after) > 10
    assert np.all(plain.open[after] == plain.close[after - 1])  # without gaps: opens at the last close
    gaps = np.log(gapped.open[after] / gapped.close[after - 1])
    hour_vol = 0.08 / np.sqrt(252 * 24)
    assert np.all(gaps != 0) and 0.5 * hour_vol * np.sqrt(6) < gaps.std() < 2 * hour_vol * np.sqrt(6)
    inside = np.setdiff1d(np.arange(1, len(t)), after)
    assert np.all(gapped.open[inside] == gapped.close[inside - 1])  # no gap within the week
    drifting = generate("ou", 20_000, seed=4, bar_seconds=900, level_drift=0.05)
    # the same shocks, but the mean the path reverts to moves: the far end of the path is elsewhere
    assert abs(np.log(drifting.close[-2000:]).mean() - np.log(plain.close[-2000:]).mean()) > 1e-3
    with pytest.raises(ValueError, match="weekend_gap_hours"):
        generate("ou", 100, seed=0, weekend_gap_hours=-1.0)


def test_synthetic_market_parameters_are_flags():
    from engine.ppo import parse_args

    cfg = parse_args(["--fx.synthetic-half-life", "600", "--fx.synthetic-level-drift", "0.02",
                      "--fx.synthetic-weekend-gap-hours", "3", "--fx.synthetic-switch-prob", "0.01",
                      "--fx.synthetic-annual-vol", "0.1"])
    assert (cfg.fx.synthetic_half_life, cfg.fx.synthetic_level_drift, cfg.fx.synthetic_weekend_gap_hours,
            cfg.fx.synthetic_switch_prob, cfg.fx.synthetic_annual_vol) == (600, 0.02, 3, 0.01, 0.1)
    from envs.fx.market import load_market

    m = load_market(dataclasses.replace(cfg.fx, synthetic_n_bars=20_000))
    assert "n_bars=20000" in m.bars.source


def test_nan_and_inf_settings_are_refused_naming_the_flag():
    for name in ("spread_pips", "slippage_pips", "commission_per_million", "dsr_eta", "w_pnl"):
        with pytest.raises(ValueError, match=f"--fx.{name.replace('_', '-')}.*finite"):
            dataclasses.replace(SMALL, **{name: float("nan")}).validate()
    with pytest.raises(ValueError, match="--fx.position-levels"):
        dataclasses.replace(SMALL, position_levels=(float("nan"),)).validate()
    env = FxVectorEnv(generate("ou", 2000, seed=1, bar_seconds=3600), SMALL, num_envs=2)
    env.reset()
    assert torch.isfinite(env.step(torch.tensor([0, 4]))[1]).all()
