"""The FX rollover calendar: when swap is booked and for how many nights.

Positions held through the daily rollover (17:00 New York by default, which is 21:00 UTC in
summer and 22:00 UTC in winter) are charged or credited swap. There is one rollover on each
weekday, none on Saturday or Sunday, and the Wednesday rollover books three nights because
its value date spans the weekend (``triple_swap_day``). A week therefore books seven nights.

:func:`rollover_nights` turns that into two arrays per bar: the nights booked for rollovers
that fall in the gap before a bar opens (e.g. between a Friday close and a Sunday open, or
any missing bars) and those inside the bar (between its open and its close). The env charges
the first on the position held before the bar's fill, the second on the position after it.
"""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from envs.fx.config import WEEKDAYS


_WEEK_NS = 7 * 86_400 * 10**9


def rollover_times(start_ns: int, end_ns: int, time: str = "17:00", timezone: str = "America/New_York",
                   triple_day: str = "wed") -> tuple[np.ndarray, np.ndarray]:
    """(UTC ns times, nights) of every rollover in ``[start_ns, end_ns]``.

    The calendar is computed for whole weeks around the range and cached, so a live account asking
    for one bar at a time does not rebuild it on every bar; the events returned are the same."""
    lo = (int(start_ns) // _WEEK_NS) * _WEEK_NS
    hi = (int(end_ns) // _WEEK_NS + 1) * _WEEK_NS
    t, nights = _rollover_times(lo, hi, time, timezone, triple_day)
    keep = (t >= start_ns) & (t <= end_ns)
    return t[keep], nights[keep]


@functools.lru_cache(maxsize=16)
def _rollover_times(start_ns: int, end_ns: int, time: str, timezone: str, triple_day: str
                    ) -> tuple[np.ndarray, np.ndarray]:
    tz = ZoneInfo(timezone)
    hh, mm = (int(x) for x in time.split(":"))
    first = pd.Timestamp(start_ns, tz="UTC").tz_convert(tz).normalize() - pd.Timedelta(days=1)
    last = pd.Timestamp(end_ns, tz="UTC").tz_convert(tz).normalize() + pd.Timedelta(days=1)
    days = pd.date_range(first.tz_localize(None), last.tz_localize(None), freq="D")
    days = days[days.day_of_week < 5]
    local = (days + pd.Timedelta(hours=hh, minutes=mm)).tz_localize(tz, nonexistent="shift_forward",
                                                                      ambiguous=False)
    t = local.tz_convert("UTC").as_unit("ns").asi8
    nights = np.where(days.day_of_week == WEEKDAYS.index(triple_day), 3.0, 1.0)
    keep = (t >= start_ns) & (t <= end_ns)
    t, nights = t[keep], nights[keep]
    t.flags.writeable = nights.flags.writeable = False  # shared by every caller of the cache
    return t, nights


def rollover_nights(open_ns: np.ndarray, close_ns: np.ndarray, time: str = "17:00",
                    timezone: str = "America/New_York", triple_day: str = "wed") -> tuple[np.ndarray, np.ndarray]:
    """Per bar: (nights of rollovers in (previous close, open], nights of rollovers in (open, close]).

    The first bar books nothing before its open (there was no position)."""
    n = len(open_ns)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    t, nights = rollover_times(int(open_ns[0]), int(close_ns[-1]), time, timezone, triple_day)
    csum = np.concatenate([[0.0], np.cumsum(nights)])

    def booked(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:  # nights of events in (lo, hi]
        return csum[np.searchsorted(t, hi, side="right")] - csum[np.searchsorted(t, lo, side="right")]

    prev_close = np.r_[open_ns[0], close_ns[:-1]]
    before = booked(prev_close, np.maximum(open_ns, prev_close))
    before[0] = 0.0
    inside = booked(open_ns, close_ns)
    return before, inside


def swap_schedule(path: str, times_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(long, short) swap rate in force at each of ``times_ns`` from a CSV with columns date, swap_long, swap_short.

    Each row applies from its date (00:00 UTC) until the next row; before the first row there is
    no rate (an error names the first bar it would need)."""
    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001  (pandas raises several types)
        raise ValueError(f"--fx.swap-data {path}: cannot read it as CSV: {exc}") from exc
    cols = {c.strip().lower(): c for c in frame.columns}
    missing = [c for c in ("date", "swap_long", "swap_short") if c not in cols]
    if missing:
        raise ValueError(f"--fx.swap-data {path}: missing column(s) {missing}; columns are {list(frame.columns)}")
    try:
        dates = pd.to_datetime(frame[cols["date"]], utc=True).dt.tz_localize(None).dt.as_unit("ns").to_numpy()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--fx.swap-data {path}: column 'date': {exc}") from exc
    longs = pd.to_numeric(frame[cols["swap_long"]], errors="coerce").to_numpy(dtype=np.float64)
    shorts = pd.to_numeric(frame[cols["swap_short"]], errors="coerce").to_numpy(dtype=np.float64)
    for name, values in (("swap_long", longs), ("swap_short", shorts)):
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad)) + 1
            raise ValueError(f"--fx.swap-data {path}: row {row}, column {name!r}: must be a finite number")
    order = np.argsort(dates.astype(np.int64), kind="stable")
    d = dates.astype(np.int64)[order]
    idx = np.searchsorted(d, times_ns, side="right") - 1
    if len(times_ns) and idx.min() < 0:
        first = pd.Timestamp(int(times_ns[int(np.argmax(idx < 0))]))
        raise ValueError(f"--fx.swap-data {path}: its first date {pd.Timestamp(int(d[0]))} is after the first bar "
                         f"that needs a rate ({first}); add an earlier row")
    return longs[order][idx], shorts[order][idx]
