"""Paper trading: the command reproduces the backtest through the broker interface; SIGKILLed at random
moments (24 times) and restarted it ends with the same journal, broker account and summary as an
uninterrupted run; stdin lines give the same run as the file; with a REST-shaped broker that loses
requests or acknowledgements no order is lost or sent twice; bad input fails before any work."""

from __future__ import annotations

import dataclasses
import io
import json
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import engine.paper
from engine import loop
from engine.checkpoint import read_checkpoint
from envs.fx import market
from envs.fx.data import load_bars, save_bars
from envs.fx.live.broker import AccountSummary, Order, OrderAck, Position, Transaction
from envs.fx.live.journal import TABLES, Journal
from envs.fx.live.paper import PaperArgs, run_paper
from envs.fx.research.backtest import run_backtest
from envs.fx.research.spec import norm_from_spec
from tests.live_helpers import positions_changed, trained_checkpoint
from tests.paths import ROOT, child_env

FEED_BARS = 900


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A checkpoint, a 900-bar feed file (new bars for the agent: the first 216 are its warm-up) and one
    uninterrupted run of the command on it."""
    ckpt = trained_checkpoint("mlp")
    root = tmp_path_factory.mktemp("paper")
    feed = root / "EURUSD_feed.csv"
    save_bars(load_bars(ckpt.parent / "EURUSD_syn.csv").slice(0, FEED_BARS), feed)
    ref = root / "reference"
    res = subprocess.run([sys.executable, "-m", "engine.paper", "--ckpt", str(ckpt), "--feed", str(feed),
                          "--out-dir", str(ref)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return {"ckpt": ckpt, "feed": feed, "root": root, "ref": ref, "stdout": res.stdout}


def state_of(out: Path) -> dict:
    """What two runs over the same bars must agree on: every journal row but its wall time, the simulated
    broker's account, orders and transactions, and the summary."""
    journal = Journal(out / "journal.sqlite", {})
    rows = {table: journal.rows(table) for table in TABLES}
    journal.close()
    con = sqlite3.connect(out / "broker.sqlite")
    for table in ("state", "orders", "transactions"):
        rows[f"broker.{table}"] = con.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    con.close()
    rows["summary"] = json.loads((out / "summary.json").read_text())
    return rows


def test_paper_trading_with_the_simulated_broker_is_the_backtest_of_the_feed(setup: dict) -> None:
    ckpt, feed, ref = setup["ckpt"], setup["feed"], setup["ref"]
    assert setup["stdout"].strip().splitlines()[-1] == f"journal in {ref / 'journal.sqlite'}, summary in {ref / 'summary.json'}"
    raw = read_checkpoint(ckpt)
    cfg = loop.load_config(raw, ckpt)
    env = market.make_fx_eval_env(dataclasses.replace(cfg.fx, data=str(feed)), split="all",
                                  norm=norm_from_spec(raw["env_spec"]))
    _, policy = loop.load_policy(ckpt, env=env)
    traj = run_backtest(lambda obs, info: policy(obs), env)
    assert positions_changed(traj.position) >= 30
    con = sqlite3.connect(ref / "journal.sqlite")
    first = con.execute("SELECT MIN(seq) FROM decisions WHERE ready = 1").fetchone()[0]
    assert first == int(env.t_min)  # warm-up on the feed's first bars, trading from the backtest's first bar
    after = np.array(con.execute("SELECT equity, position FROM equity WHERE seq > ? ORDER BY seq", (first,)).fetchall())
    np.testing.assert_array_equal(after[:, 0], traj.equity)
    np.testing.assert_array_equal(after[:, 1] / cfg.fx.max_position, traj.position)
    summary = json.loads((ref / "summary.json").read_text())
    assert summary["equity"] == traj.equity[-1] and summary["position"] == traj.position[-1] * cfg.fx.max_position
    statuses = dict(con.execute("SELECT status, COUNT(*) FROM orders GROUP BY status").fetchall())
    # an order decided on the feed's last bar waits for a next bar: acknowledged, not filled, not in the backtest
    assert set(statuses) <= {"filled", "acknowledged"} and statuses.get("acknowledged", 0) <= 1
    assert summary["fills"] == statuses.get("filled", 0) == positions_changed(traj.position)
    assert summary["orders"] == con.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == sum(statuses.values())
    assert summary["bars"] == FEED_BARS and summary["decisions"] == FEED_BARS - first
    # every order was journalled before the broker saw it: its row's seq is the bar decided on, filled a bar later
    late = con.execute("SELECT COUNT(*) FROM orders o JOIN fills f ON f.client_id = o.client_id "
                       "WHERE f.seq != o.seq + 1").fetchone()[0]
    assert late == 0


def test_with_a_latency_of_two_bars_the_orders_queue_at_the_broker_and_the_run_is_still_the_backtest(
        setup: dict, tmp_path: Path) -> None:
    """--fx.latency-bars 2: each order fills two bars after its decision. (A large account, so the leverage cap
    never cuts an order: where it does, the env fills the cut order's target again on the next bar while a
    broker holds what it got, so the two part there; with the presets' latency of 1 they never do.)"""
    ckpt = trained_checkpoint("mlp", ("--fx.latency-bars", "2", "--fx.initial-equity", "100000"))
    summary = run_paper(PaperArgs(ckpt=ckpt, feed=str(setup["feed"]), out_dir=tmp_path / "l2", progress_every=0))
    raw = read_checkpoint(ckpt)
    cfg = loop.load_config(raw, ckpt)
    env = market.make_fx_eval_env(dataclasses.replace(cfg.fx, data=str(setup["feed"])), split="all",
                                  norm=norm_from_spec(raw["env_spec"]))
    _, policy = loop.load_policy(ckpt, env=env)
    traj = run_backtest(lambda obs, info: policy(obs), env)
    con = sqlite3.connect(tmp_path / "l2" / "journal.sqlite")
    after = np.array(con.execute("SELECT equity, position FROM equity WHERE seq > ? ORDER BY seq",
                                 (int(env.t_min),)).fetchall())
    np.testing.assert_array_equal(after[:, 0], traj.equity)
    np.testing.assert_array_equal(after[:, 1] / cfg.fx.max_position, traj.position)
    assert positions_changed(traj.position) >= 30 and summary["equity"] == traj.equity[-1]
    late = con.execute("SELECT COUNT(*) FROM orders o JOIN fills f ON f.client_id = o.client_id "
                       "WHERE f.seq != o.seq + 2").fetchone()[0]
    assert late == 0


def _journal_bars(path: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            return int(con.execute("SELECT COUNT(*) FROM bars").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_killed_at_random_moments_and_restarted_it_ends_exactly_as_an_uninterrupted_run(setup: dict) -> None:
    """24 SIGKILLs: after a random number of new bars (0-25) plus a random fraction of a bar's work, or at a
    random time from the start (while loading). The processes are forked from a server that imported
    FxAI once (a fresh interpreter costs seconds of imports); each runs the command's main()."""
    out = setup["root"] / "killed"
    argv = ["--ckpt", str(setup["ckpt"]), "--feed", str(setup["feed"]), "--out-dir", str(out), "--progress-every", "0"]
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["configs", "engine.paper"])
    rng = random.Random(7)
    kills, progress = 0, []
    while True:
        before = _journal_bars(out / "journal.sqlite")
        proc = ctx.Process(target=engine.paper.main, args=(argv,))
        proc.start()
        if kills >= 24:
            proc.join(timeout=300)
            assert proc.exitcode == 0
            break
        if rng.random() < 0.2:  # somewhere in start-up and recovery
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            want = rng.randint(0, 25)
            deadline = time.monotonic() + 60
            while proc.is_alive() and _journal_bars(out / "journal.sqlite") - before < want and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.004))
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
            assert proc.exitcode == -signal.SIGKILL
            kills += 1
            progress.append(_journal_bars(out / "journal.sqlite") - before)
        else:
            proc.join()
            assert proc.exitcode == 0
            break
    assert kills == 24 and sum(progress) > 100  # the kills landed while it worked through the feed
    killed, reference = state_of(out), state_of(setup["ref"])
    for key in reference:
        assert killed[key] == reference[key], key


def test_lines_on_stdin_give_the_same_run_as_the_file(setup: dict, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The first 500 bars as lines on stdin journal exactly the reference run's first 500 steps (a line is parsed
    and checked on its own, ~3 ms)."""
    lines = setup["feed"].read_text().splitlines()
    out = tmp_path / "stdin"
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines[:501]) + "\n"))
    # stdin has no file name to say which side its prices are: these are mid prices, as the file's name says
    run_paper(PaperArgs(ckpt=setup["ckpt"], feed="-", out_dir=out, progress_every=0))
    ours, ref = state_of(out), state_of(setup["ref"])
    for table in ("bars", "decisions", "equity", "fills"):
        key = 1 if table == "fills" else 0  # fills are keyed by the broker's id; their bar is the second column
        assert ours[table] == [row for row in ref[table] if row[key] < 500], table
    # orders (client id, bar, time, instrument, units, target) as the reference's; the last may still wait for its fill
    assert [o[:6] for o in ours["orders"]] == [o[:6] for o in ref["orders"] if o[1] < 500]
    assert all(o[6] == "filled" for o in ours["orders"] if o[1] < 499)
    assert ours["broker.transactions"] == [row for row in ref["broker.transactions"] if row[0] <= len(ours["fills"])]
    assert ours["summary"]["bars"] == 500 and ours["summary"]["orders"] == len(ours["orders"])
    # a reconnecting live feed sends bars again: journalled bars are skipped (and checked), nothing changes
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines[:1] + lines[301:501]) + "\n"))
    run_paper(PaperArgs(ckpt=setup["ckpt"], feed="-", out_dir=out, progress_every=0))
    assert state_of(out) == ours


class FlakyRestBroker:
    """A REST-shaped broker in memory: market orders fill at once at the last close +- half a pip (the cost
    is paid from the balance; P&L is marked from the average price); it deduplicates by client id. ``lose_request``: client ids whose first request never arrives (a timeout
    before the broker got it); ``lose_ack``: ids whose first request is executed but whose answer is lost."""

    def __init__(self, lose_request: set[str] = frozenset(), lose_ack: set[str] = frozenset()) -> None:
        self.lose_request, self.lose_ack = set(lose_request), set(lose_ack)
        self.requests: list[str] = []
        self.executed: dict[str, OrderAck] = {}
        self.txs: list[Transaction] = []
        self.units, self.avg, self.balance = 0.0, 0.0, 10_000.0
        self.close, self.time_ns = 0.0, 0

    def on_bar(self, bar) -> None:
        self.close, self.time_ns = bar.close, bar.time_ns

    def place_order(self, order: Order) -> OrderAck:
        self.requests.append(order.client_id)
        if order.client_id in self.lose_request:
            self.lose_request.discard(order.client_id)
            raise ConnectionError(f"timeout sending {order.client_id}")
        if order.client_id not in self.executed:
            price = self.close + (0.00005 if order.units > 0 else -0.00005)
            new = self.units + order.units
            self.balance -= abs(order.units) * 0.00005
            if self.units * new <= 0:
                self.avg = price if new != 0 else 0.0
            elif abs(new) > abs(self.units):
                self.avg = (self.units * self.avg + order.units * price) / new
            self.units = new
            self.executed[order.client_id] = OrderAck(order.client_id, f"B{len(self.executed) + 1}", "accepted")
            self.txs.append(Transaction(len(self.txs) + 1, "ORDER_FILL", self.time_ns, order.client_id, order.units,
                                        price, abs(order.units) * 0.00005))
        if order.client_id in self.lose_ack:
            self.lose_ack.discard(order.client_id)
            raise ConnectionError(f"no answer for {order.client_id}")
        return self.executed[order.client_id]

    def get_order(self, client_id: str) -> OrderAck | None:
        return self.executed.get(client_id)

    def position(self, instrument: str) -> Position:
        return Position(instrument, self.units, self.avg)

    def account(self) -> AccountSummary:
        unrealised = self.units * (self.close - self.avg)
        return AccountSummary(self.balance, self.balance + unrealised, unrealised, "USD")

    def transactions(self, since_id: int) -> list[Transaction]:
        return [tx for tx in self.txs if tx.id > since_id]


def test_a_rest_broker_losing_requests_and_answers_gets_every_order_exactly_once(setup: dict, tmp_path: Path) -> None:
    args = lambda out: PaperArgs(ckpt=setup["ckpt"], feed=str(setup["feed"]), out_dir=out, progress_every=0)  # noqa: E731
    clean = FlakyRestBroker()
    run_paper(args(tmp_path / "clean"), broker=clean)
    ids = list(clean.executed)
    assert len(ids) >= 30 and clean.requests == ids  # one request per order when nothing goes wrong
    lost_request, lost_ack = set(ids[3:12:3]), set(ids[5:14:4])
    flaky = FlakyRestBroker(lose_request=lost_request, lose_ack=lost_ack)
    crashes = 0
    while True:
        try:
            run_paper(args(tmp_path / "flaky"), broker=flaky)  # the process dies on the error; run it again
            break
        except ConnectionError:
            crashes += 1
    assert crashes == len(lost_request) + len(lost_ack)
    assert list(flaky.executed) == ids  # every order executed, once, in order
    for cid in ids:  # resent only where the request itself was lost
        assert flaky.requests.count(cid) == (2 if cid in lost_request else 1)
    a, b = Journal(tmp_path / "clean" / "journal.sqlite", {}), Journal(tmp_path / "flaky" / "journal.sqlite", {})
    for table in TABLES:
        assert a.rows(table) == b.rows(table), table
    assert json.loads((tmp_path / "clean" / "summary.json").read_text()) == \
        json.loads((tmp_path / "flaky" / "summary.json").read_text())


def test_bad_input_fails_in_one_line_before_any_work(setup: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt, feed = setup["ckpt"], setup["feed"]
    broken = tmp_path / "EURUSD_broken.csv"
    text = feed.read_text().splitlines()
    cells = text[200].split(",")
    cells[2] = str(float(cells[4]) * 0.9)  # high below the close
    text[200] = ",".join(cells)
    broken.write_text("\n".join(text) + "\n")

    def fails(*argv: str) -> str:
        with pytest.raises(SystemExit) as exit_:
            engine.paper.main(list(argv))
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert exit_.value.code == 2 and len(err) == 1, err
        return err[0]

    out = tmp_path / "out"
    assert "EURUSD_broken.csv" in (e := fails("--ckpt", str(ckpt), "--feed", str(broken), "--out-dir", str(out))) \
        and "row 200" in e and "'high'" in e
    assert "--feed" in fails("--ckpt", str(ckpt), "--feed", str(tmp_path / "none.csv"), "--out-dir", str(out))
    assert "--ckpt" in fails("--ckpt", str(tmp_path / "none.ckpt"), "--feed", str(feed), "--out-dir", str(out))
    assert "--progress-every" in fails("--ckpt", str(ckpt), "--feed", str(feed), "--out-dir", str(out),
                                       "--progress-every", "-1")
    assert "--threads: must be an integer in [1, " in fails("--ckpt", str(ckpt), "--feed", str(feed), "--out-dir",
                                                            str(out), "--threads", "100000")
    assert not out.exists()  # nothing created by the refused runs
    # the reference journal belongs to this checkpoint and feed: another feed or agent is refused, nothing changes
    before = state_of(setup["ref"])
    other = tmp_path / "EURUSD_other.csv"
    bars = load_bars(feed)
    save_bars(bars.with_prices(bars.open * 1.01, bars.high * 1.01, bars.low * 1.01, bars.close * 1.01, "mid"), other)
    assert "belongs to another feed" in fails("--ckpt", str(ckpt), "--feed", str(other), "--out-dir", str(setup["ref"]))
    other_agent = trained_checkpoint("transformer")
    assert "is the journal of agent_sha256" in fails("--ckpt", str(other_agent), "--feed", str(feed), "--out-dir",
                                                     str(setup["ref"]))
    assert state_of(setup["ref"]) == before
    lost = tmp_path / "lost-broker"  # a journal whose simulated broker account was deleted cannot go on
    shutil.copytree(setup["ref"], lost)
    (lost / "broker.sqlite").unlink()
    assert "the simulated broker's account is gone" in fails("--ckpt", str(ckpt), "--feed", str(feed), "--out-dir",
                                                             str(lost))


def test_a_second_paper_trader_on_a_live_out_dir_is_refused_with_one_line(setup: dict, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    """Two traders on one journal would both send orders: the first one (here waiting on its stdin feed) holds
    the directory's lock, the second gets one line naming it and exit 3; the first then finishes untouched."""
    out = tmp_path / "live"
    args = ["--ckpt", str(setup["ckpt"]), "--feed", "-", "--out-dir", str(out), "--progress-every", "0"]
    first = subprocess.Popen([sys.executable, "-m", "engine.paper", *args], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=child_env())
    try:
        t0 = time.monotonic()
        while not (out / ".fxai.lock").exists():
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.monotonic() - t0 < 240, "the first paper trader did not start"
            time.sleep(0.1)
        with pytest.raises(SystemExit) as exit_:
            engine.paper.main(args)
        err = capsys.readouterr().err
        (line,) = [e for e in err.splitlines() if e.startswith("error:")]
        assert exit_.value.code == 3 and f"in use by another run (pid {first.pid}" in line and "Traceback" not in err
        lines = setup["feed"].read_text().splitlines()
        _, first_err = first.communicate(input="\n".join(lines[:301]) + "\n", timeout=240)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, first_err[-2000:]
    assert json.loads((out / "summary.json").read_text())["bars"] == 300
    assert not (out / ".fxai.lock").exists() and list(out.glob("*.tmp")) == []
