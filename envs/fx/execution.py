"""Execution simulator and account ledger: ALL money accounting of the FX env lives here.

Conventions (the account currency is the quote currency, e.g. USD for EURUSD):

* Bars are MID prices. A buy of q units fills at ``mid + half_spread + slippage``, a sell at
  ``mid - half_spread - slippage``; ``mid`` is the open of the fill bar (an order decided on
  bar t's close fills at bar t + latency's open, never at a price the agent saw).
* Commission = ``commission_per_million / 1e6 x |q| x mid`` (on notional).
* Slippage per unit = ``mid x |q| / 1e6 x (slippage_bps_per_million x 1e-4 + slippage_vol_mult x vol)``
  where ``vol`` is the realised per-bar volatility of the bars closed before the fill:
  it grows with order size and with recent volatility.
* Orders target a position; the target is cut to ``|target| x mid <= lev x equity`` with
  ``lev = min(max_leverage, 1 / initial_margin)`` (equity marked at the fill's mid).
* The position is MARKED AT MID (the close), consistently: ``equity = cash + position x close``.
  So a round trip's cost shows up exactly as spread + commission + slippage.
* Swap: at every daily rollover crossed while a position is held, cash is credited
  ``swap_long x units`` (long) or ``swap_short x |units|`` (short); negative rates charge.
* Forced liquidation: after marking, if ``equity < maintenance_margin x |position| x close`` (or
  equity <= 0) the whole position is closed at the close (paying spread, slippage and
  commission) and the episode terminates.

Everything is float64 torch tensors of shape [N] (one row per env) so N accounts update at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from envs.fx.config import FxEnvConfig

STATE_FIELDS = ("cash", "position", "entry_price", "equity", "peak_equity", "time_in_position",
                "n_trades", "spread_paid", "commission_paid", "slippage_paid", "swap_total",
                "traded_notional")


@dataclass
class FillResult:
    """Per-env result of one fill: units traded and the three costs (all >= 0)."""

    traded: torch.Tensor
    spread: torch.Tensor
    commission: torch.Tensor
    slippage: torch.Tensor

    @property
    def cost(self) -> torch.Tensor:
        return self.spread + self.commission + self.slippage


class Accounts:
    """N trading accounts (cash, position, cost ledgers) in float64 on one device."""

    def __init__(self, cfg: FxEnvConfig, num_envs: int, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        self.half_spread = 0.5 * cfg.spread_pips * cfg.pip_size
        self.commission_rate = cfg.commission_per_million / 1e6
        self.leverage = min(cfg.max_leverage, 1.0 / cfg.initial_margin)
        z = lambda: torch.zeros(num_envs, dtype=torch.float64, device=device)  # noqa: E731
        for name in STATE_FIELDS:
            setattr(self, name, z())
        self.reset(torch.ones(num_envs, dtype=torch.bool, device=device))

    def reset(self, mask: torch.Tensor) -> None:
        """Fresh accounts (initial cash, flat) where ``mask``."""
        e0 = self.cfg.initial_equity
        for name in STATE_FIELDS:  # out of place: tensors handed out in info stay unchanged
            value = e0 if name in ("cash", "equity", "peak_equity") else 0.0
            setattr(self, name, getattr(self, name).masked_fill(mask, value))

    def fill(self, target: torch.Tensor, mid: torch.Tensor, vol: torch.Tensor,
             mask: torch.Tensor | None, cap_leverage: bool = True) -> FillResult:
        """Trade towards ``target`` units at ``mid`` where ``mask`` (None: every env); returns units and costs."""
        if cap_leverage:
            equity_at_mid = self.cash + self.position * mid
            cap = equity_at_mid.clamp(min=0.0) * self.leverage / mid
            target = torch.maximum(torch.minimum(target, cap), -cap)
        q = target - self.position
        if mask is not None:
            q = torch.where(mask, q, torch.zeros_like(q))
        absq = q.abs()
        slip_frac = absq / 1e6 * (self.cfg.slippage_bps_per_million * 1e-4
                                  + self.cfg.slippage_vol_mult * vol)
        res = FillResult(traded=q, spread=absq * self.half_spread,
                         commission=absq * mid * self.commission_rate,
                         slippage=absq * mid * slip_frac)
        fill_price = mid + torch.sign(q) * (self.half_spread + mid * slip_frac)
        old = self.position
        new = old + q
        opened = (old * new <= 0) & (new != 0)  # from flat, or flipped through zero
        grown = (old * new > 0) & (new.abs() > old.abs())
        vwap = (old * self.entry_price + q * fill_price) / torch.where(new == 0, torch.ones_like(new), new)
        self.entry_price = torch.where(new == 0, torch.zeros_like(new),
                                       torch.where(opened, fill_price,
                                                   torch.where(grown, vwap, self.entry_price)))
        self.time_in_position = torch.where(opened | (new == 0), torch.zeros_like(new), self.time_in_position)
        self.cash = self.cash - q * mid - res.cost
        self.position = new
        self.n_trades = self.n_trades + (q != 0).to(torch.float64)
        self.spread_paid = self.spread_paid + res.spread
        self.commission_paid = self.commission_paid + res.commission
        self.slippage_paid = self.slippage_paid + res.slippage
        self.traded_notional = self.traded_notional + absq * mid
        return res

    def accrue_swap(self, n_rollovers: torch.Tensor, mirrored: torch.Tensor | None = None) -> torch.Tensor:
        """Credit/charge swap for ``n_rollovers`` [N] crossings on the current position. On a
        ``mirrored`` row (the inverted pair of mirror augmentation) a long position is
        economically a short of the real pair, so the long and short rates trade places."""
        pos = self.position
        long_side = pos > 0 if mirrored is None else (pos > 0) != mirrored
        rate = torch.where(long_side, torch.full_like(pos, self.cfg.swap_long),
                           torch.full_like(pos, self.cfg.swap_short))
        swap = n_rollovers * rate * pos.abs()
        self.cash = self.cash + swap
        self.swap_total = self.swap_total + swap
        return swap

    def mark(self, close: torch.Tensor) -> torch.Tensor:
        """Equity = cash + position x close (mid); updates peak equity and time in position."""
        self.equity = self.cash + self.position * close
        self.peak_equity = torch.maximum(self.peak_equity, self.equity)
        self.time_in_position = torch.where(self.position != 0, self.time_in_position + 1,
                                            torch.zeros_like(self.time_in_position))
        return self.equity

    def margin_breach(self, close: torch.Tensor) -> torch.Tensor:
        """[N] bool: equity below maintenance margin on the open position, or bankrupt."""
        required = self.cfg.maintenance_margin * self.position.abs() * close
        return ((self.position != 0) & (self.equity < required)) | (self.equity <= 0)

    def unrealised_pnl(self, close: torch.Tensor) -> torch.Tensor:
        return self.position * (close - self.entry_price)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name).clone() for name in STATE_FIELDS}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name in STATE_FIELDS:
            setattr(self, name, state[name].to(device=self.device, dtype=torch.float64).clone())
