"""The write-ahead journal of paper and live trading: SQLite in WAL mode, one transaction per step.

Every bar is journalled before the broker or the agent sees it; the decision on it, the broker's
fills and the account's equity, and the order it leads to are journalled together before the
order is sent; the broker's acknowledgement is journalled after. A process killed at any moment
therefore leaves one of these states, each of which the next start completes
(:meth:`envs.fx.live.paper.PaperTrader.recover`): a bar without a decision (executed again: the
broker ignores a bar it has seen, its fills are read again by transaction id), or an order
without an acknowledgement (looked up at the broker by its client id and sent only if it never
arrived). Nothing is lost and nothing is sent twice.

Tables: ``bars`` (every bar, ``kind`` history or feed), ``decisions`` (one per feed bar, with the
agent's counters after it), ``orders`` (client id, units, target, status: journalled ->
acknowledged -> filled / cancelled), ``fills`` (the broker's transactions, by its id), ``equity``
(balance, equity and position after each feed bar) and ``meta`` (what the journal belongs to).
Columns named ``wall_time`` hold when a row was written (seconds since the epoch); nothing else
depends on the wall clock.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from envs.fx.data import Bars
from envs.fx.live.agent import Bar, Decision
from envs.fx.live.broker import AccountSummary, Order, OrderAck, Position, Transaction, connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bars (seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL UNIQUE, open REAL NOT NULL,
    high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL, spread TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('history', 'feed')), wall_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, ready INTEGER NOT NULL,
    action REAL, target REAL NOT NULL, target_units REAL NOT NULL, position REAL NOT NULL,
    average_price REAL NOT NULL, time_in_position REAL NOT NULL, last_target REAL NOT NULL,
    trading INTEGER NOT NULL, params TEXT NOT NULL, wall_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS orders (client_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, time_ns INTEGER NOT NULL,
    instrument TEXT NOT NULL, units REAL NOT NULL, target_units REAL NOT NULL, status TEXT NOT NULL,
    broker_id TEXT, reason TEXT NOT NULL DEFAULT '', wall_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS fills (transaction_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    time_ns INTEGER NOT NULL, client_id TEXT, units REAL NOT NULL, price REAL NOT NULL, cost REAL NOT NULL,
    reason TEXT NOT NULL, wall_time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS equity (seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, balance REAL NOT NULL,
    equity REAL NOT NULL, unrealised_pnl REAL NOT NULL, position REAL NOT NULL, average_price REAL NOT NULL,
    wall_time REAL NOT NULL);
"""
TABLES = ("bars", "decisions", "orders", "fills", "equity")


@dataclass(frozen=True)
class AgentCounters:
    """What the streaming agent carries from bar to bar besides its history (see ``StreamingAgent.restore``)."""

    position: float = 0.0
    time_in_position: float = 0.0
    last_target: float = 0.0
    trading: bool = False
    decisions: int = 0


class Journal:
    """The journal file ``path`` (created with its tables on first use). ``meta``: what it belongs to; a
    journal written for other values refuses to open (ValueError naming the key)."""

    def __init__(self, path: str | os.PathLike, meta: dict[str, str]) -> None:
        self.path = str(path)
        self.con = connect(path)
        self.con.executescript(SCHEMA)
        known = dict(self.con.execute("SELECT key, value FROM meta").fetchall())
        for key, value in meta.items():
            if key in known and known[key] != value:
                raise ValueError(f"{path} is the journal of {key} {known[key]}, not {value}; use another --out-dir")
        self._write([("INSERT OR IGNORE INTO meta VALUES (?, ?)", (k, v)) for k, v in meta.items()])

    # ------------------------------------------------------------------ writes (one transaction each)
    def _write(self, statements: Iterable[tuple[str, tuple]]) -> None:
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                con.execute(sql, params)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def add_bars(self, bars: Iterable[tuple[int, Bar, str]]) -> None:
        """Journal bars ``(seq, bar, kind)`` (before anything acts on them)."""
        now = time.time()
        self._write([("INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (seq, b.time_ns, b.open, b.high, b.low, b.close, b.volume,
                       None if b.spread is None else json.dumps(list(b.spread)), kind, now))
                     for seq, b, kind in bars])

    def record_step(self, seq: int, bar: Bar, fills: list[Transaction], position: Position, account: AccountSummary,
                    decision: Decision, counters: AgentCounters, order: Order | None) -> None:
        """One feed bar's outcome, in one transaction: the broker's new transactions (and the statuses they
        give journalled orders), the equity after the bar, the decision with the agent's counters, and
        the order to send (status ``journalled``)."""
        now = time.time()
        rows: list[tuple[str, tuple]] = []
        for tx in fills:
            rows.append(("INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (tx.id, seq, tx.kind, tx.time_ns, tx.client_id, tx.units, tx.price, tx.cost, tx.reason, now)))
            if tx.client_id is not None:
                status = "filled" if tx.kind == "ORDER_FILL" else "cancelled"
                rows.append(("UPDATE orders SET status = ?, reason = ? WHERE client_id = ?",
                             (status, tx.reason, tx.client_id)))
        rows.append(("INSERT INTO equity VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (seq, bar.time_ns, account.balance, account.equity, account.unrealised_pnl, position.units,
                      position.average_price, now)))
        rows.append(("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (seq, bar.time_ns, int(decision.ready), decision.action, decision.target, decision.target_units,
                      position.units, position.average_price, counters.time_in_position, counters.last_target,
                      int(counters.trading), json.dumps(list(decision.params)), now)))
        if order is not None:
            rows.append(("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, 'journalled', NULL, '', ?)",
                         (order.client_id, seq, order.time_ns, order.instrument, order.units, order.target_units, now)))
        self._write(rows)

    def acknowledge(self, ack: OrderAck) -> None:
        """The broker's answer to a journalled order."""
        status = "acknowledged" if ack.status == "accepted" else "cancelled"
        self._write([("UPDATE orders SET status = ?, broker_id = ?, reason = ? WHERE client_id = ? AND status = "
                      "'journalled'", (status, ack.broker_id, ack.reason, ack.client_id))])

    # ------------------------------------------------------------------ reads
    def last_bar(self) -> tuple[int, int] | None:
        """(seq, time_ns) of the newest bar, or None for an empty journal."""
        return self.con.execute("SELECT seq, time_ns FROM bars ORDER BY seq DESC LIMIT 1").fetchone()

    def bar_at(self, time_ns: int) -> Bar | None:
        row = self.con.execute("SELECT time_ns, open, high, low, close, volume, spread FROM bars WHERE time_ns = ?",
                               (int(time_ns),)).fetchone()
        return None if row is None else _bar(row)

    def seen_bars(self, keep: int) -> Bars | None:
        """The newest ``keep`` bars the agent has seen (history bars and decided feed bars), oldest first."""
        rows = self.con.execute(
            "SELECT time_ns, open, high, low, close, volume, spread FROM bars WHERE kind = 'history' OR seq IN "
            "(SELECT seq FROM decisions) ORDER BY seq DESC LIMIT ?", (int(keep),)).fetchall()[::-1]
        if not rows:
            return None
        spread = None if rows[-1][6] is None else np.array([json.loads(r[6]) for r in rows], dtype=np.float64)
        a = np.array([r[:6] for r in rows], dtype=np.float64)
        return Bars(np.array([r[0] for r in rows], dtype=np.int64).view("datetime64[ns]"), a[:, 1], a[:, 2], a[:, 3],
                    a[:, 4], a[:, 5], "<journal>", "bidask" if spread is not None else "mid", spread)

    def undecided(self) -> list[tuple[int, Bar]]:
        """Feed bars journalled without a decision (the step a kill interrupted), oldest first."""
        rows = self.con.execute(
            "SELECT seq, time_ns, open, high, low, close, volume, spread FROM bars WHERE kind = 'feed' AND seq NOT IN "
            "(SELECT seq FROM decisions) ORDER BY seq").fetchall()
        return [(r[0], _bar(r[1:])) for r in rows]

    def counters(self) -> AgentCounters:
        """The agent's counters after the last decision."""
        row = self.con.execute("SELECT position, time_in_position, last_target, trading FROM decisions "
                               "ORDER BY seq DESC LIMIT 1").fetchone()
        n = self.con.execute("SELECT COUNT(*) FROM decisions WHERE ready = 1").fetchone()[0]
        return AgentCounters() if row is None else AgentCounters(row[0], row[1], row[2], bool(row[3]), int(n))

    def orders(self, statuses: tuple[str, ...]) -> list[Order]:
        marks = ", ".join("?" * len(statuses))
        rows = self.con.execute(f"SELECT client_id, instrument, units, target_units, time_ns FROM orders "
                                f"WHERE status IN ({marks}) ORDER BY seq", statuses).fetchall()
        return [Order(*row) for row in rows]

    def last_transaction_id(self) -> int:
        return int(self.con.execute("SELECT COALESCE(MAX(transaction_id), 0) FROM fills").fetchone()[0])

    def count(self, table: str, where: str = "1") -> int:
        if table not in TABLES:
            raise ValueError(f"no table {table!r}")
        return int(self.con.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}").fetchone()[0])

    def rows(self, table: str) -> list[tuple]:
        """Every row of ``table`` without its ``wall_time`` (what two runs over the same bars must agree on)."""
        if table not in TABLES:
            raise ValueError(f"no table {table!r}")
        cols = [r[1] for r in self.con.execute(f"PRAGMA table_info({table})").fetchall() if r[1] != "wall_time"]
        return self.con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY 1").fetchall()

    def last_equity(self) -> tuple | None:
        return self.con.execute("SELECT time_ns, balance, equity, unrealised_pnl, position, average_price FROM equity "
                                "ORDER BY seq DESC LIMIT 1").fetchone()

    def close(self) -> None:
        self.con.close()


def _bar(row: tuple) -> Bar:
    spread = None if row[6] is None else tuple(json.loads(row[6]))
    return Bar(int(row[0]), row[1], row[2], row[3], row[4], row[5], spread)


__all__ = ["AgentCounters", "Journal", "SCHEMA", "TABLES"]
