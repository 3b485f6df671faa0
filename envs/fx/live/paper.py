"""Paper trading: a bar stream through the agent and a broker, journalled so that a kill loses nothing.

    python -m engine.paper --ckpt runs/eurusd/checkpoints/last.ckpt --feed EURUSD_live.csv --out-dir paper/
    tail -f bars.csv | python -m engine.paper --ckpt agent.onnx --feed - --out-dir paper/

For each closed bar of the feed (:mod:`envs.fx.live.feed`): the bar is journalled; the broker sees
it (the simulated one fills the order due at its open); its new transactions, the position and
the equity are read; the agent decides on the bar's close with that account
(:class:`~envs.fx.live.agent.StreamingAgent`, external account); the fills, the equity, the
decision and the order (when the target differs from the position) are journalled in one
transaction; then the order is sent and its acknowledgement journalled
(:mod:`envs.fx.live.journal`). ``OUT/summary.json`` holds the final position, equity and order
count. Killing the process at any moment and running the same command again resumes: the journal
says what was done, the broker is asked about orders it may not have acknowledged (by client id),
feed bars already journalled are skipped (and must be the same bars). With the built-in simulated
broker (:class:`~envs.fx.live.broker.SimBroker`) and a feed starting at the file's first bar, the
positions and equity are those of ``engine.backtest --data FILE`` (latency 1, the presets').
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from engine.files import nearest_existing, remove_stale_temps, write_json
from engine.lock import RunLock
from engine.ranges import check_numbers
from envs.fx.live.agent import AccountState, Agent, Bar, StreamingAgent
from envs.fx.live.broker import Broker, Order, SimBroker
from envs.fx.live.feed import open_feed, read_file
from envs.fx.live.journal import AgentCounters, Journal

JOURNAL = "journal.sqlite"
BROKER = "broker.sqlite"
SUMMARY = "summary.json"


@dataclass
class PaperArgs:
    """Paper-trade a trained FX agent on a bar feed with a simulated broker, crash-safe (rerun to resume)."""

    RANGES: ClassVar[dict[str, str]] = {"progress_every": "[0, 1e9]", "threads": "[1, {cpus}]"}
    """Allowed values (:mod:`engine.ranges`)."""

    ckpt: Path
    """Checkpoint written by training, or an artifact of ``python -m engine.export`` (.onnx/.pt2)."""
    feed: str
    """CSV file of closed bars (a header line, then one bar per line, in any layout ``--data`` reads), or ``-``:
    the same lines on stdin as a live feed sends them."""
    out_dir: Path
    """Where journal.sqlite (every bar, decision, order, fill and equity row), broker.sqlite (the simulated
    broker's account) and summary.json go. Running again with the same directory resumes."""
    history: Path | None = None
    """Bars before the feed that fill the observation windows (warm-up only: no decisions on them). Without it
    the first bars of the feed are the warm-up."""
    price_side: Literal["auto", "mid", "bid", "ask"] = "auto"
    """What the feed's prices are: auto = bid/ask columns if present, else the side a file name says
    (``_BID``/``_ASK``), else mid. One-sided prices become mid by half of the checkpoint's spread, as in training."""
    timezone: str | None = None
    """Time zone of naive feed timestamps (default: the checkpoint's ``--fx.timezone``)."""
    progress_every: int = 1000
    """Print a progress line to stderr every this many feed bars (0: never)."""
    threads: int = 1
    """torch threads for the policy (1 is fastest for one decision at a time)."""


class PaperTrader:
    """The trading loop over one journal, one broker and one streaming agent (an external account: the
    broker's position is the truth)."""

    def __init__(self, agent: Agent, journal: Journal, broker: Broker) -> None:
        self.agent, self.journal, self.broker = agent, journal, broker
        self.instrument = agent.context.pair.name
        self.stream: StreamingAgent = agent.stream(account="external")
        self.next_seq = 0

    def recover(self) -> dict[str, int]:
        """Complete whatever a kill interrupted: acknowledge (or send, exactly once) journalled orders,
        rebuild the agent from the bars it saw and its counters, decide the bar it had not decided."""
        sent = acknowledged = 0
        for order in self.journal.orders(("journalled",)):
            ack = self.broker.get_order(order.client_id)
            if ack is None:
                ack = self.broker.place_order(order)
                sent += 1
            else:
                acknowledged += 1
            self.journal.acknowledge(ack)
        last = self.journal.last_bar()
        self.next_seq = 0 if last is None else last[0] + 1
        seen = self.journal.seen_bars(self.agent.warmup_bars)
        if seen is not None:
            self.stream.restore(seen, **dataclasses.asdict(self.journal.counters()))
        undecided = self.journal.undecided()
        for seq, bar in undecided:
            self._step(seq, bar)
        return {"orders_sent": sent, "orders_found": acknowledged, "bars_redone": len(undecided)}

    def add_history(self, bars: list[Bar]) -> None:
        """Warm-up bars: journalled (one transaction), then given to the agent as history."""
        if not bars:
            return
        self.journal.add_bars((self.next_seq + i, bar, "history") for i, bar in enumerate(bars))
        self.next_seq += len(bars)
        self.stream.extend_history(bars)

    def process(self, bar: Bar) -> None:
        """One new closed bar of the feed."""
        seq = self.next_seq
        bar.check()
        self.journal.add_bars([(seq, bar, "feed")])  # written ahead: a kill from here on redoes the step
        self.next_seq += 1
        self._step(seq, bar)

    def _step(self, seq: int, bar: Bar) -> None:
        broker, journal = self.broker, self.journal
        broker.on_bar(bar)
        fills = broker.transactions(journal.last_transaction_id())
        position = broker.position(self.instrument)
        account = broker.account()
        decision = self.stream.on_bar(bar, AccountState(position.units, position.average_price))
        done = {tx.client_id for tx in fills if tx.client_id is not None}
        open_orders = [o for o in journal.orders(("journalled", "acknowledged")) if o.client_id not in done]
        expected = open_orders[-1].target_units if open_orders else position.units
        order = None
        if decision.ready and decision.target_units != expected:
            order = Order(f"fxai-{seq}-{bar.time_ns}", self.instrument, decision.target_units - expected,
                          decision.target_units, bar.time_ns)
        s = self.stream
        counters = AgentCounters(s.position, s.time_in_position, s.last_target, s.trading, s.decisions)
        journal.record_step(seq, bar, fills, position, account, decision, counters, order)
        if order is not None:
            journal.acknowledge(broker.place_order(order))

    def summary(self) -> dict[str, Any]:
        j = self.journal
        last = j.last_equity()
        position = self.broker.position(self.instrument)
        account = self.broker.account()
        first = j.con.execute("SELECT MIN(time_ns) FROM decisions WHERE ready = 1").fetchone()[0]
        return {
            "position": position.units,
            "position_fraction": position.units / self.agent.max_position,
            "average_price": position.average_price,
            "equity": account.equity,
            "balance": account.balance,
            "currency": account.currency,
            "orders": j.count("orders"),
            "fills": j.count("fills", "kind = 'ORDER_FILL'"),
            "stop_outs": j.count("fills", "kind = 'STOP_OUT'"),
            "bars": j.count("decisions"),
            "decisions": j.count("decisions", "ready = 1"),
            "first_decision": _iso(first),
            "last_bar": _iso(None if last is None else last[0]),
            "instrument": self.instrument,
            "agent": self.agent.source,
        }


def _iso(ns: int | None) -> str | None:
    return None if ns is None else str(np.datetime64(int(ns), "ns").astype("datetime64[s]")) + "Z"


def _file_digest(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_args(args: PaperArgs) -> None:
    """Every flag, before any work (ValueError/FileNotFoundError naming it)."""
    check_numbers(args)
    if not Path(args.ckpt).is_file():
        raise FileNotFoundError(f"--ckpt: {args.ckpt} does not exist")
    if args.feed != "-" and not Path(args.feed).is_file():
        raise FileNotFoundError(f"--feed: {args.feed} does not exist (give a bar file, or - for stdin)")
    if args.history is not None and not Path(args.history).is_file():
        raise FileNotFoundError(f"--history: {args.history} does not exist")
    if args.timezone is not None:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(args.timezone)
        except Exception:  # noqa: BLE001  (zoneinfo raises several types)
            raise ValueError(f"--timezone: {args.timezone!r} is not an IANA time zone (e.g. UTC, EET)") from None
    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out-dir: {out} is a file")
    probe = nearest_existing(out)
    if not probe.is_dir():
        raise ValueError(f"--out-dir: {out} is inside {probe}, a file")
    if not os.access(probe, os.W_OK):
        raise PermissionError(f"--out-dir: {probe} is not writable")


def _same(a: Bar, b: Bar) -> bool:
    return (a.time_ns, a.open, a.high, a.low, a.close, a.volume, a.spread) == \
        (b.time_ns, b.open, b.high, b.low, b.close, b.volume, b.spread)


def run_paper(args: PaperArgs, broker: Broker | None = None) -> dict[str, Any]:
    """``python -m engine.paper``: check everything, recover the journal, trade the feed, write the summary.
    ``broker``: an adapter implementing :class:`~envs.fx.live.broker.Broker` (default: the simulated one in
    ``OUT/broker.sqlite``)."""
    _check_args(args)
    torch.set_num_threads(args.threads)
    agent = Agent.load(args.ckpt)
    tz = args.timezone or agent.fx.timezone
    pip = agent.context.pip
    feed: Iterable[Bar] = open_feed(args.feed, agent.fx, args.price_side, pip, tz)  # a file is read and checked now
    history = read_file(str(args.history), agent.fx, args.price_side, pip, tz) if args.history is not None else []
    if history and isinstance(feed, list) and feed and feed[0].time_ns <= history[-1].time_ns:
        raise ValueError(f"--history {args.history} ends at {_iso(history[-1].time_ns)}, not before the feed's first "
                         f"bar {_iso(feed[0].time_ns)}")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out):  # one paper trader per --out-dir: a second one is refused (exit 3)
        remove_stale_temps(out)  # a summary.json temp file of a killed trader
        journal_path = out / JOURNAL
        meta = {"agent_sha256": _file_digest(Path(args.ckpt)), "instrument": agent.context.pair.name,
                "broker": "sim" if broker is None else type(broker).__name__}
        if isinstance(feed, list) and journal_path.is_file():  # a replayed file must be the journalled bars
            probe = Journal(journal_path, meta)
            try:
                for bar in feed:
                    known = probe.bar_at(bar.time_ns)
                    if known is None:
                        last = probe.last_bar()
                        if last is not None and bar.time_ns <= last[1]:
                            raise ValueError(f"--feed {args.feed}: bar {_iso(bar.time_ns)} is older than the journal's "
                                             f"last bar and not in it: {out} belongs to another feed")
                        break
                    if not _same(known, bar):
                        raise ValueError(f"--feed {args.feed}: bar {_iso(bar.time_ns)} differs from the journalled one "
                                         f"({known} vs {bar}): {out} belongs to another feed")
            finally:
                probe.close()
        journal = Journal(journal_path, meta)
        own_broker = broker is None
        if broker is None:
            broker = SimBroker(out / BROKER, agent.fx, agent.context, agent.bar_ns)
            decided = journal.count("decisions")
            if decided and broker.last_time_ns is None:
                journal.close()
                broker.close()
                raise ValueError(f"--out-dir {out}: the journal has {decided} decided bars but {out / BROKER} is new: "
                                 f"the simulated broker's account is gone; use another --out-dir")
        trader = PaperTrader(agent, journal, broker)
        try:
            recovered = trader.recover()
            if any(recovered.values()):
                print(f"paper: resumed from {journal_path}: {recovered['bars_redone']} bar(s) redone, "
                      f"{recovered['orders_found']} order(s) found at the broker, {recovered['orders_sent']} sent",
                      file=sys.stderr, flush=True)
            if history and trader.next_seq == 0:
                trader.add_history(history)
            t0, n = time.perf_counter(), 0
            for bar in feed:
                last = journal.last_bar()
                if last is not None and bar.time_ns <= last[1]:
                    known = journal.bar_at(bar.time_ns)
                    if known is None or not _same(known, bar):
                        raise ValueError(f"--feed {args.feed}: bar {_iso(bar.time_ns)} is not the journalled bar of "
                                         f"that time: {out} belongs to another feed")
                    continue
                trader.process(bar)
                n += 1
                if args.progress_every and n % args.progress_every == 0:
                    s = trader.summary()
                    print(f"paper: {n} bars ({s['last_bar']}), position {s['position_fraction']:+.2f}, equity "
                          f"{s['equity']:,.2f} {s['currency']}, {s['orders']} orders, "
                          f"{1e3 * (time.perf_counter() - t0) / n:.1f} ms/bar", file=sys.stderr, flush=True)
            summary = trader.summary()
            write_json(out / SUMMARY, summary, sort_keys=True)
        finally:
            journal.close()
            if own_broker:
                broker.close()  # type: ignore[union-attr]
        print(f"position {summary['position']:+,.0f} units, equity {summary['equity']:,.2f} {summary['currency']}, "
              f"{summary['orders']} orders over {summary['bars']} bars")
        print(f"journal in {journal_path}, summary in {out / SUMMARY}")
        return summary


__all__ = ["PaperArgs", "PaperTrader", "run_paper"]
