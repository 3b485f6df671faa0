"""One FX account stepped bar by bar, as the env steps it: for a live agent's own account and the
simulated paper-trading broker.

A live feed delivers one closed bar at a time, so the account cannot use the env's arrays of
the whole series. :class:`SimAccount` computes the same per-bar arrays
(:func:`envs.fx.arrays.market_arrays` of the new bar and the bar before it: spreads, rollover
nights, swap rates, conversion rates) and moves the same :class:`envs.fx.execution.Accounts`
through :func:`envs.fx.execution.execute_bar`, the function the env's ``step`` calls. Orders
decided on a bar's close fill ``latency_bars`` bars later at the open, in the env's queue
(:meth:`submit` / :meth:`step`), or at a caller's choice (:meth:`execute`). Position, entry
price, balance and equity therefore equal the env's after every bar, to the last bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from envs.fx.arrays import TradingContext, market_arrays
from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars
from envs.fx.execution import BAR_FIELDS, Accounts, BarResult, execute_bar

_CPU = torch.device("cpu")


def bar_arrays(bars: Bars, cfg: FxEnvConfig, context: TradingContext, bar_ns: int) -> dict[str, torch.Tensor]:
    """The env's per-bar arrays ([1] float64 tensors, :func:`envs.fx.arrays.market_arrays`) of the LAST bar of
    ``bars``; the bar before it (when given) sets the gap whose rollovers are booked before the open."""
    two = bars.slice(max(0, len(bars) - 2), len(bars))
    arrays = market_arrays(two, cfg, context, _CPU, bar_ns)
    return {key: value[-1:] for key, value in arrays.items()}


class SimAccount:
    """One account on the CPU in float64 (``cfg``: costs, leverage, margins, swaps; ``context``: pair and
    account currency; ``bar_ns``: the bar length the rollover calendar and conversion rates use)."""

    def __init__(self, cfg: FxEnvConfig, context: TradingContext, bar_ns: int) -> None:
        self.cfg, self.context, self.bar_ns = cfg, context, int(bar_ns)
        self.accounts = Accounts(cfg, 1, _CPU, context.pip)
        self.latency = int(cfg.latency_bars)
        self.pending: list[float | None] = [None] * self.latency
        """The env's order queue: ``pending[k]`` fills k + 1 bars from now (None: no order)."""

    # ------------------------------------------------------------------ the account as numbers
    @property
    def position(self) -> float:
        return float(self.accounts.position[0])

    @property
    def entry_price(self) -> float:
        return float(self.accounts.entry_price[0])

    @property
    def balance(self) -> float:
        return float(self.accounts.balance[0])

    @property
    def equity(self) -> float:
        return float(self.accounts.equity[0])

    @property
    def time_in_position(self) -> float:
        return float(self.accounts.time_in_position[0])

    def rate(self, price: torch.Tensor, tabulated: torch.Tensor) -> torch.Tensor:
        """Quote -> account rate at ``price`` (the env's ``_rate``)."""
        return 1.0 / price if self.context.conversion == "base" else tabulated

    def unrealised_pnl(self, arrays: dict[str, torch.Tensor]) -> torch.Tensor:
        """[1] P&L of the open position against its entry at the close of the bar of ``arrays``."""
        close = arrays["close"]
        return self.accounts.unrealised_pnl(close, self.rate(close, arrays["rate_close"]))

    # ------------------------------------------------------------------ stepping
    def bar_arrays(self, bars: Bars) -> dict[str, torch.Tensor]:
        """:func:`bar_arrays` of this account's settings."""
        return bar_arrays(bars, self.cfg, self.context, self.bar_ns)

    def execute(self, arrays: dict[str, torch.Tensor], due: float | None) -> BarResult:
        """Step through the bar of ``arrays`` (:meth:`bar_arrays`); ``due``: target units of the order
        filling at its open (None: no order)."""
        rates = arrays["rate_open"]
        if not bool(torch.isfinite(rates).all()):
            raise ValueError(f"--fx.conversion-data: no conversion rate is known at "
                             f"{np.datetime64(int(arrays['time'][0]), 'ns')}")
        target = torch.tensor([0.0 if due is None else float(due)], dtype=torch.float64)
        valid = None if due is not None else torch.zeros(1, dtype=torch.bool)
        return execute_bar(self.accounts, {key: arrays[key] for key in BAR_FIELDS}, target, valid,
                           self.context.conversion == "base", skip_idle=True)

    def submit(self, target_units: float) -> None:
        """Queue the order decided on the current bar's close (it fills ``latency_bars`` bars later)."""
        self.pending[self.latency - 1] = float(target_units)

    def step(self, arrays: dict[str, torch.Tensor]) -> BarResult:
        """Step through the next bar, filling the order that is due there (the env's queue)."""
        due = self.pending[0]
        self.pending = self.pending[1:] + [None]
        return self.execute(arrays, due)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"accounts": self.accounts.state_dict(),
                "pending": torch.tensor([np.nan if p is None else p for p in self.pending], dtype=torch.float64)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pending = [None if np.isnan(p) else float(p) for p in state["pending"].tolist()]
        if len(pending) != self.latency:
            raise ValueError(f"account state has {len(pending)} queued bars, this account's latency is {self.latency}")
        self.accounts.load_state_dict(state["accounts"])
        self.pending = pending


__all__ = ["SimAccount", "bar_arrays"]
