"""Hand-computed accounting cases for the FX execution simulator, the rollover calendar and the reward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from envs.fx.arrays import trading_context
from envs.fx.calendar import rollover_nights, rollover_times
from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars
from envs.fx.vector import FxVectorEnv

E0 = 10_000.0
PIP = 1e-4
HS = 0.5 * 0.8 * PIP  # half of the default 0.8 pip spread
SLIP = 0.05 * PIP  # default slippage per unit per side
COMM = 20.0 / 1e6


def tiny_cfg(**kw) -> FxEnvConfig:
    """Windows small enough that the observation windows are full by bar 5 (no swap unless asked)."""
    base = dict(window_high=2, window_medium=1, window_low=1, agg_medium=2, agg_low=3, vol_window=2, ma_window=2,
                ma_window_long=2, episode_bars=1000, initial_equity=E0, swap_long=0.0, swap_short=0.0,
                reward_scale=1.0)
    base.update(kw)
    return FxEnvConfig(**base)


def bars_from(opens, closes, start="2024-01-03T10:00", times=None, highs=None, lows=None, step_s=60,
              spread=None) -> Bars:
    o, c = np.asarray(opens, float), np.asarray(closes, float)
    if times is None:
        times = np.datetime64(start, "ns") + np.arange(len(o)) * np.timedelta64(step_s, "s")
    h = np.maximum(o, c) + 2e-5 if highs is None else np.asarray(highs, float)
    lo = np.minimum(o, c) - 2e-5 if lows is None else np.asarray(lows, float)
    side = "mid" if spread is None else "bidask"
    return Bars(np.asarray(times, dtype="datetime64[ns]"), o, h, lo, c, np.zeros(len(o)), "hand", side, spread)


def costs(q: float, mid: float, rate: float = 1.0, hs: float = HS, slip: float = SLIP) -> tuple[float, float, float]:
    """(spread, commission, slippage) of trading |q| units at mid, by the documented formulas, in account money."""
    q = abs(q)
    return q * hs * rate, q * mid * rate * COMM, q * slip * rate


OPENS = [1.1000, 1.1002, 1.0999, 1.1001, 1.1003, 1.1004, 1.1050, 1.1010, 1.1011, 1.1012, 1.1013, 1.1014]
CLOSES = [1.1002, 1.0999, 1.1001, 1.1003, 1.1004, 1.1006, 1.1020, 1.1011, 1.1012, 1.1013, 1.1014, 1.1015]
BUY, FLAT, SELL = 4, 2, 0  # indices of +1, 0, -1 in the default position levels


def test_windows_are_full_from_a_data_driven_first_bar():
    env = FxVectorEnv(bars_from(OPENS, CLOSES), tiny_cfg(), num_envs=1)
    assert env.t_min <= 5 and env.features.valid_from == env.t_min


def test_round_trip_pays_spread_commission_slippage_and_fills_at_next_open():
    bars = bars_from(OPENS, CLOSES)
    env = FxVectorEnv(bars, tiny_cfg(), num_envs=1)
    _, info = env.reset(options={"start": 5})
    assert info["close"].item() == CLOSES[5]
    _, r1, _, _, i1 = env.step(torch.tensor([BUY]))
    q = 100_000.0
    sp1, cm1, sl1 = costs(q, OPENS[6])
    # filled at the NEXT bar's open (a gap away from the close the agent saw), never at close[5]
    assert env.accounts.entry_price.item() == pytest.approx(OPENS[6] + HS + SLIP, rel=1e-12)
    assert abs(env.accounts.entry_price.item() - CLOSES[5]) > 4e-3
    assert i1["time"].item() == bars.time[6].astype(np.int64)
    eq1 = E0 - (sp1 + cm1 + sl1) + q * (CLOSES[6] - OPENS[6])
    assert i1["equity"].item() == pytest.approx(eq1, rel=1e-12)
    assert i1["reward_raw/transaction_cost"].item() == pytest.approx(-(sp1 + cm1 + sl1) / E0, rel=1e-10)
    assert i1["reward_raw/pnl"].item() == pytest.approx(q * (CLOSES[6] - OPENS[6]) / E0, rel=1e-10)

    _, r2, _, _, i2 = env.step(torch.tensor([FLAT]))
    sp2, cm2, sl2 = costs(q, OPENS[7])
    total_cost = sp1 + cm1 + sl1 + sp2 + cm2 + sl2
    expected = E0 + q * (OPENS[7] - OPENS[6]) - total_cost
    assert i2["equity"].item() == pytest.approx(expected, rel=1e-12)
    assert env.accounts.position.item() == 0.0
    assert env.accounts.spread_paid.item() == pytest.approx(sp1 + sp2, rel=1e-12)
    assert env.accounts.commission_paid.item() == pytest.approx(cm1 + cm2, rel=1e-12)
    assert env.accounts.slippage_paid.item() == pytest.approx(sl1 + sl2, rel=1e-12)
    assert sp1 + sp2 == pytest.approx(8.0)  # a 0.8-pip spread on 100k units costs $8 round trip
    # rewards add up to the net equity change; components add up to each reward
    assert i1["reward64"].item() + i2["reward64"].item() == pytest.approx((expected - E0) / E0, rel=1e-10)
    for info, r in ((i1, r1), (i2, r2)):
        parts = sum(v.item() for k, v in info.items() if k.startswith("reward/"))
        assert parts == pytest.approx(info["reward64"].item(), abs=1e-15)
        assert r.item() == pytest.approx(info["reward64"].item(), rel=1e-6)


def test_default_costs_of_a_one_lot_eurusd_round_trip_are_one_to_one_and_a_half_pips():
    flat_prices = [1.10] * 12
    env = FxVectorEnv(bars_from(flat_prices, flat_prices), tiny_cfg(), num_envs=1)
    env.reset(options={"start": 5})
    env.step(torch.tensor([BUY]))
    env.step(torch.tensor([FLAT]))
    pips = (E0 - env.accounts.equity.item()) / (100_000 * PIP)  # $10 a pip on one lot
    assert 1.0 <= pips <= 1.5 and pips == pytest.approx(0.8 + 0.1 + 2 * 1.10 * COMM * 1e4, rel=1e-9)


def test_slippage_is_linear_in_size_and_does_not_depend_on_the_bar_length():
    per_unit = {}
    for step_s in (60, 3600):  # the same orders on 1-minute and hourly bars
        for level in (1, 2):
            bars = bars_from(OPENS, CLOSES, step_s=step_s)
            env = FxVectorEnv(bars, tiny_cfg(position_levels=(0.0, 0.5, 1.0)), num_envs=1)
            env.reset(options={"start": 5})
            env.step(torch.tensor([level]))
            per_unit[step_s, level] = env.accounts.slippage_paid.item() / env.accounts.position.item()
    assert set(np.round(list(per_unit.values()), 15)) == {round(SLIP, 15)}  # per unit: the same everywhere
    impact = {}
    for level in (1, 2):  # the optional impact term: per-unit cost grows with the order
        env = FxVectorEnv(bars_from(OPENS, CLOSES), tiny_cfg(position_levels=(0.0, 0.5, 1.0),
                                                             impact_pips_per_million=2.0), num_envs=1)
        env.reset(options={"start": 5})
        env.step(torch.tensor([level]))
        q = env.accounts.position.item()
        impact[level] = env.accounts.slippage_paid.item() / q
        assert impact[level] == pytest.approx(SLIP + 2.0 * PIP * q / 1e6, rel=1e-12)
    assert impact[2] > impact[1]


def test_latency_two_bars_fills_two_opens_later():
    bars = bars_from(OPENS, CLOSES)
    env = FxVectorEnv(bars, tiny_cfg(latency_bars=2), num_envs=1)
    env.reset(options={"start": 5})
    env.step(torch.tensor([BUY]))
    assert env.accounts.position.item() == 0.0
    env.step(torch.tensor([BUY]))
    assert env.accounts.position.item() == 100_000.0
    assert env.accounts.entry_price.item() == pytest.approx(OPENS[7] + HS + SLIP, rel=1e-12)


def test_leverage_cap_cuts_the_order_to_whole_lots():
    bars = bars_from(OPENS, CLOSES)
    env = FxVectorEnv(bars, tiny_cfg(max_leverage=5.0), num_envs=1)
    env.reset(options={"start": 5})
    env.step(torch.tensor([SELL]))
    cap = E0 * 5.0 / OPENS[6]  # 45,248.8 units
    assert env.accounts.position.item() == -(cap // 1000) * 1000 == -45_000.0


def test_continuous_actions_are_clipped_targets_in_whole_lots():
    bars = bars_from(OPENS, CLOSES)
    env = FxVectorEnv(bars, tiny_cfg(action_mode="continuous"), num_envs=3)
    env.reset(options={"start": 5})
    env.step(torch.tensor([[0.25], [-3.0], [0.123456]]))
    assert env.accounts.position.tolist() == [25_000.0, -100_000.0, 12_000.0]


def test_usd_account_trading_usdjpy_converts_pnl_costs_and_margin():
    opens = [150.00, 150.10, 150.20, 150.15, 150.05, 150.00, 150.00, 151.00, 151.50, 151.50, 151.50, 151.50]
    closes = [150.10, 150.20, 150.15, 150.05, 150.00, 150.00, 150.50, 151.50, 151.50, 151.50, 151.50, 151.50]
    bars = bars_from(opens, closes)
    cfg = tiny_cfg(pair="USDJPY", max_leverage=5.0)
    env = FxVectorEnv(bars, cfg, num_envs=1)
    assert env.context.conversion == "base" and env.context.pip == 0.01
    env.reset(options={"start": 5})
    _, _, _, _, info = env.step(torch.tensor([BUY]))
    # margin in USD: 5x leverage on $10,000 caps a USDJPY position at $50,000 = 50,000 units
    q = 50_000.0
    assert env.accounts.position.item() == q
    hs, slip = 0.5 * 0.8 * 0.01, 0.05 * 0.01  # yen
    cost1 = q * hs / 150.00 + q * 150.00 / 150.00 * COMM + q * slip / 150.00  # each yen amount at 1/price
    pnl1 = q * (150.50 - 150.00) / 150.50  # marked at the close: yen P&L at 1/close
    assert info["costs"].item() == pytest.approx(cost1, rel=1e-12)
    assert info["equity"].item() == pytest.approx(E0 - cost1 + pnl1, rel=1e-12)
    _, _, _, _, info = env.step(torch.tensor([FLAT]))
    gap = q * (151.00 - 150.50) / 151.00  # the next open, converted there
    cost2 = q * hs / 151.00 + q * COMM + q * slip / 151.00
    assert info["equity"].item() == pytest.approx(E0 - cost1 + pnl1 + gap - cost2, rel=1e-12)
    # a yen account would have been ~150x larger; this one stays in dollars
    assert 9_000 < info["equity"].item() < 11_000


def test_third_currency_account_with_a_fixed_rate_and_a_conversion_series(tmp_path):
    from envs.fx.data import save_bars

    bars = bars_from(OPENS, CLOSES)
    fixed = FxVectorEnv(bars, tiny_cfg(pair="EURGBP", account_currency="USD", conversion_rate=1.25), num_envs=1)
    fixed.reset(options={"start": 5})
    _, _, _, _, info = fixed.step(torch.tensor([BUY]))
    q = 100_000.0
    cost = sum(costs(q, OPENS[6], rate=1.25))
    assert info["equity"].item() == pytest.approx(E0 - cost + q * (CLOSES[6] - OPENS[6]) * 1.25, rel=1e-12)
    # a GBPUSD series: the rate is the close of the last GBPUSD bar closed by the moment (never a later one)
    conv = bars_from([1.20 + 0.01 * i for i in range(12)], [1.205 + 0.01 * i for i in range(12)])
    path = tmp_path / "GBPUSD.csv"
    save_bars(conv, path)
    cfg = tiny_cfg(pair="EURGBP", account_currency="USD", conversion_data=str(path), conversion_pair="GBPUSD")
    from envs.fx.market import build_market

    market = build_market(bars, cfg, ranges={"train": (0, len(bars))})
    env = FxVectorEnv(market.bars, cfg, num_envs=1, context=market.context)
    env.reset(options={"start": 5})
    _, _, _, _, info = env.step(torch.tensor([BUY]))
    r_open, r_close = 1.205 + 0.01 * 5, 1.205 + 0.01 * 6  # bar 6 opens when GBPUSD bar 5 has closed
    cost = sum(costs(q, OPENS[6], rate=r_open))
    assert info["equity"].item() == pytest.approx(E0 - cost + q * (CLOSES[6] - OPENS[6]) * r_close, rel=1e-12)


def test_rollover_is_17_new_york_with_daylight_saving_and_a_wednesday_triple():
    # 2024: daylight saving in New York from 10 March to 3 November
    t, nights = rollover_times(np.datetime64("2024-03-04T00:00", "ns").astype(np.int64),  # Monday, winter
                               np.datetime64("2024-03-17T23:59", "ns").astype(np.int64))  # two weeks, DST from 10th
    stamps = [str(np.datetime64(int(x), "ns").astype("datetime64[m]")) for x in t]
    assert stamps[:5] == ["2024-03-04T22:00", "2024-03-05T22:00", "2024-03-06T22:00", "2024-03-07T22:00",
                          "2024-03-08T22:00"]  # winter: 17:00 EST = 22:00 UTC, Monday to Friday
    assert stamps[5:] == ["2024-03-11T21:00", "2024-03-12T21:00", "2024-03-13T21:00", "2024-03-14T21:00",
                          "2024-03-15T21:00"]  # summer: 17:00 EDT = 21:00 UTC; no Saturday or Sunday
    assert nights.tolist() == [1, 1, 3, 1, 1] * 2  # Wednesday books three nights: 7 a week


def _hold_through(times: np.ndarray, swap_long: float = -0.0001) -> list[float]:
    """Swap booked per step holding 100k long over bars at ``times`` (prices flat)."""
    n = len(times)
    bars = bars_from([1.1] * n, [1.1] * n, times=times)
    env = FxVectorEnv(bars, tiny_cfg(swap_long=swap_long, swap_short=0.0), num_envs=1)
    env.reset(options={"start": 5})
    out = []
    for _ in range(n - 6):
        _, _, _, _, info = env.step(torch.tensor([BUY]))
        out.append(info["reward_raw/swap"].item() * E0)
    return out


def test_swap_wednesday_triple_friday_single_and_nothing_over_a_weekend_gap():
    lot = 100_000 * -0.0001  # $-10 a night on one lot
    # hourly bars from Wednesday 18:00 UTC: the rollover at 22:00 UTC (winter) is booked on the bar that holds it
    wed = np.datetime64("2024-01-03T15:00", "ns") + np.arange(14) * np.timedelta64(3600, "s")
    swaps = _hold_through(wed)
    assert sum(x != 0 for x in swaps) == 1 and sum(swaps) == pytest.approx(3 * lot)  # Wednesday: three nights
    # Friday 15:00 .. 21:00 UTC, then Sunday 22:00 onwards: Friday's rollover once, none for Sat/Sun
    hours = np.arange(7) * np.timedelta64(3600, "s")
    fri = np.concatenate([np.datetime64("2024-01-05T15:00", "ns") + hours, np.datetime64("2024-01-07T22:00", "ns") + hours])
    swaps = _hold_through(fri)
    assert sum(swaps) == pytest.approx(lot)  # Friday 22:00 only (not x3 at the Sunday open)
    # bars on a Saturday (some feeds have them): no rollover is booked on a Saturday
    sat = np.datetime64("2024-01-06T12:00", "ns") + np.arange(14) * np.timedelta64(3600, "s")
    assert sum(_hold_through(sat)) == 0.0


def test_rollover_nights_split_between_the_gap_and_the_bar():
    opens = np.array(["2024-01-05T21:00", "2024-01-07T22:00"], dtype="datetime64[ns]").astype(np.int64)
    before, inside = rollover_nights(opens, opens + 3600 * 10**9)
    assert inside.tolist() == [1.0, 0.0] and before.tolist() == [0.0, 0.0]  # Friday 22:00 is inside bar 0
    opens = np.array(["2024-01-03T20:00", "2024-01-04T08:00"], dtype="datetime64[ns]").astype(np.int64)
    before, inside = rollover_nights(opens, opens + 3600 * 10**9)  # Wednesday's rollover falls in a data gap
    assert before.tolist() == [0.0, 3.0] and inside.tolist() == [0.0, 0.0]


def test_stop_out_on_an_adverse_wick_that_closes_unchanged():
    opens, closes = list(OPENS), list(CLOSES)
    lows = [min(o, c) - 2e-5 for o, c in zip(opens, closes)]
    opens[7], closes[7], lows[7] = 1.1020, 1.1020, 1.0200  # an 820-pip wick that closes where it opened
    bars = bars_from(opens, closes, lows=lows)
    env = FxVectorEnv(bars, tiny_cfg(max_leverage=30.0), num_envs=1)
    env.reset(options={"start": 5})
    _, _, te, _, _ = env.step(torch.tensor([BUY]))
    assert not te.item()
    _, _, te, tr, info = env.step(torch.tensor([BUY]))
    assert te.item() and not tr.item() and info["liquidated"].item()
    q = 100_000.0
    entry_cost = sum(costs(q, OPENS[6]))
    exit_cost = sum(costs(q, 1.0200))  # sold at the low's bid, with slippage
    expected = E0 - entry_cost + q * (CLOSES[6] - OPENS[6]) + q * (1.0200 - CLOSES[6]) - exit_cost
    assert info["final_info"]["equity"].item() == pytest.approx(expected, rel=1e-12)
    assert info["final_info"]["liquidated"].item()
    # the same bar without the wick: no stop-out (checked at the close only, it would never have fired)
    lows[7] = 1.1020 - 2e-5
    env = FxVectorEnv(bars_from(opens, closes, lows=lows), tiny_cfg(), num_envs=1)
    env.reset(options={"start": 5})
    env.step(torch.tensor([BUY]))
    _, _, te, _, _ = env.step(torch.tensor([BUY]))
    assert not te.item()


def test_a_weekend_gap_moves_an_open_position_and_can_stop_it_out_at_the_open():
    n = 12
    times = np.datetime64("2024-01-05T21:40", "ns") + np.arange(n) * np.timedelta64(60, "s")  # a Friday
    times[7:] += np.timedelta64(2 * 86_400, "s")  # bar 7 opens on Sunday evening
    opens, closes = [1.1000] * n, [1.1000] * n
    opens[7], closes[7] = 1.0950, 1.0950  # a 50-pip weekend gap down
    q = 100_000.0
    env = FxVectorEnv(bars_from(opens, closes, times=times), tiny_cfg(), num_envs=1)
    env.reset(options={"start": 5})
    env.step(torch.tensor([BUY]))  # filled at bar 6 (Friday)
    before = env.accounts.equity.item()
    _, _, te, _, info = env.step(torch.tensor([BUY]))  # held over the weekend into bar 7
    assert not te.item()
    assert info["reward_raw/pnl"].item() * E0 == pytest.approx(q * (1.0950 - 1.1000), rel=1e-9)
    assert info["equity"].item() == pytest.approx(before + q * (1.0950 - 1.1000), rel=1e-12)
    # a gap through the margin level: stopped out at the gapped open, not at the close
    opens[7], closes[7] = 1.0100, 1.0300
    env = FxVectorEnv(bars_from(opens, closes, times=times), tiny_cfg(), num_envs=1)
    env.reset(options={"start": 5})
    env.step(torch.tensor([BUY]))
    eq6 = env.accounts.equity.item()
    _, _, te, _, info = env.step(torch.tensor([BUY]))
    assert te.item() and info["liquidated"].item()
    expected = eq6 + q * (1.0100 - 1.1000) - sum(costs(q, 1.0100))
    assert info["final_info"]["equity"].item() == pytest.approx(expected, rel=1e-12)


def test_spread_comes_from_bid_and_ask_columns():
    n = len(OPENS)
    spread = np.full((n, 4), 0.5 * PIP)
    spread[6] = [3.0 * PIP, 3.5 * PIP, 4.0 * PIP, 2.5 * PIP]  # a wide bar: 3 pips at its open
    bars = bars_from(OPENS, CLOSES, spread=spread)
    env = FxVectorEnv(bars, tiny_cfg(spread_pips=0.8), num_envs=1)  # the configured spread is not used
    env.reset(options={"start": 5})
    env.step(torch.tensor([BUY]))
    assert env.accounts.spread_paid.item() == pytest.approx(100_000 * 1.5 * PIP, rel=1e-12)
    assert env.accounts.entry_price.item() == pytest.approx(OPENS[6] + 1.5 * PIP + SLIP, rel=1e-12)


def test_penalty_components_follow_their_definitions():
    bars = bars_from(OPENS, CLOSES)
    cfg = tiny_cfg(w_drawdown_penalty=2.0, w_holding_penalty=0.5, w_variance_penalty=4.0, w_differential_sharpe=0.1,
                   reward_scale=3.0)
    env = FxVectorEnv(bars, cfg, num_envs=1)
    env.reset(options={"start": 5})
    peak, last_dd = E0, 0.0
    prev_eq = E0
    for a in (BUY, BUY, FLAT, SELL):
        _, r, _, _, info = env.step(torch.tensor([a]))
        eq = info["equity"].item()
        peak = max(peak, eq)
        dd = (peak - eq) / E0
        assert info["reward_raw/drawdown_penalty"].item() == pytest.approx(-max(0.0, dd - last_dd), abs=1e-15)
        last_dd = dd
        assert info["reward_raw/holding_penalty"].item() == -abs(info["position"].item()) / 100_000.0
        assert info["reward_raw/variance_penalty"].item() == pytest.approx(-((eq - prev_eq) / E0) ** 2, rel=1e-9)
        assert info["reward/variance_penalty"].item() == pytest.approx(3.0 * 4.0 * info["reward_raw/variance_penalty"].item())
        total = sum(info[f"reward/{k}"].item() for k in
                    ("pnl", "transaction_cost", "swap", "drawdown_penalty", "holding_penalty", "variance_penalty",
                     "differential_sharpe"))
        assert total == pytest.approx(info["reward64"].item(), abs=1e-14)
        assert info["reward/holding_penalty"].item() == pytest.approx(
            3.0 * 0.5 * info["reward_raw/holding_penalty"].item())
        assert (info["reward_raw/pnl"] + info["reward_raw/transaction_cost"] + info["reward_raw/swap"]).item() \
            == pytest.approx((eq - prev_eq) / E0, abs=1e-15)
        prev_eq = eq


def test_trading_context_names_the_missing_conversion():
    with pytest.raises(ValueError, match="--fx.account-currency USD: neither leg of EURGBP"):
        trading_context(tiny_cfg(pair="EURGBP"))
    assert trading_context(tiny_cfg(pair="EURUSD", account_currency="EUR")).conversion == "base"
    assert trading_context(tiny_cfg(data="x/FOREX_USDJPY_1H.csv")).pair.name == "USDJPY"


def test_swap_rates_follow_a_dated_schedule(tmp_path):
    sched = tmp_path / "swaps.csv"
    sched.write_text("date,swap_long,swap_short\n2024-01-01,-0.0001,0.00002\n2024-01-04,0.00005,-0.0003\n")
    # hourly bars from Wednesday 15:00 UTC to Thursday 23:00: Wednesday's rollover at the old rate (x3),
    # Thursday's at the new one
    times = np.datetime64("2024-01-03T15:00", "ns") + np.arange(33) * np.timedelta64(3600, "s")
    bars = bars_from([1.1] * 33, [1.1] * 33, times=times)
    env = FxVectorEnv(bars, tiny_cfg(swap_long=None, swap_short=None, swap_data=str(sched)), num_envs=2)
    env.reset(options={"start": 5})
    for _ in range(26):  # the 27th step would end the data and autoreset the accounts
        env.step(torch.tensor([BUY, SELL]))
    assert env.accounts.swap_total.tolist() == pytest.approx([100_000 * (-0.0001 * 3 + 0.00005),
                                                              100_000 * (0.00002 * 3 - 0.0003)])
    with pytest.raises(ValueError, match="swap-data.*first date"):
        late = tmp_path / "late.csv"
        late.write_text("date,swap_long,swap_short\n2024-02-01,0,0\n")
        FxVectorEnv(bars, tiny_cfg(swap_data=str(late)), num_envs=1)
