"""Hand-computed accounting cases for the FX execution simulator and reward components."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from envs.fx.config import FxEnvConfig, first_valid_index
from envs.fx.data import Bars
from envs.fx.vector import FxVectorEnv

E0 = 10_000.0
HALF_SPREAD = 0.5e-4  # 1 pip spread on a 1e-4 pip


def tiny_cfg(**kw) -> FxEnvConfig:
    """Windows small enough that the first valid bar is 5."""
    base = dict(window_high=2, window_medium=1, window_low=1, agg_medium=2, agg_low=3, vol_window=2, ma_window=2, ma_window_long=2,
                episode_bars=1000, initial_equity=E0, spread_pips=1.0, commission_per_million=20.0,
                slippage_bps_per_million=0.5, slippage_vol_mult=1.0, swap_long=0.0, swap_short=0.0,
                reward_scale=1.0)
    base.update(kw)
    return FxEnvConfig(**base)


def bars_from(opens, closes, start="2024-01-03T10:00", times=None) -> Bars:
    o, c = np.asarray(opens, float), np.asarray(closes, float)
    if times is None:
        times = np.datetime64(start, "ns") + np.arange(len(o)) * np.timedelta64(60, "s")
    return Bars(np.asarray(times, dtype="datetime64[ns]"), o, np.maximum(o, c) + 2e-5, np.minimum(o, c) - 2e-5,
                c, np.zeros(len(o)), "hand")


def vol_at(bars: Bars, t: int, window: int = 2) -> float:
    r = np.log(bars.close[1:] / bars.close[:-1])  # r[i-1] is bar i's return
    last = r[t - window:t]
    return math.sqrt(float(np.mean(last * last)))


def costs(q: float, mid: float, vol: float) -> tuple[float, float, float]:
    """(spread, commission, slippage) of trading |q| units at mid, by the documented formulas."""
    q = abs(q)
    return q * HALF_SPREAD, q * mid * 20.0 / 1e6, q * mid * q / 1e6 * (0.5e-4 + vol)


OPENS = [1.1000, 1.1002, 1.0999, 1.1001, 1.1003, 1.1004, 1.1050, 1.1010, 1.1011, 1.1012, 1.1013, 1.1014]
CLOSES = [1.1002, 1.0999, 1.1001, 1.1003, 1.1004, 1.1006, 1.1020, 1.1011, 1.1012, 1.1013, 1.1014, 1.1015]
BUY, FLAT, SELL = 4, 2, 0  # indices of +1, 0, -1 in the default position levels


def test_first_valid_index_of_tiny_config():
    assert first_valid_index(tiny_cfg()) == 5


def test_round_trip_pays_spread_commission_slippage_and_fills_at_next_open():
    bars = bars_from(OPENS, CLOSES)
    env = FxVectorEnv(bars, tiny_cfg(), num_envs=1)
    _, info = env.reset(options={"start": 5})
    assert info["close"].item() == CLOSES[5]
    _, r1, _, _, i1 = env.step(torch.tensor([BUY]))
    q = 100_000.0
    sp1, cm1, sl1 = costs(q, OPENS[6], vol_at(bars, 5))
    fill_price = OPENS[6] + HALF_SPREAD + OPENS[6] * q / 1e6 * (0.5e-4 + vol_at(bars, 5))
    # filled at the NEXT bar's open (a gap away from the close the agent saw), never at close[5]
    assert env.accounts.entry_price.item() == pytest.approx(fill_price, rel=1e-12)
    assert abs(env.accounts.entry_price.item() - CLOSES[5]) > 4e-3
    assert i1["time"].item() == bars.time[6].astype(np.int64)
    eq1 = E0 - q * OPENS[6] - (sp1 + cm1 + sl1) + q * CLOSES[6]
    assert i1["equity"].item() == pytest.approx(eq1, rel=1e-12)
    assert i1["reward_raw/transaction_cost"].item() == pytest.approx(-(sp1 + cm1 + sl1) / E0, rel=1e-10)
    assert i1["reward_raw/pnl"].item() == pytest.approx(q * (CLOSES[6] - OPENS[6]) / E0, rel=1e-10)

    _, r2, _, _, i2 = env.step(torch.tensor([FLAT]))
    sp2, cm2, sl2 = costs(q, OPENS[7], vol_at(bars, 6))
    total_cost = sp1 + cm1 + sl1 + sp2 + cm2 + sl2
    expected = E0 + q * (OPENS[7] - OPENS[6]) - total_cost
    assert i2["equity"].item() == pytest.approx(expected, rel=1e-12)
    assert env.accounts.position.item() == 0.0
    assert env.accounts.spread_paid.item() == pytest.approx(sp1 + sp2, rel=1e-12)
    assert env.accounts.commission_paid.item() == pytest.approx(cm1 + cm2, rel=1e-12)
    assert env.accounts.slippage_paid.item() == pytest.approx(sl1 + sl2, rel=1e-12)
    assert sp1 + sp2 == pytest.approx(10.0)  # a 1-pip spread on 100k units costs $10 round trip
    # rewards add up to the net equity change; components add up to each reward
    assert i1["reward64"].item() + i2["reward64"].item() == pytest.approx((expected - E0) / E0, rel=1e-10)
    for info, r in ((i1, r1), (i2, r2)):
        parts = sum(v.item() for k, v in info.items() if k.startswith("reward/"))
        assert parts == pytest.approx(info["reward64"].item(), abs=1e-15)
        assert r.item() == pytest.approx(info["reward64"].item(), rel=1e-6)


def test_slippage_grows_with_order_size_and_volatility():
    bars = bars_from(OPENS, CLOSES)
    cfg = tiny_cfg(position_levels=(0.0, 0.5, 1.0))
    slips = []
    for level in (1, 2):
        env = FxVectorEnv(bars, cfg, num_envs=1)
        env.reset(options={"start": 5})
        env.step(torch.tensor([level]))
        slips.append(env.accounts.slippage_paid.item() / env.accounts.position.item())
    assert slips[1] == pytest.approx(2 * slips[0], rel=1e-12)  # per unit, linear in size
    calm, wild = list(CLOSES), list(CLOSES)
    wild[4], wild[5] = 1.0900, 1.1100  # same fill bar, more volatile bars before the order
    per_unit = []
    for closes in (calm, wild):
        b = bars_from(OPENS, closes)
        env = FxVectorEnv(b, cfg, num_envs=1)
        env.reset(options={"start": 5})
        env.step(torch.tensor([2]))
        per_unit.append(env.accounts.slippage_paid.item())
    assert per_unit[1] > 5 * per_unit[0]


def test_latency_two_bars_fills_two_opens_later():
    bars = bars_from(OPENS, CLOSES)
    env = FxVectorEnv(bars, tiny_cfg(latency_bars=2), num_envs=1)
    env.reset(options={"start": 5})
    env.step(torch.tensor([BUY]))
    assert env.accounts.position.item() == 0.0
    env.step(torch.tensor([BUY]))
    assert env.accounts.position.item() == 100_000.0
    expected = OPENS[7] + HALF_SPREAD + OPENS[7] * 0.1 * (0.5e-4 + vol_at(bars, 6))
    assert env.accounts.entry_price.item() == pytest.approx(expected, rel=1e-12)


def test_leverage_cap_cuts_the_order():
    bars = bars_from(OPENS, CLOSES)
    env = FxVectorEnv(bars, tiny_cfg(max_leverage=5.0), num_envs=1)
    env.reset(options={"start": 5})
    env.step(torch.tensor([SELL]))
    assert env.accounts.position.item() == pytest.approx(-E0 * 5.0 / OPENS[6], rel=1e-12)


def test_continuous_actions_are_clipped_targets():
    bars = bars_from(OPENS, CLOSES)
    env = FxVectorEnv(bars, tiny_cfg(action_mode="continuous"), num_envs=2)
    env.reset(options={"start": 5})
    env.step(torch.tensor([[0.25], [-3.0]]))
    assert env.accounts.position.tolist() == [25_000.0, -100_000.0]


def test_swap_accrues_once_per_rollover_crossed_including_weekend_gap():
    n = 14
    times = np.datetime64("2024-01-05T21:50", "ns") + np.arange(n) * np.timedelta64(60, "s")  # a Friday
    times[10:] += np.timedelta64(2 * 86_400, "s")  # bars 10.. on Sunday: Fri, Sat and Sun 22:00 all crossed
    opens = [1.1000 + 1e-5 * i for i in range(n)]
    bars = bars_from(opens, [o + 5e-6 for o in opens], times=times)
    env = FxVectorEnv(bars, tiny_cfg(swap_long=-0.00004, swap_short=0.00001), num_envs=2)
    env.reset(options={"start": 5})  # bar 5 opens 21:55
    swaps = []
    for _ in range(7):  # the 8th step would end the data and autoreset the accounts
        _, _, _, _, info = env.step(torch.tensor([BUY, SELL]))
        swaps.append(info["reward_raw/swap"] * E0)
    swaps = torch.stack(swaps)
    # bar 9 (21:59) closes at 22:00 -> one rollover; bar 10 (Sun 22:00) closes 22:01 Sunday -> Fri..Sun gap:
    # Sat 22:00 and Sun 22:00 crossed -> two more
    assert swaps[:, 0].tolist() == pytest.approx([0, 0, 0, -4.0, -8.0, 0, 0], abs=1e-12)
    assert swaps[:, 1].tolist() == pytest.approx([0, 0, 0, 1.0, 2.0, 0, 0], abs=1e-12)
    assert env.accounts.swap_total.tolist() == pytest.approx([-12.0, 3.0], abs=1e-12)
    # equity = cash + position x close (mid) after swap
    acc = env.accounts
    close = torch.tensor(bars.close[env.t.numpy()], dtype=torch.float64)
    assert torch.allclose(acc.equity, acc.cash + acc.position * close, rtol=0, atol=1e-9)


def test_margin_breach_liquidates_at_the_close_and_terminates():
    opens = list(OPENS)
    closes = list(CLOSES)
    opens[8], closes[8] = 1.1011, 1.0200  # crash: 100k long loses ~$8.1k of $10k
    bars = bars_from(opens, closes)
    env = FxVectorEnv(bars, tiny_cfg(), num_envs=1)
    env.reset(options={"start": 5})
    _, _, te, _, _ = env.step(torch.tensor([BUY]))
    assert not te.item()
    _, _, te, _, _ = env.step(torch.tensor([BUY]))
    assert not te.item()
    _, r, te, tr, info = env.step(torch.tensor([BUY]))
    assert te.item() and not tr.item() and info["liquidated"].item()
    q = 100_000.0
    sp1, cm1, sl1 = costs(q, opens[6], vol_at(bars, 5))
    sp2, cm2, sl2 = costs(q, closes[8], vol_at(bars, 8))
    expected = E0 + q * (closes[8] - opens[6]) - (sp1 + cm1 + sl1 + sp2 + cm2 + sl2)
    # the breach: equity before liquidation was below 2.5% of the marked notional
    assert E0 + q * (closes[8] - opens[6]) - (sp1 + cm1 + sl1) < 0.025 * q * closes[8]
    fi = info["final_info"]
    assert fi["equity"].item() == pytest.approx(expected, rel=1e-12)
    assert fi["liquidated"].item() and fi["n_trades"].item() == 2
    assert fi["net_return"].item() == pytest.approx(expected / E0 - 1, rel=1e-12)
    assert info["_final_obs"].item() and info["_final_info"].item()
    # autoreset: the new episode's account is fresh
    assert env.accounts.equity.item() == E0 and env.accounts.position.item() == 0.0
    assert fi["episode_return"].item() == pytest.approx((expected - E0) / E0, rel=1e-10)


def test_penalty_components_follow_their_definitions():
    bars = bars_from(OPENS, CLOSES)
    cfg = tiny_cfg(w_drawdown_penalty=2.0, w_holding_penalty=0.5, w_differential_sharpe=0.1, reward_scale=3.0)
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
        total = sum(info[f"reward/{k}"].item() for k in
                    ("pnl", "transaction_cost", "swap", "drawdown_penalty", "holding_penalty", "differential_sharpe"))
        assert total == pytest.approx(info["reward64"].item(), abs=1e-14)
        assert info["reward/holding_penalty"].item() == pytest.approx(
            3.0 * 0.5 * info["reward_raw/holding_penalty"].item())
        assert (info["reward_raw/pnl"] + info["reward_raw/transaction_cost"] + info["reward_raw/swap"]).item() \
            == pytest.approx((eq - prev_eq) / E0, abs=1e-15)
        prev_eq = eq
