"""Bar feeds for paper and live trading: a bar file read at once, or CSV lines arriving on stdin.

Both take the layouts :func:`envs.fx.data.load_bars` reads (a header line first: ISO, Dukascopy or
MetaTrader times, bid/ask or one-sided price columns, tick volume) and give mid-price
:class:`~envs.fx.live.agent.Bar` objects as the env sees them: bid/ask columns become mid prices
with each bar's spread; one-sided prices (a ``_BID``/``_ASK`` file name, or ``price_side``) become
mid by half of ``--fx.spread-pips``, as :mod:`envs.fx.market` converts training files. A file is
read and checked whole before any work; a bad stdin line stops the run naming its line number.
"""

from __future__ import annotations

import dataclasses
import io
import sys
from collections.abc import Iterator
from typing import TextIO

import pandas as pd

from envs.fx.config import FxEnvConfig
from envs.fx.data import Bars, DataError, frame_to_bars, load_bars
from envs.fx.live.agent import Bar
from envs.fx.market import _to_mid


def to_mid(bars: Bars, fx: FxEnvConfig, source: str | None, price_side: str, pip: float) -> Bars:
    """Mid-price bars, converted as a training file is (``source``: the file name, which may say the side)."""
    cfg = dataclasses.replace(fx, data=source, price_side=price_side)
    mid, _ = _to_mid(bars, cfg, pip)
    return mid


def read_file(path: str, fx: FxEnvConfig, price_side: str, pip: float, timezone: str) -> list[Bar]:
    """Every bar of a file, checked (errors name the file, row and column) and converted to mid prices."""
    return Bar.rows(to_mid(load_bars(path, timezone=timezone), fx, path, price_side, pip))


def read_lines(stream: TextIO, fx: FxEnvConfig, price_side: str, pip: float, timezone: str,
               name: str = "<stdin>") -> Iterator[Bar]:
    """Bars from CSV lines as they arrive (the header line first); a bad line raises ValueError naming it."""
    header = ""
    line_no = 0
    for raw in stream:
        line_no += 1
        if not raw.strip():
            continue
        if not header:
            header = raw.strip()
            continue
        try:
            frame = pd.read_csv(io.StringIO(f"{header}\n{raw.strip()}\n"), dtype=str)
            bars = frame_to_bars(frame, name=f"{name} line {line_no}", timezone=timezone)
        except (DataError, ValueError, pd.errors.ParserError) as exc:
            raise ValueError(f"{name} line {line_no}: {exc}") from None
        yield Bar.rows(to_mid(bars, fx, None, price_side, pip))[0]


def open_feed(feed: str, fx: FxEnvConfig, price_side: str, pip: float, timezone: str) -> list[Bar] | Iterator[Bar]:
    """A file's bars (a list, read and checked now), or an iterator over stdin lines for ``-``."""
    if feed == "-":
        return read_lines(sys.stdin, fx, price_side, pip, timezone)
    return read_file(feed, fx, price_side, pip, timezone)


__all__ = ["open_feed", "read_file", "read_lines", "to_mid"]
