"""The accounting of :mod:`envs.fx.execution` for ONE account in Python floats: the fast single env's.

A torch op on a one-element tensor costs microseconds, so one account stepped through
:func:`envs.fx.execution.execute_bar` runs at ~1,000 bars a second. :class:`ScalarAccount` is the
same ledger, the same fills, marks, swaps, stop-outs and leverage cap, written as float
arithmetic in the same order as the tensor code, so every number is the same to the last bit
(IEEE-754 float64 either way; ``tests/test_fx_single_fast.py`` steps both through random bars,
stop-outs, swaps and every currency path and compares every field). Work that changes nothing
is skipped exactly as ``execute_bar(..., skip_idle=True)`` skips it: a fill of zero units, a
mark or a stop-out check that does not fire, a swap on a bar without a rollover.

Change the accounting in :mod:`envs.fx.execution` first; this twin follows it, and the tests say
where it does not.
"""

from __future__ import annotations

import math

from envs.fx.config import FxEnvConfig
from envs.fx.execution import STATE_FIELDS

ROW_FIELDS = ("open", "high", "low", "close", "hs_open", "hs_high", "hs_low", "hs_close", "roll_before",
              "roll_inside", "swap_long", "swap_short", "rate_open", "rate_close")
"""The bar fields :meth:`ScalarAccount.execute_bar` reads, in the order of its ``bar`` tuple
(:data:`envs.fx.execution.BAR_FIELDS`)."""


def _trunc(x: float) -> float:
    return float(math.trunc(x)) if math.isfinite(x) else x


class ScalarAccount:
    """One account: the fields of :data:`envs.fx.execution.STATE_FIELDS` as Python floats."""

    __slots__ = STATE_FIELDS + ("cfg", "pip", "commission_rate", "leverage", "lot", "slip_base", "impact",
                                "maintenance", "e0")

    def __init__(self, cfg: FxEnvConfig, pip: float) -> None:
        self.cfg = cfg
        self.pip = float(pip)
        self.commission_rate = cfg.commission_per_million / 1e6
        self.leverage = min(cfg.max_leverage, 1.0 / cfg.initial_margin)
        self.lot = float(cfg.lot_size)
        self.slip_base = self.pip * cfg.cost_scale
        self.impact = cfg.impact_pips_per_million
        self.maintenance = cfg.maintenance_margin
        self.e0 = float(cfg.initial_equity)
        self.reset()

    def reset(self) -> None:
        """A fresh account: initial equity, flat."""
        for name in STATE_FIELDS:
            setattr(self, name, self.e0 if name in ("balance", "equity", "peak_equity") else 0.0)

    def state(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in STATE_FIELDS}

    def load(self, state: dict[str, float]) -> None:
        for name in STATE_FIELDS:
            setattr(self, name, float(state[name]))

    # -------------------------------------------------------------- the ledger (Accounts' methods)
    def mark(self, price: float, rate: float) -> float:
        pnl = self.position * (price - self.last_mark) * rate
        self.balance = self.balance + pnl
        self.last_mark = price
        return pnl

    def breach(self, price: float, rate: float) -> bool:
        pos = self.position
        if pos == 0:
            return False
        equity = self.balance + pos * (price - self.last_mark) * rate
        required = self.maintenance * abs(pos) * price * rate
        return equity < required or equity <= 0

    def fill(self, target: float, mid: float, half_spread: float, rate: float, cap_leverage: bool = True) -> float:
        """Trade towards ``target`` units at ``mid`` (the account marked at ``mid`` first); returns the cost."""
        if cap_leverage:
            b = self.balance
            cap = (b if b > 0.0 else 0.0) * self.leverage / (mid * rate)
            target = min(target, cap)
            target = max(target, -cap)
            if self.lot > 0:
                target = _trunc(target / self.lot) * self.lot
        old = self.position
        q = target - old
        if q == 0:
            return 0.0
        absq = abs(q)
        slip = self.slip_base * (self.cfg.slippage_pips + self.impact * absq / 1e6)
        fill_price = mid + (1.0 if q > 0 else -1.0) * (half_spread + slip)
        spread = absq * half_spread * rate
        commission = absq * mid * rate * self.commission_rate
        slippage = absq * slip * rate
        new = old + q
        prod = old * new
        if new == 0:
            self.entry_price = 0.0
            self.time_in_position = 0.0
        elif prod <= 0:  # opened from flat or flipped through zero
            self.entry_price = fill_price
            self.time_in_position = 0.0
        elif abs(new) > abs(old):  # grown: volume-weighted entry
            self.entry_price = (old * self.entry_price + q * fill_price) / new
        cost = spread + commission + slippage
        self.balance = self.balance - cost
        self.position = new
        self.n_trades = self.n_trades + 1.0
        self.spread_paid = self.spread_paid + spread
        self.commission_paid = self.commission_paid + commission
        self.slippage_paid = self.slippage_paid + slippage
        self.traded_notional = self.traded_notional + absq * mid * rate
        return cost

    def accrue_swap(self, nights: float, long_rate: float, short_rate: float, rate: float) -> float:
        pos = self.position
        swap = nights * (long_rate if pos > 0 else short_rate) * abs(pos) * rate
        self.balance = self.balance + swap
        self.swap_total = self.swap_total + swap
        return swap

    # -------------------------------------------------------------- one bar (execute_bar)
    def execute_bar(self, bar: tuple[float, ...], due: float, due_valid: bool,
                    base_conversion: bool) -> tuple[float, float, float, bool]:
        """:func:`envs.fx.execution.execute_bar` for this account: ``bar`` holds :data:`ROW_FIELDS`; ``due``: the
        target units of the order filling at the open where ``due_valid``. Returns (pnl, cost, swap, breach)."""
        (open_, high, low, close, hs_open, hs_high, hs_low, hs_close, roll_before, roll_inside, swap_long, swap_short,
         rate_open, rate_close) = bar
        r_open = 1.0 / open_ if base_conversion else rate_open
        r_close = 1.0 / close if base_conversion else rate_close
        swap = self.accrue_swap(roll_before, swap_long, swap_short, r_open) if roll_before != 0 else 0.0
        pnl = self.mark(open_, r_open)
        stop_open = self.breach(open_, r_open)
        cost = self.fill(0.0, open_, hs_open, r_open, cap_leverage=False) if stop_open else 0.0
        if due_valid and not stop_open:
            cost = cost + self.fill(due, open_, hs_open, r_open)
        if roll_inside != 0:
            swap = swap + self.accrue_swap(roll_inside, swap_long, swap_short, r_close)
        long_ = self.position > 0
        worst = low if long_ else high
        r_worst = 1.0 / worst if base_conversion else rate_close
        stop_bar = self.breach(worst, r_worst)
        if stop_bar:
            pnl = pnl + self.mark(worst, r_worst)
            cost = cost + self.fill(0.0, worst, hs_low if long_ else hs_high, r_worst, cap_leverage=False)
        pnl = pnl + self.mark(close, r_close)
        stop_close = self.breach(close, r_close)
        if stop_close:
            cost = cost + self.fill(0.0, close, hs_close, r_close, cap_leverage=False)
        # settle
        self.equity = self.balance
        if not self.equity <= self.peak_equity:  # torch.maximum: a NaN equity becomes the peak
            self.peak_equity = self.equity
        self.time_in_position = self.time_in_position + 1.0 if self.position != 0 else 0.0
        return pnl, cost, swap, stop_open or stop_bar or stop_close


__all__ = ["ROW_FIELDS", "ScalarAccount"]
