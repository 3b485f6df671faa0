"""Financial metrics on hand-made series with hand-computed answers, edge cases, and the PNG plots."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from envs.fx.research import metrics as report
from envs.fx.research import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_total_and_annualised_return() -> None:
    assert report.total_return([1.0, 1.2, 0.9, 1.3, 0.65]) == pytest.approx(-0.35)
    # 21 % over two periods at one period a year: 10 % a year compounded
    assert report.annualised_return([1.0, 1.1, 1.21], periods_per_year=1) == pytest.approx(0.10)
    # the same 21 % in two periods at two periods a year is 21 % a year
    assert report.annualised_return([1.0, 1.1, 1.21], periods_per_year=2) == pytest.approx(0.21)
    assert report.annualised_return([1.0, 0.5, 0.0], periods_per_year=252) == -1.0
    assert report.total_return([5.0]) == 0.0


def test_sharpe_known_mean_and_std() -> None:
    # alternating 2 % / 0 %: mean 1 %, sample std 1 % x sqrt(10/9) over 10 periods
    r = np.tile([0.02, 0.0], 5)
    expected = 0.01 / (0.01 * math.sqrt(10 / 9)) * math.sqrt(252)
    assert report.sharpe(r, 252) == pytest.approx(expected)
    assert report.sharpe(r, 252) == pytest.approx(15.0599, abs=1e-4)
    assert report.annualised_volatility(r, 252) == pytest.approx(0.01 * math.sqrt(10 / 9) * math.sqrt(252))
    # an annual risk-free rate is converted to a per-period one: (1.0201)^(1/2) - 1 = 1 % per period
    assert report.sharpe(r, 2, rf=0.0201) == pytest.approx(0.0, abs=1e-9)


def test_sortino_known() -> None:
    r = np.array([0.02, -0.01, 0.02, -0.01])
    # mean 0.005, downside deviation sqrt((0 + 1e-4 + 0 + 1e-4) / 4) = sqrt(5e-5)
    assert report.sortino(r, 252) == pytest.approx(0.005 / math.sqrt(5e-5) * math.sqrt(252))
    assert report.sortino([0.01, 0.02], 252) == report.RATIO_CAP  # no losing period, positive mean: capped


def test_max_drawdown_and_calmar() -> None:
    assert report.max_drawdown([1.0, 1.2, 0.9, 1.3, 0.65]) == pytest.approx(0.5)
    np.testing.assert_allclose(report.drawdown([1.0, 1.2, 0.9, 1.3, 0.65]), [0, 0, 0.25, 0, 0.5])
    assert report.max_drawdown([1.0, 1.1, 1.2]) == 0.0
    # 21 % in 3 periods at 3 a year = 21 % a year; worst drop 1.1 -> 0.99 = 10 %
    assert report.calmar([1.0, 1.1, 0.99, 1.21], periods_per_year=3) == pytest.approx(2.1)


POSITIONS = np.array([0, 1, 1, 0, -1, -1, 1, 0], dtype=float)
EQUITY = np.array([100, 100, 102, 104, 103.5, 103, 101, 100, 100.5])


def test_trade_segmentation_and_returns() -> None:
    assert report.trade_segments(POSITIONS) == [(1, 2), (4, 5), (6, 6)]
    assert report.trade_segments([0.5, 1.0, 0.5]) == [(0, 2)]  # resizing is not a new trade
    assert report.n_trades(POSITIONS) == 3
    # long over steps 1-2 closed by flat step 3 (its exit cost counts): 103.5 / 100
    # short over 4-5, flipped on step 6 (that step belongs to the new long): 101 / 103.5
    # long on step 6, closed by flat step 7: 100.5 / 101
    expected = [103.5 / 100 - 1, 101 / 103.5 - 1, 100.5 / 101 - 1]
    np.testing.assert_allclose(report.trade_returns(POSITIONS, EQUITY), expected)
    # a trade still open at the end is marked at the last equity
    np.testing.assert_allclose(report.trade_returns([0, 1, 1], [10, 10, 11, 12]), [12 / 10 - 1])
    with pytest.raises(ValueError, match="one more point"):
        report.trade_returns(POSITIONS, EQUITY[1:])


def test_win_rate_and_profit_factor() -> None:
    trades = [0.1, -0.05, 0.02, -0.01]
    assert report.win_rate(trades) == 0.5
    assert report.profit_factor(trades) == pytest.approx(0.12 / 0.06)
    tr = report.trade_returns(POSITIONS, EQUITY)
    assert report.win_rate(tr) == pytest.approx(1 / 3)
    assert report.profit_factor(tr) == pytest.approx(0.035 / (1 - 101 / 103.5 + 1 - 100.5 / 101))
    assert report.profit_factor([0.01, 0.02]) == report.RATIO_CAP  # wins and no losses: capped


def test_turnover_and_exposure() -> None:
    # |changes| from flat: 0, 1, 0, 1, 1, 0, 2, 1 = 6 over 8 bars
    assert report.turnover(POSITIONS) == pytest.approx(0.75)
    assert report.turnover(POSITIONS, periods_per_year=100) == pytest.approx(75.0)
    assert report.exposure(POSITIONS) == pytest.approx(5 / 8)
    assert report.turnover([0.5, 0.5, -0.5]) == pytest.approx(1.5 / 3)


def test_edge_cases_no_trades_flat_equity() -> None:
    flat = np.full(50, 1000.0)
    rets = report.period_returns(flat)
    for value in (report.sharpe(rets, 252), report.sortino(rets, 252), report.annualised_volatility(rets, 252),
                  report.max_drawdown(flat), report.calmar(flat, 252), report.annualised_return(flat, 252)):
        assert value == 0.0
    no_trades = report.trade_returns(np.zeros(49), flat)
    assert no_trades.size == 0
    assert report.win_rate(no_trades) == 0.0 and report.profit_factor(no_trades) == 1.0  # nothing won or lost
    assert report.turnover(np.zeros(49)) == 0.0 and report.exposure(np.zeros(49)) == 0.0
    assert report.sharpe([0.01] * 5, 252) == 0.0  # constant returns: zero std, defined as 0
    assert report.sharpe([], 252) == 0.0 and report.sortino([], 252) == 0.0
    with pytest.raises(ValueError, match="NaN"):
        report.max_drawdown([1.0, float("nan")])


def test_compute_metrics_keys_and_values() -> None:
    traj = SimpleNamespace(equity_curve=EQUITY, position=POSITIONS, costs=np.array([0, 0.5, 0, 0.5, 0.5, 0, 1, 0.5]))
    m = report.compute_metrics(traj, periods_per_year=100)
    assert list(m) == [*report.METRIC_KEYS, "annualised_note"]  # 8 bars at 100 a year: not annualised
    assert m["annualised_return"] is None and m["calmar"] is None and m["years"] == pytest.approx(0.08)
    assert report.compute_metrics(traj, periods_per_year=8)["annualised_return"] == pytest.approx(0.005)
    assert m["total_return"] == pytest.approx(0.005)
    assert m["max_drawdown"] == pytest.approx(1 - 100 / 104)
    assert m["n_trades"] == 3 and isinstance(m["n_trades"], int)
    assert m["turnover"] == pytest.approx(75.0)
    assert m["exposure"] == pytest.approx(0.625)
    assert m["costs_paid"] == pytest.approx(3.0)
    assert m["win_rate"] == pytest.approx(1 / 3)
    assert all(math.isfinite(v) for k, v in m.items() if k not in ("annualised_return", "calmar", "annualised_note"))
    with pytest.raises(ValueError, match="periods_per_year"):
        report.compute_metrics(traj, periods_per_year=0)


def test_infer_periods_per_year() -> None:
    hour = np.timedelta64(1, "h")
    mon = np.datetime64("2024-01-01T00:00")  # a Monday
    fri_to_mon = np.concatenate([mon + np.arange(0, 60) * hour,              # Mon, Tue, half of Wed
                                 mon + np.timedelta64(7, "D") + np.arange(0, 30) * hour])  # next Mon
    assert report.infer_periods_per_year(fri_to_mon) == 252 * 24
    days = np.array([np.datetime64("2024-01-01") + np.timedelta64(d, "D") for d in range(21) if d % 7 < 5])
    assert report.infer_periods_per_year(days) == 252
    weeks = np.datetime64("2024-01-01") + np.arange(10) * np.timedelta64(7, "D")
    assert report.infer_periods_per_year(weeks) == pytest.approx(365.25 / 7)
    minutes_ns = np.arange(3 * 1440, dtype=np.int64) * 60 * 10**9
    assert report.infer_periods_per_year(minutes_ns) == 252 * 1440
    # partial first and last days (3 h, then 2 h of 5-minute bars on a 4-day span) are left out
    five_min = np.int64(300 * 10**9)
    partial = 21 * 3600 * 10**9 + np.arange(36 + 2 * 288 + 24, dtype=np.int64) * five_min
    assert report.infer_periods_per_year(partial) == 252 * 288
    # under three calendar days there is no full day: 24 h / spacing
    assert report.infer_periods_per_year(partial[:100]) == 252 * 288
    with pytest.raises(ValueError, match="increasing"):
        report.infer_periods_per_year(np.array([0, 10, 10], dtype=np.int64))


def test_plots_written(tmp_path) -> None:
    rng = np.random.default_rng(0)
    n = 300
    times = np.datetime64("2024-03-04T00:00") + np.arange(n) * np.timedelta64(1, "h")
    close = 1.10 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    pos = np.sign(np.sin(np.arange(n) / 15.0)).round()
    strat = 10_000 * np.cumprod(np.r_[1.0, 1 + pos[:-1] * np.diff(close) / close[:-1]])
    curves = {"policy": strat, "flat": np.full(n, 10_000.0), "buy and hold": 10_000 * close / close[0]}
    paths = [
        plots.plot_equity_drawdown(curves, tmp_path / "equity_drawdown.png", times=times),
        plots.plot_positions(close, pos, tmp_path / "positions.png", times=times),
        plots.plot_trade_returns(report.trade_returns(pos[1:], strat), tmp_path / "trade_returns.png"),
        plots.plot_trade_returns(np.array([]), tmp_path / "no_trades.png"),
    ]
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, p
    with pytest.raises(ValueError, match="'flat'"):
        plots.plot_equity_drawdown({"policy": strat, "flat": strat[:-1]}, tmp_path / "bad.png")
