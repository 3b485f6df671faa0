"""Execution simulator and account ledger: ALL money accounting of the FX env lives here.

Conventions:

* Bars are MID prices in quote currency; the account keeps its money in the account
  currency. Every quote-currency amount (P&L, spread, slippage, swap) is converted at the
  rate of the moment it arises (``rate`` arguments; :mod:`envs.fx.arrays` explains the rates).
* The account is marked to market continuously (variation margin): ``mark(price)`` books
  ``position x (price - last mark) x rate`` into the balance and moves the mark, so equity is
  the balance at every mark. Between bars the position is marked at the next open (a weekend
  gap moves it), within a bar at its adverse extreme when that stops it out, then at the close.
* A buy of q units fills at ``mid + half_spread + slippage``, a sell at ``mid - half_spread -
  slippage``; ``mid`` is the open of the fill bar (an order decided on bar t's close fills at
  bar t + latency's open, never at a price the agent saw). The half spread is the file's own
  (bid/ask columns) or half of ``spread_pips``.
* Slippage per unit = ``slippage_pips`` + ``impact_pips_per_million x |q| / 1e6`` pips: the
  cost is linear in the order size (plus an optional quadratic impact term) and does not
  depend on the bar length.
* Commission = ``commission_per_million / 1e6 x |q| x mid x rate`` (account currency).
* Defaults: 0.8 pip spread, 0.05 pip slippage per side and 20 per million commission make a
  one-lot EURUSD round trip at 1.10 cost 0.8 + 0.1 + 0.44 = 1.34 pips: a standard retail
  account quotes EURUSD at about 1.0-1.7 pips (steadypips.net, "Typical Spreads for Major
  Pairs"), an ECN account at ~0.1 pip raw spread plus $7 round-turn commission, ~0.8 pip
  (forexcracked.com glossary, "Commission").
* Orders target a position; the target is cut to ``|target| x mid x rate <= lev x equity`` with
  ``lev = min(max_leverage, 1 / initial_margin)`` and rounded to whole ``lot_size`` units
  towards zero.
* Swap: ``nights x rate x |units|`` (``swap_long`` for a long, ``swap_short`` for a short, quote
  currency per unit per night; negative rates charge), for the nights the calendar books.
* Stop-out: when equity at a price falls below ``maintenance_margin x |position| x price x rate``
  (or to zero), the whole position is closed at that price, paying half spread, slippage and
  commission, and the episode terminates.

Everything is float64 torch tensors of shape [N] (one row per env) so N accounts update at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from envs.fx.config import FxEnvConfig

STATE_FIELDS = ("balance", "position", "entry_price", "last_mark", "equity", "peak_equity", "time_in_position",
                "n_trades", "spread_paid", "commission_paid", "slippage_paid", "swap_total", "traded_notional")


@dataclass
class FillResult:
    """Per-env result of one fill: units traded and the three costs in account currency (all >= 0)."""

    traded: torch.Tensor
    spread: torch.Tensor
    commission: torch.Tensor
    slippage: torch.Tensor
    price: torch.Tensor | None = None
    """Fill price per unit (mid plus or minus half spread and slippage, in quote currency)."""
    cost: torch.Tensor | None = None
    """spread + commission + slippage (computed once, here, when not given)."""

    def __post_init__(self) -> None:
        if self.cost is None:
            self.cost = self.spread + self.commission + self.slippage


class Accounts:
    """N trading accounts (balance, position, cost ledgers) in float64 on one device."""

    def __init__(self, cfg: FxEnvConfig, num_envs: int, device: torch.device, pip: float) -> None:
        self.cfg = cfg
        self.device = device
        self.pip = float(pip)
        self.commission_rate = cfg.commission_per_million / 1e6
        self.leverage = min(cfg.max_leverage, 1.0 / cfg.initial_margin)
        self.lot = float(cfg.lot_size)
        z = lambda: torch.zeros(num_envs, dtype=torch.float64, device=device)  # noqa: E731
        for name in STATE_FIELDS:
            setattr(self, name, z())
        self.reset(torch.ones(num_envs, dtype=torch.bool, device=device))

    def reset(self, mask: torch.Tensor) -> None:
        """Fresh accounts (initial equity, flat) where ``mask``."""
        e0 = self.cfg.initial_equity
        for name in STATE_FIELDS:  # out of place: tensors handed out in info stay unchanged
            value = e0 if name in ("balance", "equity", "peak_equity") else 0.0
            setattr(self, name, getattr(self, name).masked_fill(mask, value))

    def equity_at(self, price: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        """Equity if the position were marked at ``price`` now."""
        return self.balance + self.position * (price - self.last_mark) * rate

    def mark(self, price: torch.Tensor, rate: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Book the P&L of moving the mark to ``price`` (where ``mask``); returns it (account currency)."""
        pnl = self.position * (price - self.last_mark) * rate
        if mask is not None:
            pnl = torch.where(mask, pnl, torch.zeros_like(pnl))
            price = torch.where(mask, price, self.last_mark)
        self.balance = self.balance + pnl
        self.last_mark = price
        return pnl

    def _round_lots(self, units: torch.Tensor) -> torch.Tensor:
        return torch.trunc(units / self.lot) * self.lot if self.lot > 0 else units

    def fill(self, target: torch.Tensor, mid: torch.Tensor, half_spread: torch.Tensor, rate: torch.Tensor,
             mask: torch.Tensor | None, cap_leverage: bool = True, cost_scale: torch.Tensor | None = None) -> FillResult:
        """Trade towards ``target`` units at ``mid`` where ``mask`` (None: every env); the account must be
        marked at ``mid`` first. ``cost_scale`` [N] multiplies each row's slippage (its spread comes scaled in
        ``half_spread``). Returns units traded and costs."""
        if cap_leverage:
            cap = self.balance.clamp(min=0.0) * self.leverage / (mid * rate)
            target = self._round_lots(target.clamp(min=-cap, max=cap))
        q = target - self.position
        if mask is not None:
            q = torch.where(mask, q, 0.0)
        absq = q.abs()
        impact = self.cfg.impact_pips_per_million
        # without market impact the slippage is one number for every env (the same value either way)
        slip = self.pip * self.cfg.cost_scale * (self.cfg.slippage_pips + impact * absq / 1e6 if impact else
                                                  self.cfg.slippage_pips + 0.0)
        if cost_scale is not None:
            slip = slip * cost_scale
        fill_price = mid + torch.sign(q) * (half_spread + slip)
        notional = absq * mid * rate
        res = FillResult(traded=q, spread=absq * half_spread * rate, commission=notional * self.commission_rate,
                         slippage=absq * slip * rate, price=fill_price)
        old = self.position
        new = old + q
        flat, prod = new == 0, old * new
        opened = (prod <= 0) & ~flat  # from flat, or flipped through zero
        grown = (prod > 0) & (new.abs() > old.abs())
        vwap = (old * self.entry_price + q * fill_price) / new.masked_fill(flat, 1.0)
        self.entry_price = torch.where(opened, fill_price, torch.where(grown, vwap, self.entry_price)).masked_fill(
            flat, 0.0)
        self.time_in_position = self.time_in_position.masked_fill(opened | flat, 0.0)
        self.balance = self.balance - res.cost
        self.position = new
        self.n_trades = self.n_trades + (q != 0).to(torch.float64)
        self.spread_paid = self.spread_paid + res.spread
        self.commission_paid = self.commission_paid + res.commission
        self.slippage_paid = self.slippage_paid + res.slippage
        self.traded_notional = self.traded_notional + notional
        return res

    def accrue_swap(self, nights: torch.Tensor, long_rate: torch.Tensor, short_rate: torch.Tensor,
                    rate: torch.Tensor) -> torch.Tensor:
        """Credit/charge swap on the current position for ``nights`` [N]; returns it (account currency)."""
        pos = self.position
        swap = nights * torch.where(pos > 0, long_rate, short_rate) * pos.abs() * rate
        self.balance = self.balance + swap
        self.swap_total = self.swap_total + swap
        return swap

    def breach(self, price: torch.Tensor, rate: torch.Tensor, marked: bool = False) -> torch.Tensor:
        """[N] bool: equity at ``price`` below maintenance margin on the open position, or bankrupt.
        ``marked``: the account was just marked at ``price``, so its equity there is the balance."""
        equity = self.balance if marked else self.equity_at(price, rate)
        required = self.cfg.maintenance_margin * self.position.abs() * price * rate
        if self.cfg.maintenance_margin > 0:  # an open position needs required > 0, so equity <= 0 is below it
            return (self.position != 0) & (equity < required)
        return (self.position != 0) & ((equity < required) | (equity <= 0))

    def settle(self) -> torch.Tensor:
        """End of a step: equity is the (fully marked) balance; peak and time in position move on."""
        self.equity = self.balance
        self.peak_equity = torch.maximum(self.peak_equity, self.equity)
        self.time_in_position = (self.time_in_position + 1).masked_fill(self.position == 0, 0.0)
        return self.equity

    def unrealised_pnl(self, close: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        """P&L of the open position against its entry price, in account currency."""
        return self.position * (close - self.entry_price) * rate

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name).clone() for name in STATE_FIELDS}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name in STATE_FIELDS:
            setattr(self, name, state[name].to(device=self.device, dtype=torch.float64).clone())


_ASK_SWAPS_UP_TO = 64
"""``skip_idle`` asks whether any account books a rollover only up to this many accounts (with 64 on random
15-minute bars, half the steps have one somewhere; with 1,024, all of them)."""

BAR_FIELDS = ("open", "high", "low", "close", "hs_open", "hs_high", "hs_low", "hs_close", "roll_before",
              "roll_inside", "swap_long", "swap_short", "rate_open", "rate_close")
"""What :func:`execute_bar` reads of the bar it steps into (the :func:`envs.fx.arrays.market_arrays` rows)."""


@dataclass
class BarResult:
    """What one bar did to the accounts (account currency; [N] tensors): marked P&L, costs paid, swap booked,
    whether a stop-out happened, and the fills: ``order`` (the due order at the open) and ``stops``
    (the closing fills at the open, the adverse extreme and the close; zero units where none happened)."""

    pnl: torch.Tensor
    cost: torch.Tensor
    swap: torch.Tensor
    breach: torch.Tensor
    order: FillResult
    stops: dict[str, FillResult]


def execute_bar(acc: Accounts, bar: Mapping[str, torch.Tensor], due: torch.Tensor, due_valid: torch.Tensor | None,
                base_conversion: bool, skip_idle: bool = False, cost_scale: torch.Tensor | None = None) -> BarResult:
    """Move the accounts through one bar, in the env's order: rollovers in the gap before the open are
    booked on the position held, the position is marked at the open (a gap through the margin level
    stops it out there), the orders due (``due`` target units where ``due_valid``, None = every
    account) fill at the open, rollovers during the bar are booked, the adverse extreme (the low for
    a long, the high for a short) can stop it out, and the position is marked (and checked) at the
    close. ``bar`` holds the :data:`BAR_FIELDS` of the bar per account; ``base_conversion``: the
    account is in the pair's base currency, so quote amounts convert at 1 / price. Every env and
    live account steps through here, so they cannot drift apart.

    ``skip_idle``: leave out the stop-out fills and the mark at the extreme where no account is
    stopped out, and the swap where no night is booked (all of them change nothing then: the
    results are the same to the last bit). It asks the device whether any account is stopped out,
    so it pays for one account on the CPU (a live account), not for N accounts on a GPU.
    ``cost_scale`` [N]: per-account multiples of the spread and slippage (cost-sensitivity backtests)."""

    def rate(price: torch.Tensor, tabulated: torch.Tensor) -> torch.Tensor:
        return 1.0 / price if base_conversion else tabulated

    open_, low, high, close = bar["open"], bar["low"], bar["high"], bar["close"]
    r_open, r_close = rate(open_, bar["rate_open"]), rate(close, bar["rate_close"])
    cs = cost_scale
    hs = {k: bar[k] if cs is None else bar[k] * cs for k in ("hs_open", "hs_low", "hs_high", "hs_close")}

    def idle(mask: torch.Tensor) -> bool:
        return skip_idle and not bool(mask.any())

    zero = torch.zeros_like(open_)  # shared by the fills and swaps that did not happen (never written in place)

    def no_fill(price: torch.Tensor) -> FillResult:
        return FillResult(zero, zero, zero, zero, price, zero)

    # among many accounts on random bars some rollover is almost sure every step: asking would cost more than it saves
    ask_swaps = open_.numel() <= _ASK_SWAPS_UP_TO

    def swap_for(nights: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        if ask_swaps and idle(nights != 0):
            return zero
        return acc.accrue_swap(nights, bar["swap_long"], bar["swap_short"], r)

    # the gap before the open: rollovers booked on the position held, then the mark at the open
    swap = swap_for(bar["roll_before"], r_open)
    pnl = acc.mark(open_, r_open)
    stop_open = acc.breach(open_, r_open, marked=True)  # a gap through the margin level stops out at the open
    if idle(stop_open):  # nobody stopped out at the open: every due order fills
        at_open, due_mask = no_fill(open_), due_valid
    else:
        at_open = acc.fill(zero, open_, hs["hs_open"], r_open, stop_open, cap_leverage=False,
                           cost_scale=cs)
        due_mask = ~stop_open if due_valid is None else due_valid & ~stop_open
    order = acc.fill(due, open_, hs["hs_open"], r_open, due_mask, cost_scale=cs)
    cost = order.cost if at_open.cost is zero else at_open.cost + order.cost
    swap = swap + swap_for(bar["roll_inside"], r_close)
    # within the bar: the adverse extreme (bid low for a long, ask high for a short) can stop it out
    long_ = acc.position > 0
    worst = torch.where(long_, low, high)
    r_worst = rate(worst, bar["rate_close"])
    stop_bar = acc.breach(worst, r_worst)
    if idle(stop_bar):
        at_worst = no_fill(worst)
    else:
        pnl = pnl + acc.mark(worst, r_worst, stop_bar)
        at_worst = acc.fill(zero, worst, torch.where(long_, hs["hs_low"], hs["hs_high"]),
                            r_worst, stop_bar, cap_leverage=False, cost_scale=cs)
    if at_worst.cost is not zero:
        cost = cost + at_worst.cost
    pnl = pnl + acc.mark(close, r_close)
    stop_close = acc.breach(close, r_close, marked=True)  # e.g. the conversion rate moved against the account
    at_close = no_fill(close) if idle(stop_close) else acc.fill(zero, close, hs["hs_close"],
                                                                  r_close, stop_close, cap_leverage=False, cost_scale=cs)
    if at_close.cost is not zero:
        cost = cost + at_close.cost
    breach = stop_open | stop_bar | stop_close
    acc.settle()
    return BarResult(pnl, cost, swap, breach, order, {"open": at_open, "extreme": at_worst, "close": at_close})
