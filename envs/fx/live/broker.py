"""The broker interface of paper and live trading, and the simulated broker behind ``engine.paper``.

:class:`Broker` has the shape of a REST broker such as OANDA's v20 API; an adapter for a real
broker implements these calls over HTTP (each method names the v20 endpoint it maps to):

* :meth:`~Broker.place_order` -- ``POST /v3/accounts/{id}/orders`` with a market order whose
  ``clientExtensions.id`` is :attr:`Order.client_id`. The broker must treat that id as an
  idempotency key: an order is executed at most once whatever the retries.
* :meth:`~Broker.get_order` -- ``GET /v3/accounts/{id}/orders/@{clientID}``: was this order
  received? (The paper loop asks after a restart before it sends a journalled order again.)
* :meth:`~Broker.position` -- ``GET /v3/accounts/{id}/positions/{instrument}``: net units and
  average price.
* :meth:`~Broker.account` -- ``GET /v3/accounts/{id}/summary``: balance, NAV, unrealised P&L.
* :meth:`~Broker.transactions` -- ``GET /v3/accounts/{id}/transactions/sinceid?id=N``: fills,
  stop-outs and cancellations after transaction N, in order.
* :meth:`~Broker.on_bar` -- the market closed a bar. A real broker's market moves by itself
  (an adapter does nothing here); the simulated broker executes on it.

:class:`SimBroker` fills with the env's execution model (:class:`envs.fx.sim_account.SimAccount`):
an order decided on a bar's close fills ``latency_bars`` bars later at the open, towards its
target position (lot rounding and the leverage cap at the fill, as the env), with the bar's
spread, slippage and commission; swaps, stop-outs at the open, the adverse extreme and the
close. On a bar with no order due the position is held (and, as in the env, cut back to the
leverage cap if the account shrank). A paper run therefore ends with the backtest's positions
and equity. (One exception, with ``latency_bars`` above 1 only: where the leverage cap cut an
order, the env fills that target again at the next open, since its queue holds a target for
every bar, while a broker holds what it got.) Its state lives in its own SQLite file, every call
one transaction, so it survives the trading process like a remote broker does.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from envs.fx.arrays import TradingContext
from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars
from envs.fx.execution import STATE_FIELDS
from envs.fx.live.agent import Bar
from envs.fx.sim_account import SimAccount


@dataclass(frozen=True)
class Order:
    """A market order. ``units``: signed size (positive buys) from the position the decision saw;
    ``target_units``: the position it aims at (a simulated broker fills towards it, as the env does);
    ``client_id``: the idempotency key (OANDA ``clientExtensions.id``); ``time_ns``: the bar decided on."""

    client_id: str
    instrument: str
    units: float
    target_units: float
    time_ns: int


@dataclass(frozen=True)
class OrderAck:
    """The broker's answer to an order: its own id and ``accepted`` or ``rejected`` (with the reason)."""

    client_id: str
    broker_id: str
    status: str
    reason: str = ""


@dataclass(frozen=True)
class Position:
    """Net position in ``instrument``: signed units of the base currency and their average fill price."""

    instrument: str
    units: float
    average_price: float


@dataclass(frozen=True)
class AccountSummary:
    """Balance and equity (NAV, marked at the last close) in the account currency."""

    balance: float
    equity: float
    unrealised_pnl: float
    currency: str


@dataclass(frozen=True)
class Transaction:
    """One broker transaction: ``ORDER_FILL``, ``ORDER_CANCEL`` (nothing left to trade), ``STOP_OUT`` (the
    margin closed the position) or ``LEVERAGE_CUT`` (a held position cut to the leverage cap).
    ``cost``: spread, slippage and commission paid, account currency."""

    id: int
    kind: str
    time_ns: int
    client_id: str | None
    units: float
    price: float
    cost: float
    reason: str = ""


class Broker(Protocol):
    """What the paper/live loop needs of a broker (see the module docstring for the v20 endpoints)."""

    def on_bar(self, bar: Bar) -> None:
        """The market closed ``bar`` (a simulated broker executes here; idempotent by bar time)."""

    def place_order(self, order: Order) -> OrderAck:
        """Send ``order``; sending the same ``client_id`` again must not execute it twice."""

    def get_order(self, client_id: str) -> OrderAck | None:
        """The broker's record of the order with this client id, or None if it never arrived."""

    def position(self, instrument: str) -> Position:
        """The net position in ``instrument``."""

    def account(self) -> AccountSummary:
        """Balance, equity and unrealised P&L."""

    def transactions(self, since_id: int) -> list[Transaction]:
        """Every transaction with an id above ``since_id``, in id order."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 0), bars_seen INTEGER NOT NULL,
    last_time_ns INTEGER, prev_bar TEXT, accounts TEXT NOT NULL, setup TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (client_id TEXT PRIMARY KEY, broker_id INTEGER NOT NULL UNIQUE,
    instrument TEXT NOT NULL, units REAL NOT NULL, target_units REAL NOT NULL, time_ns INTEGER NOT NULL,
    due_bar INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS transactions (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, time_ns INTEGER NOT NULL,
    client_id TEXT, units REAL NOT NULL, price REAL NOT NULL, cost REAL NOT NULL, reason TEXT NOT NULL DEFAULT '');
"""


def connect(path: str | os.PathLike) -> sqlite3.Connection:
    """A SQLite connection in WAL mode with full fsync on commit (autocommit: transactions are explicit)."""
    con = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    return con


class SimBroker:
    """A simulated broker for one instrument: the env's execution model, its state in the SQLite file ``path``
    (created on first use; reopened as it was left, whatever killed the process before)."""

    def __init__(self, path: str | os.PathLike, cfg: FxEnvConfig, context: TradingContext, bar_ns: int) -> None:
        self.cfg, self.context, self.bar_ns = cfg, context, int(bar_ns)
        self.instrument = context.pair.name
        self.account_ = SimAccount(cfg, context, bar_ns)
        self.con = connect(path)
        self.con.executescript(_SCHEMA)
        setup = json.dumps({"pair": self.instrument, "account": context.account, "bar_ns": self.bar_ns,
                            "latency_bars": cfg.latency_bars, "initial_equity": cfg.initial_equity}, sort_keys=True)
        row = self.con.execute("SELECT bars_seen, last_time_ns, prev_bar, accounts, setup FROM state").fetchone()
        if row is None:
            self.bars_seen, self.last_time_ns, self.prev_bar = 0, None, None
            self.con.execute("INSERT INTO state VALUES (0, 0, NULL, NULL, ?, ?)", (self._accounts_json(), setup))
        else:
            if row[4] != setup:
                raise ValueError(f"{path}: this simulated broker account was opened for {row[4]}, not {setup}")
            self.bars_seen, self.last_time_ns = int(row[0]), row[1]
            self.prev_bar = None if row[2] is None else Bar(**{**json.loads(row[2]), "spread": _spread(row[2])})
            self._load_accounts(row[3])

    # ------------------------------------------------------------------ state
    def _accounts_json(self) -> str:
        acc = self.account_.accounts
        return json.dumps({name: float(getattr(acc, name)[0]) for name in STATE_FIELDS})

    def _load_accounts(self, text: str) -> None:
        values = json.loads(text)
        self.account_.accounts.load_state_dict({name: torch.tensor([values[name]], dtype=torch.float64)
                                                for name in STATE_FIELDS})

    # ------------------------------------------------------------------ the market
    def on_bar(self, bar: Bar) -> None:
        """Execute the bar: the order due fills at its open (or the position is held), swaps, stop-outs,
        the mark at the close. A bar at or before the last one seen changes nothing."""
        if self.last_time_ns is not None and bar.time_ns <= self.last_time_ns:
            return
        index = self.bars_seen
        due = self.con.execute("SELECT client_id, target_units FROM orders WHERE status = 'pending' AND due_bar = ?",
                               (index,)).fetchone()
        txs: list[tuple] = []
        if self.prev_bar is not None or due is not None:
            arrays = self.account_.bar_arrays(_bars([b for b in (self.prev_bar, bar) if b is not None]))
            held = self.account_.position
            res = self.account_.execute(arrays, float(due[1]) if due is not None else held)
            stopped_at_open = bool(res.stops["open"].traded[0] != 0)
            if due is not None:
                if float(res.order.traded[0]) != 0:
                    txs.append(("ORDER_FILL", due[0], res.order, ""))
                else:
                    why = "stopped out at the open" if stopped_at_open else "nothing to trade after the leverage cap"
                    txs.append(("ORDER_CANCEL", due[0], res.order, why))
            elif float(res.order.traded[0]) != 0:
                txs.append(("LEVERAGE_CUT", None, res.order, "the position exceeded the leverage cap"))
            for where, fill in res.stops.items():
                if float(fill.traded[0]) != 0:
                    txs.append(("STOP_OUT", None, fill, f"margin stop-out at the {where}"))
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            next_id = con.execute("SELECT COALESCE(MAX(id), 0) FROM transactions").fetchone()[0] + 1
            expired = con.execute("SELECT client_id FROM orders WHERE status = 'pending' AND due_bar < ? "
                                  "ORDER BY broker_id", (index,)).fetchall()
            rows = [("ORDER_CANCEL", cid, 0.0, 0.0, 0.0, "expired: it reached the broker after its bar")
                    for (cid,) in expired]
            rows += [(kind, cid, _f(fill.traded), _f(fill.price), _f(fill.cost), reason)
                     for kind, cid, fill, reason in txs]
            for i, (kind, client_id, units, price, cost, reason) in enumerate(rows):
                con.execute("INSERT INTO transactions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (next_id + i, kind, bar.time_ns, client_id, units, price, cost, reason))
                if client_id is not None:
                    con.execute("UPDATE orders SET status = ?, reason = ? WHERE client_id = ?",
                                ("filled" if kind == "ORDER_FILL" else "cancelled", reason, client_id))
            con.execute("UPDATE state SET bars_seen = ?, last_time_ns = ?, prev_bar = ?, accounts = ? WHERE id = 0",
                        (index + 1, bar.time_ns, _bar_json(bar), self._accounts_json()))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self.bars_seen, self.last_time_ns, self.prev_bar = index + 1, bar.time_ns, bar

    # ------------------------------------------------------------------ the REST-shaped calls
    def place_order(self, order: Order) -> OrderAck:
        if order.instrument != self.instrument:
            return OrderAck(order.client_id, "", "rejected", f"this account trades {self.instrument} only")
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            known = self._order(order.client_id)
            if known is not None:  # the idempotency key: never twice
                con.execute("COMMIT")
                return known
            broker_id = con.execute("SELECT COALESCE(MAX(broker_id), 0) + 1 FROM orders").fetchone()[0]
            due = self.bars_seen - 1 + self.cfg.latency_bars  # the bar it fills at, counted from the first seen
            con.execute("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', '')",
                        (order.client_id, broker_id, order.instrument, float(order.units), float(order.target_units),
                         int(order.time_ns), due))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return OrderAck(order.client_id, str(broker_id), "accepted")

    def _order(self, client_id: str) -> OrderAck | None:
        row = self.con.execute("SELECT broker_id FROM orders WHERE client_id = ?", (client_id,)).fetchone()
        return None if row is None else OrderAck(client_id, str(row[0]), "accepted")

    def get_order(self, client_id: str) -> OrderAck | None:
        return self._order(client_id)

    def position(self, instrument: str) -> Position:
        if instrument != self.instrument:
            return Position(instrument, 0.0, 0.0)
        return Position(instrument, self.account_.position, self.account_.entry_price)

    def account(self) -> AccountSummary:
        acc = self.account_
        unrealised = 0.0
        if self.prev_bar is not None and acc.position != 0:
            arrays = acc.bar_arrays(_bars([self.prev_bar]))
            unrealised = float(acc.unrealised_pnl(arrays)[0])
        return AccountSummary(acc.balance, acc.equity, unrealised, self.context.account)

    def transactions(self, since_id: int) -> list[Transaction]:
        rows = self.con.execute("SELECT id, kind, time_ns, client_id, units, price, cost, reason FROM transactions "
                                "WHERE id > ? ORDER BY id", (int(since_id),)).fetchall()
        return [Transaction(*row) for row in rows]

    def close(self) -> None:
        self.con.close()


def _f(x: torch.Tensor | None) -> float:
    return float(x[0]) if x is not None else 0.0


def _bar_json(bar: Bar) -> str:
    return json.dumps({"time_ns": bar.time_ns, "open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close,
                       "volume": bar.volume, "spread": None if bar.spread is None else list(bar.spread)})


def _spread(text: str) -> tuple[float, float, float, float] | None:
    s = json.loads(text)["spread"]
    return None if s is None else tuple(s)


def _bars(bars: list[Bar]) -> Bars:
    spread = None if bars[-1].spread is None else np.array([b.spread for b in bars], dtype=np.float64)
    return Bars(np.array([b.time_ns for b in bars], dtype=np.int64).view("datetime64[ns]"),
                np.array([b.open for b in bars]), np.array([b.high for b in bars]), np.array([b.low for b in bars]),
                np.array([b.close for b in bars]), np.array([b.volume for b in bars]), "<broker>",
                "bidask" if spread is not None else "mid", spread)


__all__ = ["AccountSummary", "Broker", "Order", "OrderAck", "Position", "SimBroker", "Transaction", "connect"]
