"""The fast single env's scalar accounting and reward equal the torch env's to the last bit, on every path:
fills, the leverage cap, stop-outs at the open, the extreme and the close, swaps, every currency conversion,
latency, continuous actions, mirrored episodes and every reward component."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from envs.fx.config import FxEnvConfig
from envs.fx.execution import STATE_FIELDS, Accounts, execute_bar
from envs.fx.execution_scalar import ROW_FIELDS, ScalarAccount
from envs.fx.reward import RewardSystem, ScalarReward
from envs.fx.single import FxTradingEnv
from envs.fx.synthetic import generate
from envs.fx.vector import FxVectorEnv

CFG = FxEnvConfig(episode_bars=60, window_high=16, window_medium=4, window_low=4, agg_medium=5, agg_low=20,
                  ma_window=20, ma_window_long=60, swap_long=-0.0004, swap_short=-0.0002)


def _bar(rng: np.random.Generator, price: float) -> dict[str, float]:
    jump = rng.choice([0.0, 0.0, 0.0, 0.08, -0.08])  # now and then a gap through the margin level
    o = price * (1 + jump + rng.normal(0, 0.002))
    c = o * (1 + rng.normal(0, 0.01))
    h, lo = max(o, c) * (1 + abs(rng.normal(0, 0.02))), min(o, c) * (1 - abs(rng.normal(0, 0.02)))
    hs = rng.uniform(0.5e-4, 3e-4, 4)
    return {"open": o, "high": h, "low": lo, "close": c, "hs_open": hs[0], "hs_high": hs[1], "hs_low": hs[2],
            "hs_close": hs[3], "roll_before": float(rng.choice([0, 0, 1, 3])), "roll_inside": float(rng.choice([0, 0, 1])),
            "swap_long": -4e-4, "swap_short": 1e-4, "rate_open": rng.uniform(1.2, 1.3), "rate_close": rng.uniform(1.2, 1.3)}


@pytest.mark.parametrize("base", [False, True])
def test_scalar_account_equals_the_tensor_accounts_bar_by_bar(base: bool) -> None:
    cfg = dataclasses.replace(CFG, impact_pips_per_million=2.0, max_leverage=50.0, initial_margin=0.02)
    rng = np.random.default_rng(1 + base)
    acc, scalar = Accounts(cfg, 1, torch.device("cpu"), 1e-4), ScalarAccount(cfg, 1e-4)
    price, stops = 1.1, 0
    for i in range(3000):
        bar = _bar(rng, price)
        price = bar["close"]
        target = float(rng.choice([-3e6, -1e5, -4e4, 0.0, 5e4, 1e5, 3e6]))  # beyond the cap too
        valid = bool(rng.random() > 0.1)
        res = execute_bar(acc, {k: torch.tensor([v], dtype=torch.float64) for k, v in bar.items()},
                          torch.tensor([target], dtype=torch.float64), torch.tensor([valid]), base)
        pnl, cost, swap, breach = scalar.execute_bar(tuple(bar[k] for k in ROW_FIELDS), target, valid, base)
        assert (pnl, cost, swap, breach) == (res.pnl.item(), res.cost.item(), res.swap.item(), res.breach.item()), i
        assert scalar.state() == {k: getattr(acc, k).item() for k in STATE_FIELDS}, i
        stops += breach
        if breach or i % 500 == 0:
            acc.reset(torch.ones(1, dtype=torch.bool))
            scalar.reset()
    assert stops >= 20  # the stop-out paths ran


def test_scalar_reward_equals_the_tensor_reward_with_every_component_weighted() -> None:
    cfg = dataclasses.replace(CFG, w_drawdown_penalty=0.5, w_holding_penalty=1e-3, w_variance_penalty=2.0,
                              w_differential_sharpe=0.3, dsr_eta=0.05)
    rng = np.random.default_rng(3)
    rs, scalar = RewardSystem(cfg, 1, torch.device("cpu")), ScalarReward(cfg)
    equity, peak = 10_000.0, 10_000.0
    for i in range(2000):
        prev, equity = equity, equity * (1 + rng.normal(0, 0.003))
        peak = max(peak, equity)
        args = (rng.normal(0, 20), abs(rng.normal(0, 2)), rng.normal(0, 1), prev, equity, peak,
                float(rng.choice([-1e5, 0.0, 5e4])))
        r, w, raw = rs.compute(*(torch.tensor([a], dtype=torch.float64) for a in args))
        sr, sw, sraw = scalar.compute(*args)
        assert sr == r.item() and sw == {k: v.item() for k, v in w.items()}, i
        assert sraw == {k: v.item() for k, v in raw.items()}, i


VARIANTS = {
    "latency 2, continuous": {"latency_bars": 2, "action_mode": "continuous"},
    "mirrored episodes, every reward weight": {"mirror_augment": True, "w_drawdown_penalty": 0.5,
                                               "w_holding_penalty": 1e-3, "w_variance_penalty": 2.0,
                                               "w_differential_sharpe": 0.3},
    "stop-outs (leverage 200, base-currency account)": {"max_leverage": 200.0, "initial_margin": 0.005,
                                                        "maintenance_margin": 0.004, "account_currency": "EUR",
                                                        "max_position": 2_000_000.0},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_single_env_equals_env_0_of_the_vector_env_on_every_step(variant: str) -> None:
    cfg = dataclasses.replace(CFG, **VARIANTS[variant])
    bars = generate("gbm" if "stop" in variant else "ou", 2500, seed=4, annual_vol=3.0 if "stop" in variant else 0.08)
    vec, single = FxVectorEnv(bars, cfg, num_envs=2, seed=9), FxTradingEnv(bars, cfg, seed=9)
    vobs, _ = vec.reset(seed=9)
    sobs, _ = single.reset(seed=9)
    rng = np.random.default_rng(5)
    episodes = liquidated = 0
    for _ in range(600):
        assert all(np.array_equal(sobs[k], vobs[k][0].numpy()) for k in sobs)
        a = rng.uniform(-1.2, 1.2, (2, 1)) if cfg.action_mode == "continuous" else rng.integers(0, 5, 2)
        vobs, vr, vte, vtr, vinfo = vec.step(torch.as_tensor(a))
        sobs, sr, ste, str_, sinfo = single.step(a[0])
        assert (sr, ste, str_) == (vr[0].item(), vte[0].item(), vtr[0].item())
        assert {k: v for k, v in sinfo.items() if k != "fx"} == {
            k: v[0].item() for k, v in vinfo.items() if not k.startswith("_") and k not in ("final_obs", "final_info")}
        if ste or str_:
            episodes += 1
            liquidated += ste
            assert sinfo["fx"] == {k: v[0].item() for k, v in vinfo["final_info"].items()}
            assert all(np.array_equal(sobs[k], vinfo["final_obs"][k][0].numpy()) for k in sobs)
            sobs, _ = single.reset()
    assert episodes >= 5
    if "stop" in variant:
        assert liquidated >= 2
