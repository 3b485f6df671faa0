"""Market data: the ``Bars`` container that every other part of ``envs/`` consumes, and
``load_bars``, which reads the common FX export layouts (ISO CSV, Dukascopy, HistData,
MetaTrader, Parquet, DataFrames) and validates them before anything trains on them.

Bad data fails loudly here, with the file, 1-based data row (and file line) and column, so
that a broken export never turns silently into a broken backtest. Beyond the format, the
:class:`DataChecks` flag data that parses but is wrong: a move of more than a set number of robust
standard deviations (a decimal slip, a bad tick: one bar at 1000x its neighbours), a hole far
longer than a weekend, and timestamps of which some carry a UTC offset and some do not (the naive
ones could be in any zone). Each is an error naming the file, row and column unless accepted
knowingly (``accept``), which warns with their count (:class:`DataAnomalyWarning`).
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Bars:
    """OHLCV bars in time order. ``time`` is ``datetime64[ns]`` (bar open time, UTC);
    prices are float64 quote-currency prices; ``volume`` may be all zeros.
    ``source`` names where the bars came from (a file path or a generator spec).

    ``side`` says what the prices are: ``mid``, ``bid`` or ``ask`` (a one-sided file), or
    ``bidask``: mid prices of a file with bid and ask columns, whose spread at the open, high,
    low and close of every bar is in ``spread`` ([T, 4], price units)."""

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    source: str = "<memory>"
    side: str = "mid"
    spread: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def slice(self, start: int, stop: int) -> "Bars":
        s = slice(start, stop)
        return Bars(self.time[s], self.open[s], self.high[s], self.low[s], self.close[s], self.volume[s],
                    f"{self.source}[{start}:{stop}]", self.side, None if self.spread is None else self.spread[s])

    def with_prices(self, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                    side: str, source: str | None = None) -> "Bars":
        return Bars(self.time, open_, high, low, close, self.volume, source or self.source, side, self.spread)

    def mirrored(self) -> "Bars":
        """The same bars with the log price reflected around the first open (p -> p0^2 / p):
        every rise becomes an equal fall in log terms, so a net drift flips sign while
        volatility, ranges and the price level stay the same (like quoting USDEUR scaled back
        to EURUSD's level). High and low swap roles (and so do their spreads)."""
        c2 = float(self.open[0]) ** 2
        spread = None
        if self.spread is not None:  # a spread s at price p becomes about s * c2 / p^2 at c2 / p
            prices = np.stack([self.open, self.low, self.high, self.close], axis=1)
            spread = self.spread[:, [0, 2, 1, 3]] * c2 / prices ** 2
        return Bars(self.time, c2 / self.open, c2 / self.low, c2 / self.high, c2 / self.close, self.volume,
                    f"mirror({self.source})", self.side, spread)


@dataclass(frozen=True)
class DataChecks:
    """What :func:`load_bars` checks beyond the format (the ``--fx.*`` flags of the same names)."""

    max_return_sigmas: float = 100.0
    """A bar whose open, high, low or close is more than this many robust standard deviations of the file's bar
    returns from the previous close (over a gap: per square root of the bars it spans) is an anomaly (0 = off)."""
    max_gap_days: float = 7.0
    """A hole between two bars longer than this many days (and 3 bar lengths) is an anomaly (0 = off)."""
    accept: bool = False
    """Load a file with anomalies anyway, with one :class:`DataAnomalyWarning` counting them."""

    def hint(self, limit: str | None = None) -> str:
        tail = f" (or change the limit, {limit})" if limit else ""
        return f"if the file is right, accept it knowingly with --fx.accept-anomalies{tail}"


class DataAnomalyWarning(UserWarning):
    """A file loaded with anomalies the caller accepted (:attr:`DataChecks.accept`)."""


# ---------------------------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------------------------

PRICE_COLUMNS = ("open", "high", "low", "close")
CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")

# Normalised header name -> canonical column. Names are normalised by ``_norm_name``.
_TIME_ALIASES = ("time", "timestamp", "datetime", "date_time", "gmt_time", "utc_time", "time_utc",
                 "timestamp_utc", "local_time", "dt", "ts", "date")
_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "open": ("open", "o", "open_price"),
    "high": ("high", "h", "high_price"),
    "low": ("low", "l", "low_price"),
    "close": ("close", "c", "close_price", "last"),
    "volume": ("volume", "tickvol", "tick_volume", "tickvolume", "vol", "real_volume", "v", "ticks"),
}
for _side in ("bid", "ask"):
    for _col in PRICE_COLUMNS:
        _COLUMN_ALIASES[f"{_side}_{_col}"] = (f"{_side}_{_col}", f"{_side}{_col}", f"{_col}_{_side}")
BID_ASK = tuple(f"{side}_{c}" for side in ("bid", "ask") for c in PRICE_COLUMNS)

_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$|^\d{4}$|^\d{6}$")
_DATE_FORMATS = ("%Y%m%d", "%Y.%m.%d", "%Y-%m-%d", "%d.%m.%Y", "%Y/%m/%d")
_CLOCK_FORMATS = ("%H%M%S", "%H%M", "%H:%M:%S.%f", "%H:%M:%S", "%H:%M")
# Whole-timestamp formats tried in order on the first value; "ISO8601" is pandas' ISO parser.
_STAMP_FORMATS = (
    "%d.%m.%Y %H:%M:%S.%f", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M",            # Dukascopy
    "%d.%m.%Y %H:%M:%S.%f GMT%z", "%d.%m.%Y %H:%M:%S GMT%z",                  # Dukascopy local time
    "%Y%m%d %H%M%S", "%Y%m%d %H%M", "%Y%m%d%H%M%S",                           # HistData
    "%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M",                                    # MetaTrader
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
    "ISO8601",
)
_ALL_FORMATS = _STAMP_FORMATS + tuple(f"{d} {c}" for d in _DATE_FORMATS for c in _CLOCK_FORMATS) + _DATE_FORMATS
_EPOCH_UNITS = {10: "s", 13: "ms", 16: "us", 19: "ns"}  # digits of a present-day epoch -> unit


class DataError(ValueError):
    """Bad market data. ``file``, ``row`` (1-based data row), ``line`` (1-based file line, text
    files only) and ``column`` say where; any of them may be None."""

    def __init__(self, file: str, message: str, row: int | None = None, column: str | None = None,
                 line: int | None = None) -> None:
        self.file, self.row, self.column, self.line = file, row, column, line
        where = []
        if row is not None:
            where.append(f"row {row}" if line is None else f"row {row} (line {line})")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = f"{file}: {', '.join(where)}" if where else file
        super().__init__(f"{prefix}: {message}")


class _Where:
    """Maps a 0-based position among the data rows to the row/line numbers shown in errors (and
    carries the time zone of naive timestamps and the data checks)."""

    def __init__(self, name: str, lines: np.ndarray | None = None, timezone: str = "UTC",
                 checks: DataChecks | None = None) -> None:
        self.name, self.lines, self.timezone = name, lines, timezone
        self.checks = checks if checks is not None else DataChecks()
        self.accepted: Counter[str] = Counter()
        self.first_accepted: str | None = None

    def anomaly(self, kind: str, count: int, message: str, pos: int | None, column: str | None,
                limit: str | None = None) -> None:
        """Raise a :class:`DataError` for an anomaly (``count`` rows like it; ``limit``: the flag that sets what
        counts as one), or count it when accepted."""
        if not self.checks.accept:
            more = f" ({count - 1} more row(s) like it)" if count > 1 else ""
            raise self.error(f"{message}{more}; {self.checks.hint(limit)}", pos, column)
        self.accepted[kind] += count
        if self.first_accepted is None:
            row = "" if pos is None else f"row {pos + 1}: "
            self.first_accepted = f"{row}{message}"

    def warn_accepted(self) -> None:
        if self.accepted:
            total = sum(self.accepted.values())
            kinds = ", ".join(f"{n} {k}" for k, n in self.accepted.items())
            warnings.warn(DataAnomalyWarning(
                f"{self.name}: accepted {total} data anomal{'y' if total == 1 else 'ies'} ({kinds}) as asked "
                f"(--fx.accept-anomalies); the first at {self.first_accepted}"), stacklevel=4)

    def error(self, message: str, pos: int | None = None, column: str | None = None) -> DataError:
        if pos is None:
            return DataError(self.name, message, column=column)
        line = None if self.lines is None else int(self.lines[pos])
        return DataError(self.name, message, row=pos + 1, column=column, line=line)


def load_bars(source: str | os.PathLike | pd.DataFrame, timezone: str = "UTC", checks: DataChecks | None = None) -> Bars:
    """Load and validate OHLC(V) bars from a CSV/TXT/Parquet file or a DataFrame.

    Layouts recognised by sniffing the first non-blank line: a header with a time column
    (ISO-8601, Dukascopy ``dd.mm.yyyy HH:MM:SS.fff``, MetaTrader ``yyyy.mm.dd HH:MM``, epoch
    seconds/ms, or split ``date`` + ``time`` columns) plus open/high/low/close[/volume]
    (case-insensitive; o/h/l/c and MetaTrader ``<OPEN>`` accepted); or no header with
    ``YYYYMMDD HHMMSS;o;h;l;c[;v]`` (HistData) or ``date,time,o,h,l,c[,v]`` (HistData split,
    MetaTrader), separated by comma, semicolon, tab or pipe. Naive times are in ``timezone``
    (UTC by default; MT4/MT5 exports are often in EET); aware ones are converted to UTC. Gaps
    (weekends, holidays) are kept as they are. A file with ``bid_*`` and ``ask_*`` price
    columns loads as mid prices with the per-bar spread (``side="bidask"``); a file with only
    ``bid_*`` (or only ``ask_*``) columns loads as that side.

    Raises ``DataError`` naming the file, the 1-based data row (and file line) and the column
    of the first problem: unparsable or missing time, non-increasing or duplicate time,
    unparsable/NaN/inf/non-positive price, high < max(open, close), low > min(open, close),
    negative volume, or a missing column; and, unless ``checks.accept``, the anomalies of
    ``checks`` (default :class:`DataChecks`): moves beyond its robust standard deviations, holes
    beyond its days, naive and offset timestamps mixed.
    """
    if isinstance(source, pd.DataFrame):
        return frame_to_bars(source, name="<DataFrame>", timezone=timezone, checks=checks)
    path = Path(source)
    name = str(source)
    if not path.is_file():
        raise DataError(name, "no such file")
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise DataError(name, f"cannot read Parquet: {exc}") from exc
        return frame_to_bars(frame, name=name, timezone=timezone, checks=checks)
    if suffix in CSV_SUFFIXES:
        return _load_text(path, name, timezone, checks)
    raise DataError(name, f"unsupported extension {suffix!r} (expected one of "
                          f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)})")


def frame_to_bars(frame: pd.DataFrame, name: str = "<DataFrame>", timezone: str = "UTC",
                  checks: DataChecks | None = None) -> Bars:
    """Validate a DataFrame (a time column, or a DatetimeIndex, plus OHLC[V]) into ``Bars``."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(name, f"expected a pandas DataFrame, got {type(frame).__name__}")
    header = [str(c) for c in frame.columns]
    columns = _match_columns(header, name, need_time=not isinstance(frame.index, pd.DatetimeIndex))
    where = _Where(name, timezone=timezone, checks=checks)
    if columns["time"] is None and columns["date"] is None:
        index = frame.index.to_series(index=pd.RangeIndex(len(frame)))
        time = _parse_time(index, where, frame.index.name or "index")
    else:
        time = _time_from_columns(frame, columns, header, where)
    return _build(frame, columns, time, where)


def _time_from_columns(frame: pd.DataFrame, columns: dict[str, int | None], header: list[str],
                       where: _Where) -> np.ndarray:
    if columns["time"] is not None:
        return _parse_time(frame.iloc[:, columns["time"]], where, header[columns["time"]])
    date, clock = columns["date"], columns["clock"]
    return _parse_split_time(frame.iloc[:, date], frame.iloc[:, clock], where, f"{header[date]}+{header[clock]}")


def _load_text(path: Path, name: str, timezone: str = "UTC", checks: DataChecks | None = None) -> Bars:
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        first, first_line = "", 0
        for lineno, raw in enumerate(fh, start=1):
            if raw.strip():
                first, first_line = raw.strip(), lineno
                break
    if not first:
        raise DataError(name, "file is empty (no data rows)")
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    sep = max(counts, key=lambda d: counts[d])
    if counts[sep] == 0:
        raise DataError(name, f"cannot detect the separator of line {first_line} {first!r} "
                              "(expected ',', ';', tab or '|')")
    fields = [f.strip().strip("\"'") for f in first.split(sep)]
    if not re.match(r"^[\d.+-]", fields[0]):  # a header line
        columns = _match_columns(fields, name)
        frame = _read_csv(path, name, sep, skip=first_line, n_fields=len(fields),
                          text_cols=[i for i in (columns["time"], columns["date"], columns["clock"])
                                     if i is not None], first_line=first_line)
        frame.columns = fields
        frame, lines = _drop_blank(frame, first_line + 1)
        where = _Where(name, lines, timezone, checks)
        return _build(frame, columns, _time_from_columns(frame, columns, fields, where), where)

    n = len(fields)
    split_time = (" " not in fields[0] and "T" not in fields[0] and n >= 2
                  and bool(_TIME_OF_DAY.match(fields[1])))
    lead = ["date", "time"] if split_time else ["time"]
    need = len(lead) + 4
    if n < need:
        raise DataError(name, f"line {first_line} has {n} fields; a header-less file needs "
                              f"{', '.join(lead + list(PRICE_COLUMNS))}[, volume]", row=1, line=first_line)
    names = lead + list(PRICE_COLUMNS) + (["volume"] if n > need else [])
    names += [f"extra_{i}" for i in range(len(names), n)]
    frame = _read_csv(path, name, sep, skip=first_line - 1, n_fields=n, text_cols=list(range(len(lead))),
                      first_line=first_line)
    frame.columns = names
    frame, lines = _drop_blank(frame, first_line)
    where = _Where(name, lines, timezone, checks)
    columns: dict[str, int | None] = {c: names.index(c) if c in names else None
                                      for c in list(PRICE_COLUMNS) + ["volume"]}
    columns.update(time=None if split_time else 0, date=0 if split_time else None, clock=1 if split_time else None)
    columns.update(dict.fromkeys(BID_ASK))
    return _build(frame, columns, _time_from_columns(frame, columns, names, where), where)


def _read_csv(path: Path, name: str, sep: str, skip: int, n_fields: int, text_cols: list[int],
              first_line: int) -> pd.DataFrame:
    """Read the data lines after ``skip`` lines, columns numbered 0.. (blank lines kept as NaN rows)."""
    try:
        frame = pd.read_csv(path, sep=sep, header=None, skiprows=skip, dtype={i: str for i in text_cols},
                            skip_blank_lines=False, skipinitialspace=True, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        return pd.DataFrame({i: pd.Series(dtype=str if i in text_cols else float) for i in range(n_fields)})
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(name, f"cannot parse as CSV: {exc}") from exc
    if frame.shape[1] != n_fields:
        raise DataError(name, f"data lines have {frame.shape[1]} fields but line {first_line} "
                              f"has {n_fields}; every line needs the same number of {sep!r}-separated fields")
    return frame


def _drop_blank(frame: pd.DataFrame, first_data_line: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``frame`` without blank rows, and the file line of each kept row."""
    blank = frame.isna().all(axis=1).to_numpy()
    lines = np.arange(first_data_line, first_data_line + len(frame))
    if blank.any():
        frame = frame.loc[~blank].reset_index(drop=True)
        lines = lines[~blank]
    return frame, lines


def _norm_name(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().strip("<>").lower()).strip("_")


def _match_columns(header: list[str], file: str, need_time: bool = True) -> dict[str, int | None]:
    """Column index of time (or split date + clock) and of each OHLCV column; raise on missing."""
    normed = [_norm_name(h) for h in header]
    found: dict[str, int | None] = {}

    def pick(aliases: tuple[str, ...], role: str) -> int | None:
        for alias in aliases:
            hits = [i for i, h in enumerate(normed) if h == alias]
            if len(hits) > 1:
                raise DataError(file, f"{len(hits)} columns {[header[i] for i in hits]} could be {role!r}; "
                                      "rename or drop all but one", column=header[hits[1]])
            if hits:
                return hits[0]
        return None

    for canon, aliases in _COLUMN_ALIASES.items():
        found[canon] = pick(aliases, canon)
    split = "date" in normed and "time" in normed
    found["date"] = normed.index("date") if split else None
    found["clock"] = normed.index("time") if split else None
    found["time"] = None if split else pick(_TIME_ALIASES, "time")
    sides = [side for side in ("bid", "ask") if all(found[f"{side}_{c}"] is not None for c in PRICE_COLUMNS)]
    missing = [] if sides else [c for c in PRICE_COLUMNS if found[c] is None]
    if need_time and found["time"] is None and not split:
        missing.insert(0, "time")
    if missing:
        hint = " (a time/timestamp/datetime/date column or a DatetimeIndex)" if missing[0] == "time" else ""
        raise DataError(file, f"missing required column{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(map(repr, missing))}{hint}; columns are {header}", column=missing[0])
    return found


def _as_text(values: pd.Series) -> pd.Series:
    """Stripped strings of a time column (missing -> NA); integral floats lose their '.0'."""
    values = values.reset_index(drop=True)
    if pd.api.types.is_float_dtype(values.dtype):
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        arr = arr[~np.isnan(arr)]
        if np.isfinite(arr).all() and (arr == np.floor(arr)).all():
            values = values.astype("Int64")
    text = values.astype("string").str.strip()
    return text.mask(text == "", pd.NA)


def _parse_time(values: pd.Series, where: _Where, column: str) -> np.ndarray:
    """Parse a time column into naive-UTC ``datetime64[ns]``; raise naming the first bad row."""
    values = values.reset_index(drop=True)
    if len(values) == 0:
        raise where.error("no data rows")
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = _localize(values, where, column)
    else:
        values = _as_text(values)
        parsed = _parse_text_times(values, where, column)
    return _to_naive_ns(parsed, values, where, column)


def _parse_split_time(dates: pd.Series, clocks: pd.Series, where: _Where, column: str) -> np.ndarray:
    dates, clocks = _as_text(dates), _as_text(clocks)
    if len(dates) == 0:
        raise where.error("no data rows")
    joined = dates + " " + clocks  # NA when either part is missing
    return _to_naive_ns(_parse_text_times(joined, where, column), joined, where, column)


def _parse_text_times(text: pd.Series, where: _Where, column: str) -> pd.Series:
    """Pick the format from the first value, then parse all values with it (bad ones -> NaT)."""
    if pd.isna(text.iloc[0]):
        raise where.error("missing time value", 0, column)
    first = str(text.iloc[0])
    if first.isdigit() and len(first) in _EPOCH_UNITS:
        numbers = pd.to_numeric(text, errors="coerce")
        return pd.to_datetime(numbers, unit=_EPOCH_UNITS[len(first)], utc=True, errors="coerce")
    for fmt in _ALL_FORMATS:
        try:
            pd.to_datetime(pd.Series([first]), format=fmt, utc=True)
        except (ValueError, TypeError):
            continue
        if "%z" not in fmt:
            mixed = _mixed_awareness(text, fmt, where, column)
            if mixed is not None:
                return mixed
        if where.timezone == "UTC" or "%z" in fmt:
            return pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
        try:
            naive = pd.to_datetime(text, format=fmt, errors="coerce")
        except (ValueError, TypeError):  # mixed offsets: aware values, converted as such
            return pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
        if isinstance(naive.dtype, pd.DatetimeTZDtype):
            return naive.dt.tz_convert("UTC")
        return _localize(naive, where, column)
    raise where.error(f"cannot parse time {first!r} (expected ISO-8601, dd.mm.yyyy HH:MM:SS.fff, "
                      "YYYYMMDD HHMMSS, yyyy.mm.dd HH:MM, epoch seconds or split date/time columns)", 0, column)


_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


def _mixed_awareness(text: pd.Series, fmt: str, where: _Where, column: str) -> pd.Series | None:
    """Times of which some carry a UTC offset and some do not: an anomaly (which zone are the naive ones
    in?). Accepted, the naive ones are read in ``where.timezone`` and the others converted; None when the
    column is not mixed."""
    present = text.notna()
    aware = text.str.contains(_OFFSET, na=False)
    naive = present & ~aware
    if not aware.any() or not naive.any():
        return None
    first_aware = bool(aware.iloc[int(np.argmax(present.to_numpy()))])
    odd = (naive if first_aware else aware).to_numpy()  # rows unlike the first one
    pos = int(np.argmax(odd))
    where.anomaly("naive/aware mixed time(s)", int(odd.sum()),
                  f"this time {'has no' if first_aware else 'carries a'} UTC offset, unlike the first row's "
                  f"({int(aware.sum())} times carry one, {int(naive.sum())} do not): naive and offset times are mixed, so "
                  f"the naive ones may be off by hours (they would be read in --fx.timezone {where.timezone})",
                  pos, column)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    out[aware] = pd.to_datetime(text[aware], format=fmt, utc=True, errors="coerce")
    naive_times = pd.to_datetime(text[naive], format=fmt, errors="coerce")
    out[naive] = _localize(naive_times, where, column) if where.timezone != "UTC" else naive_times.dt.tz_localize("UTC")
    return out


def _localize(naive: pd.Series, where: _Where, column: str) -> pd.Series:
    """Naive times in ``where.timezone`` -> UTC (a repeated hour at the end of daylight saving is
    resolved by order; a time that does not exist in that zone is an error naming its row)."""
    if where.timezone == "UTC":
        return naive.dt.tz_localize("UTC")
    try:
        local = naive.dt.tz_localize(where.timezone, ambiguous="infer", nonexistent="NaT")
    except Exception as exc:  # noqa: BLE001  (pytz/zoneinfo raise several types)
        raise where.error(f"cannot place the times in time zone {where.timezone} (--fx.timezone): {exc}",
                          None, column) from exc
    gone = local.isna() & naive.notna()
    if gone.any():
        pos = int(np.argmax(gone.to_numpy()))
        raise where.error(f"time {naive.iloc[pos]} does not exist in time zone {where.timezone} "
                          f"(a daylight-saving jump; --fx.timezone)", pos, column)
    return local.dt.tz_convert("UTC")


def _to_naive_ns(parsed: pd.Series, original: pd.Series, where: _Where, column: str) -> np.ndarray:
    nat = parsed.isna().to_numpy()
    if nat.any():
        pos = int(np.argmax(nat))
        raw = original.iloc[pos]
        if pd.isna(raw) or str(raw).strip() == "":
            raise where.error("missing time value", pos, column)
        raise where.error(f"cannot parse time {str(raw)!r}", pos, column)
    try:
        return parsed.dt.tz_localize(None).dt.as_unit("ns").to_numpy()
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as exc:
        raise where.error(f"time out of the representable range: {exc}", None, column) from exc


def _numeric(frame: pd.DataFrame, index: int, where: _Where, column: str) -> np.ndarray:
    values = frame.iloc[:, index].reset_index(drop=True)
    if pd.api.types.is_bool_dtype(values.dtype):
        raise where.error("expected numbers, got booleans", 0, column)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        pos = int(np.argmax(bad.to_numpy()))
        raise where.error(f"cannot parse {str(values.iloc[pos])!r} as a number", pos, column)
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


def _build(frame: pd.DataFrame, columns: dict[str, int | None], time: np.ndarray, where: _Where) -> Bars:
    bars = _build_bars(frame, columns, time, where)
    _check_anomalies(bars, where)
    where.warn_accepted()
    return bars


def _check_anomalies(bars: Bars, where: _Where) -> None:
    """Holes longer than ``max_gap_days`` and moves beyond ``max_return_sigmas`` robust standard deviations."""
    checks, n = where.checks, len(bars)
    if n < 2:
        return
    t = bars.time.astype("datetime64[ns]").astype("int64")
    dt = np.diff(t).astype(np.float64)
    bar = float(np.median(dt))
    if checks.max_gap_days > 0:
        limit = max(checks.max_gap_days * 86_400e9, 3 * bar)
        holes = np.nonzero(dt > limit)[0]
        if holes.size:
            pos = int(holes[0]) + 1
            where.anomaly("hole(s)", int(holes.size),
                          f"a hole of {dt[pos - 1] / 86_400e9:.1f} days before this bar (from "
                          f"{pd.Timestamp(bars.time[pos - 1])}; more than --fx.max-gap-days {checks.max_gap_days:g})",
                          pos, "time", "--fx.max-gap-days")
    if checks.max_return_sigmas <= 0:
        return
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        span = np.sqrt(np.maximum(dt / bar, 1.0))
        prev = bars.close[:-1]
        moves = {c: np.log(getattr(bars, c)[1:] / prev) / span for c in PRICE_COLUMNS}
    close = moves["close"][moves["close"] != 0]
    if close.size < 20:  # too few moves to know what is normal
        return
    scale = 1.4826 * float(np.median(np.abs(close - np.median(close))))
    if not scale > 0:
        return
    z = np.stack([np.abs(moves[c]) for c in PRICE_COLUMNS]) / scale
    worst = np.nan_to_num(z, nan=np.inf).max(axis=0)
    rows = np.nonzero(worst > checks.max_return_sigmas)[0]
    if rows.size:
        i = int(rows[0])
        col = PRICE_COLUMNS[int(np.nan_to_num(z[:, i], nan=np.inf).argmax())]
        value = getattr(bars, col)[i + 1]
        where.anomaly("move(s) beyond the limit", int(rows.size),
                      f"{col} {_fmt(value)} is {worst[i]:,.0f} robust standard deviations from the previous close "
                      f"{_fmt(prev[i])} (more than --fx.max-return-sigmas {checks.max_return_sigmas:g}: a bad tick "
                      f"or a price in other units?)", i + 1, col, "--fx.max-return-sigmas")


def _build_bars(frame: pd.DataFrame, columns: dict[str, int | None], time: np.ndarray, where: _Where) -> Bars:
    if columns["volume"] is not None:
        volume = _numeric(frame, columns["volume"], where, "volume")
    else:
        volume = np.zeros(len(time), dtype=np.float64)
    sides = [side for side in ("bid", "ask") if all(columns.get(f"{side}_{c}") is not None for c in PRICE_COLUMNS)]
    quotes = {side: {c: _numeric(frame, columns[f"{side}_{c}"], where, f"{side}_{c}") for c in PRICE_COLUMNS}
              for side in sides}
    for side, prices in quotes.items():
        _validate(time, prices, volume, where, prefix=f"{side}_")
    if len(sides) == 2:  # mid prices and the spread of every bar
        bid, ask = quotes["bid"], quotes["ask"]
        for c in PRICE_COLUMNS:
            crossed = ask[c] < bid[c]
            if crossed.any():
                pos = int(np.argmax(crossed))
                raise where.error(f"ask_{c} {_fmt(ask[c][pos])} < bid_{c} {_fmt(bid[c][pos])} (crossed quote)",
                                  pos, f"ask_{c}")
        mid = {c: 0.5 * (bid[c] + ask[c]) for c in PRICE_COLUMNS}
        spread = np.stack([ask[c] - bid[c] for c in PRICE_COLUMNS], axis=1)
        return Bars(time, mid["open"], mid["high"], mid["low"], mid["close"], volume, where.name, "bidask", spread)
    if sides and any(columns[c] is None for c in PRICE_COLUMNS):  # only one side's columns
        p = quotes[sides[0]]
        return Bars(time, p["open"], p["high"], p["low"], p["close"], volume, where.name, sides[0])
    prices = {c: _numeric(frame, columns[c], where, c) for c in PRICE_COLUMNS}
    _validate(time, prices, volume, where)
    return Bars(time, prices["open"], prices["high"], prices["low"], prices["close"], volume, where.name)


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def _validate(time: np.ndarray, prices: dict[str, np.ndarray], volume: np.ndarray, where: _Where,
              prefix: str = "") -> None:
    if len(time) == 0:
        raise where.error("no data rows")
    step = np.diff(time.astype("int64"))
    if (step <= 0).any():
        pos = int(np.argmax(step <= 0)) + 1
        t, prev = pd.Timestamp(time[pos]), pd.Timestamp(time[pos - 1])
        if step[pos - 1] == 0:
            raise where.error(f"duplicate time {t} (same as row {pos})", pos, "time")
        raise where.error(f"time {t} is not after the previous row's {prev} (times must strictly increase)",
                          pos, "time")
    for c in PRICE_COLUMNS:
        v = prices[c]
        finite = np.isfinite(v)
        if not finite.all():
            pos = int(np.argmax(~finite))
            what = f"{c} is missing or NaN" if np.isnan(v[pos]) else f"{c} {v[pos]} is not finite"
            raise where.error(what, pos, prefix + c)
        if (v <= 0).any():
            pos = int(np.argmax(v <= 0))
            raise where.error(f"{c} {_fmt(v[pos])} is not > 0", pos, prefix + c)
    o, h, lo, c = prices["open"], prices["high"], prices["low"], prices["close"]
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    if (h < top).any():
        pos = int(np.argmax(h < top))
        raise where.error(f"high {_fmt(h[pos])} < max(open, close) {_fmt(top[pos])}", pos, prefix + "high")
    # low <= min(open, close) <= max(open, close) <= high, so high >= low follows from the two checks.
    if (lo > bottom).any():
        pos = int(np.argmax(lo > bottom))
        raise where.error(f"low {_fmt(lo[pos])} > min(open, close) {_fmt(bottom[pos])}", pos, prefix + "low")
    bad_volume = ~np.isfinite(volume) | (volume < 0)
    if bad_volume.any():
        pos = int(np.argmax(bad_volume))
        raise where.error(f"volume {volume[pos]} is not a finite number >= 0", pos, "volume")


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def bars_to_frame(bars: Bars) -> pd.DataFrame:
    """Bars as a DataFrame with a tz-aware UTC ``DatetimeIndex`` named ``time`` and OHLCV columns."""
    index = pd.DatetimeIndex(bars.time, name="time").tz_localize("UTC")
    return pd.DataFrame({"open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close,
                         "volume": bars.volume}, index=index)


def save_bars(bars: Bars, path: str | os.PathLike) -> None:
    """Write bars as an ISO-8601 CSV (``.csv``/``.txt``) or Parquet (``.parquet``/``.pq``) file."""
    path = Path(path)
    frame = bars_to_frame(bars)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        frame.to_parquet(path)
    elif suffix in CSV_SUFFIXES:
        frame.index = frame.index.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        frame.to_csv(path, float_format="%.10g")
    else:
        raise ValueError(f"{path}: unsupported extension {suffix!r}")


def infer_bar_seconds(bars: Bars) -> int:
    """The modal spacing between consecutive bars in whole seconds (gaps do not change it)."""
    if len(bars) < 2:
        raise ValueError(f"{bars.source}: need at least 2 bars to infer the bar length, got {len(bars)}")
    seconds = np.diff(bars.time.astype("datetime64[ns]").astype("int64")) // 1_000_000_000
    values, counts = np.unique(seconds, return_counts=True)
    return int(values[np.argmax(counts)])
