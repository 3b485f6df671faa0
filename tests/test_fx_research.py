"""Is there an edge? PSR/DSR against published and hand-computed values, the block bootstrap, the baselines on
hand-made price paths, cost sensitivity, and walk-forward folds that never leak a test bar."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from envs.fx.config import FxEnvConfig
from envs.fx.research import report, stats
from envs.fx.research.baselines import Macd, ZScore, make_baselines
from envs.fx.research.walkforward import fold_bars_never_leak, fold_layout


def phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_deflated_sharpe_reproduces_the_papers_example():
    # Bailey & Lopez de Prado (2014): 5 years of daily returns, annualised SR 2.5, 100 trials whose Sharpe
    # ratios vary by 1/2 a year, skewness -3, kurtosis 10 -> DSR 0.9004 (expected max SR 0.1132 per day)
    sr = 2.5 / math.sqrt(250)
    assert stats.expected_max_sharpe(100, 0.5 / 250) == pytest.approx(0.1132, abs=5e-5)
    assert stats.deflated_sharpe(sr, 1250, 100, 0.5 / 250, skew=-3.0, kurt=10.0) == pytest.approx(0.9004, abs=5e-5)


def test_probabilistic_sharpe_by_hand():
    sr, n = 0.1, 100
    expected = phi(sr * math.sqrt(n - 1) / math.sqrt(1 + 0.5 * sr * sr))  # normal returns: g3 = 0, g4 = 3
    assert stats.probabilistic_sharpe(sr, n) == pytest.approx(expected, abs=1e-12) == pytest.approx(0.8395, abs=1e-4)
    # negative skew and fat tails widen the estimate's error: the same SR is less convincing
    assert stats.probabilistic_sharpe(sr, n, skew=-2.0, kurt=9.0) < expected
    assert stats.probabilistic_sharpe(sr, n, benchmark=0.1) == pytest.approx(0.5)
    # one trial: the DSR is the PSR against zero, deflated by the estimate's own variance only
    assert stats.deflated_sharpe(sr, n, 1) == pytest.approx(expected)
    assert stats.deflated_sharpe(sr, n, 50) < stats.deflated_sharpe(sr, n, 5) < expected


def test_moments_of_a_series():
    rng = np.random.default_rng(0)
    r = rng.standard_normal(200_000) * 0.01 + 0.001
    sr, skew, kurt = stats.moments(r)
    assert sr == pytest.approx(0.1, abs=0.005) and abs(skew) < 0.02 and kurt == pytest.approx(3.0, abs=0.05)
    assert stats.moments(np.zeros(10)) == (0.0, 0.0, 3.0)


def test_block_bootstrap_covers_the_true_sharpe_and_widens_for_dependent_returns():
    rng = np.random.default_rng(1)
    ppy, n = 252 * 96, 96 * 250  # a year of 15-minute bars
    sd = 1e-3
    mu = 2.0 * sd / math.sqrt(ppy)  # true annualised Sharpe 2.0
    r = mu + sd * rng.standard_normal(n)
    res = stats.block_bootstrap(r, ppy, n_resamples=1000, seed=0)
    assert res.block == 96  # a trading day of bars
    lo, hi = res.sharpe_ci
    assert lo < 2.0 < hi
    half_width = 1.96 * math.sqrt(ppy / n)  # iid: SE of the annualised Sharpe ~ sqrt(ppy / n)
    assert (hi - lo) / 2 == pytest.approx(half_width, rel=0.2)
    assert res.sharpe_ci == stats.block_bootstrap(r, ppy, n_resamples=1000, seed=0).sharpe_ci  # seeded
    # positively autocorrelated returns: the day-long blocks keep the dependence and the interval widens
    e = rng.standard_normal(n)
    ar = np.empty(n)
    ar[0] = e[0]
    for t in range(1, n):
        ar[t] = 0.6 * ar[t - 1] + e[t]
    ar = mu + sd * ar
    blocked = stats.block_bootstrap(ar, ppy, n_resamples=1000, seed=0).sharpe_ci
    iid = stats.block_bootstrap(ar, ppy, block=1, n_resamples=1000, seed=0).sharpe_ci
    assert blocked[1] - blocked[0] > 1.5 * (iid[1] - iid[0])
    assert res.max_drawdown_ci[0] >= 0 and res.total_return_ci[0] < res.total_return_ci[1]


def test_paired_difference_and_verdict():
    rng = np.random.default_rng(2)
    a = 1e-4 + 1e-3 * rng.standard_normal(20_000)
    lo, hi = stats.paired_sharpe_difference_ci(a, a, 252 * 96)
    assert lo == hi == 0.0
    lo, hi = stats.paired_sharpe_difference_ci(a, a - 2e-4, 252 * 96)
    assert lo > 0
    assert stats.verdict(0.99, 0.97)[0] == "edge" and "DSR 0.970" in stats.verdict(0.99, 0.97)[1]
    word, line = stats.verdict(0.9, 0.5)
    assert word == "no edge" and line.startswith("no evidence of an edge at 95%")


class PathEnv:
    """A 1-env stand-in with a price path: enough for the baselines (levels, no history before the path)."""

    position_levels = (-1.0, 0.0, 1.0)
    max_position = 1.0
    device = "cpu"
    ma_window = 20

    def __init__(self) -> None:
        import gymnasium as gym

        self.single_action_space = gym.spaces.Discrete(3)


def run_path(policy, closes) -> list[int]:
    return [int(policy(None, {"close": torch.tensor([c])}).item()) for c in closes]


def test_macd_follows_a_trend_once_its_windows_are_full():
    noise = 1e-3 * np.random.default_rng(7).standard_normal(1200)
    up = 1.10 * np.exp(np.cumsum(4e-4 + noise))
    acts = run_path(Macd(PathEnv()), up)
    assert set(acts[:313]) == {1}  # flat (level index 1) until 63 + 252 closes are known
    assert acts[600:].count(2) > 0.75 * len(acts[600:])  # mostly long in a rising market
    down = 1.10 * np.exp(np.cumsum(-4e-4 + noise))
    acts = run_path(Macd(PathEnv()), down)
    assert acts[600:].count(0) > 0.75 * len(acts[600:])  # mostly short in a falling one


def test_zscore_shorts_a_spike_longs_a_dip_and_exits_at_the_mean():
    base = list(1.10 + 1e-4 * np.sin(np.arange(40)))  # quiet: |z| stays below 1 ... mostly
    policy = ZScore(PathEnv(), window=20, entry=2.0)
    acts = run_path(policy, base)
    assert acts[:19] == [1] * 19  # flat until the window is full
    assert run_path(policy, [1.1050]) == [0]  # far above the mean: short
    assert run_path(policy, [1.1040, 1.1030]) == [0, 0]  # still above: holds the short
    assert run_path(policy, [1.0990]) == [1]  # crossed below the mean: flat
    assert run_path(policy, [1.0940]) == [2]  # far below: long


def test_cost_sensitivity_is_monotone_on_a_fixed_policy_and_finds_the_break_even():
    from envs.fx.research.backtest import run_backtest
    from envs.fx.synthetic import generate
    from envs.fx.vector import FxVectorEnv

    bars = generate("ou", 4000, seed=3, bar_seconds=900)
    cfg = FxEnvConfig(window_high=8, window_medium=2, window_low=2, agg_medium=4, agg_low=8, vol_window=4,
                      ma_window=8, ma_window_long=16, episode_bars=3000, position_levels=(-1.0, 0.0, 1.0))
    fixed = np.random.default_rng(5).integers(0, 3, size=5000)

    def run_at(m: float):
        env = FxVectorEnv(bars, dataclasses.replace(cfg, cost_scale=m), num_envs=1, start_mode="first",
                          episode_bars=3000)
        step = iter(range(5000))
        return run_backtest(lambda obs, info: torch.tensor([fixed[next(step)]]), env)

    res = report.cost_sensitivity(run_at, 252 * 96)
    sharpes = [res["cost_sensitivity"][k] for k in ("0.5", "1", "2", "3")]
    totals = [res["cost_sensitivity_table"][k]["total_return"] for k in ("0.5", "1", "2", "3")]
    assert sharpes == sorted(sharpes, reverse=True) and totals == sorted(totals, reverse=True)
    assert len(set(totals)) == 4
    costs = [res["cost_sensitivity_table"][k]["costs_paid"] for k in ("0.5", "1", "2", "3")]
    assert costs == sorted(costs)
    be = res["break_even_cost_multiple"]
    if be is not None:  # where the (interpolated) total return crosses zero
        assert 0.0 <= be
    else:
        assert res["break_even_note"]
    # the break-even by hand on a line: +2 % at no cost, -1 % at x1 -> 2/3
    assert report.break_even({0.0: 0.02, 0.5: 0.005, 1.0: -0.01, 2.0: -0.04})[0] == pytest.approx(2 / 3)
    assert report.break_even({0.0: 0.05, 1.0: 0.04, 2.0: 0.03}) == (pytest.approx(5.0), True)
    assert report.break_even({0.0: -0.01, 1.0: -0.02}) == (None, False)


def test_walk_forward_folds_never_let_a_test_bar_into_training_or_selection():
    for window in ("expanding", "rolling"):
        folds = fold_layout(20_000, 1_000, folds=4, embargo=128, test_frac=0.4, window=window, min_train=129)
        assert fold_bars_never_leak(folds, 128)
        tests = [f.test for f in folds]
        assert tests[0][0] == 1_000 + round(0.6 * 19_000) and tests[-1][1] == 20_000
        assert all(a[1] == b[0] for a, b in zip(tests[:-1], tests[1:]))  # the test periods tile the end
        for f in folds:
            assert f.train[1] + 128 <= f.val[0] and f.val[1] + 128 <= f.test[0]  # embargoed
            assert f.train[0] >= 1_000
            assert max(f.train[1], f.val[1]) <= f.test[0]  # nothing of the test period before it
        if window == "expanding":
            assert all(f.train[0] == 1_000 for f in folds)
        else:
            lengths = {f.train[1] - f.train[0] for f in folds}
            assert len(lengths) == 1
    with pytest.raises(ValueError, match="cannot make 12 folds.*--folds"):
        fold_layout(3_000, 1_000, folds=12, embargo=128, test_frac=0.9, min_train=129)


def test_metrics_are_defined_in_every_case():
    from envs.fx.research import metrics

    assert metrics.profit_factor([]) == 1.0 and metrics.profit_factor([0.0, 0.0]) == 1.0
    assert metrics.profit_factor([0.01, 0.02]) == metrics.RATIO_CAP
    assert metrics.profit_factor([-0.01]) == 0.0 and metrics.profit_factor([0.03, -0.01]) == pytest.approx(3.0)
    assert metrics.sortino([0.01, 0.02], 252) == metrics.RATIO_CAP

    class Traj:
        equity_curve = np.array([100.0, 101.0, 103.0])
        position = np.array([1.0, 1.0])
        costs = np.zeros(2)

    m = metrics.compute_metrics(Traj(), periods_per_year=252)
    assert m["annualised_return"] is None and m["calmar"] is None and "too short to annualise" in m["annualised_note"]
    assert all(v is not None and np.isfinite(v) for k, v in m.items() if k not in ("annualised_return", "calmar",
                                                                                 "annualised_note"))
    text = json.dumps(report.json_safe(m))
    assert "Infinity" not in text and "NaN" not in text


@pytest.mark.parametrize("sharpes", [np.full(500, 2.5), np.r_[np.full(499, 37.120911845199146), np.nextafter(37.12091184519915, 40)],
                                     np.array([]), np.array([np.nan, 1.0, np.inf])])
def test_bootstrap_plot_of_resamples_that_all_agree(tmp_path, sharpes: np.ndarray) -> None:
    """A short test window with one or two trades gives resamples a few ulps apart: numpy cannot make 60 bins of
    that (it raised at the end of a real run); the plot then draws one bar."""
    from envs.fx.research.plots import plot_bootstrap

    path = plot_bootstrap(sharpes, 37.12, (37.12, 37.12), tmp_path / "b.png")
    assert path.exists() and path.stat().st_size > 1000


def test_a_series_shorter_than_ten_days_gets_an_interval_and_no_verdict_of_edge() -> None:
    """955 one-minute bars with two winning trades (seen at the end of a real run): a day-long block would make
    every resample a rotation of the series (interval [37.1, 37.1]) and PSR ~0.97 said "edge"."""
    ppy = 252 * 1440.0  # one-minute bars
    r = np.zeros(955)
    r[100:160] = 2e-5 + 1e-5 * np.sin(np.arange(60))  # a winning trade
    r[700:760] = 3e-5 + 1e-5 * np.cos(np.arange(60))  # another
    assert stats.too_short(r.size, ppy) and stats.block_length(r.size, ppy) == 95
    out = report.statistics(r, ppy)
    lo, hi = out["sharpe_ci"]
    assert lo < out["sharpe"] < hi and hi - lo > 1.0  # a real interval, not a point
    assert out["verdict"] == "no edge" and "too short to judge" in out["verdict_line"], out["verdict_line"]
    assert out["bootstrap"]["block_bars"] == 95
    long_enough = np.tile(r, 20)  # 13 days
    assert not stats.too_short(long_enough.size, ppy) and stats.block_length(long_enough.size, ppy) == 1440
    assert "too short" not in report.statistics(long_enough, ppy)["verdict_line"]


def test_the_baseline_line_says_so_when_the_agent_trades_exactly_like_the_best_baseline() -> None:
    """A gated walk-forward that stayed flat everywhere had printed "the agent is higher" beside flat's 0.00."""
    from types import SimpleNamespace

    def traj(equity: np.ndarray) -> SimpleNamespace:
        return SimpleNamespace(equity_curve=equity, position=np.zeros(equity.size - 1), costs=np.zeros(equity.size - 1))

    ppy = 252 * 96.0
    flat = traj(np.full(3001, 1e4))
    rng = np.random.default_rng(0)
    loser = traj(1e4 * np.cumprod(np.r_[1.0, 1 - 1e-4 + 1e-3 * rng.standard_normal(3000)]))
    out = report.analyse(flat, {"flat": flat, "buy_and_hold": loser}, ppy)
    assert out["best_baseline"] == "flat" and "returns are flat's, bar for bar" in out["versus_best_baseline_line"]
    out = report.analyse(loser, {"flat": flat}, ppy)
    assert "flat is higher" in out["versus_best_baseline_line"]
