"""load_bars: every supported layout loads to the same bars; every bad file names file, row, column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from envs.fx.data import (Bars, DataAnomalyWarning, DataChecks, DataError, bars_to_frame, infer_bar_seconds,
                          load_bars, save_bars)

DATA = Path(__file__).parent / "data"
# The five 1-minute EURUSD bars that every sample file in tests/data (but the weekend one) holds.
EXPECTED_TIME = np.array(["2024-01-02T00:00", "2024-01-02T00:01", "2024-01-02T00:02", "2024-01-02T00:03",
                          "2024-01-02T00:04"], dtype="datetime64[ns]")
EXPECTED = {
    "open": [1.10420, 1.10430, 1.10460, 1.10415, 1.10438],
    "high": [1.10450, 1.10470, 1.10462, 1.10440, 1.10441],
    "low": [1.10400, 1.10425, 1.10410, 1.10405, 1.10420],
    "close": [1.10430, 1.10460, 1.10415, 1.10438, 1.10422],
}


def _assert_expected(bars: Bars, n: int = 5) -> None:
    assert len(bars) == n
    assert bars.time.dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(bars.time, EXPECTED_TIME[:n])
    for col, values in EXPECTED.items():
        np.testing.assert_allclose(getattr(bars, col), values[:n], rtol=0, atol=1e-12)
        assert getattr(bars, col).dtype == np.float64


@pytest.mark.parametrize("name, volume", [
    ("eurusd_iso.csv", [120, 95, 130, 88, 101]),
    ("eurusd_dukascopy.csv", [1203.51, 950.2, 1300, 880.75, 1010]),
    ("eurusd_histdata.csv", [0, 0, 0, 0, 0]),
    ("eurusd_histdata_split.txt", [0, 0, 0, 0, 0]),
    ("eurusd_mt4.csv", [120, 95, 130, 88, 101]),
])
def test_sample_layouts_load(name: str, volume: list[float]) -> None:
    bars = load_bars(DATA / name)
    _assert_expected(bars)
    np.testing.assert_allclose(bars.volume, volume)
    assert bars.source == str(DATA / name)
    assert infer_bar_seconds(bars) == 60


def test_mt5_tab_export_with_angle_bracket_headers_uses_tick_volume() -> None:
    bars = load_bars(DATA / "eurusd_mt5.txt")
    _assert_expected(bars, 3)
    np.testing.assert_allclose(bars.volume, [120, 95, 130])


def test_parquet_and_csv_round_trip(tmp_path: Path) -> None:
    bars = load_bars(DATA / "eurusd_iso.csv")
    for name in ("copy.parquet", "copy.pq", "copy.csv"):
        save_bars(bars, tmp_path / name)
        again = load_bars(tmp_path / name)
        _assert_expected(again)
        np.testing.assert_allclose(again.volume, bars.volume)


def test_parquet_with_string_times_and_upper_case_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"DateTime": [str(t) for t in EXPECTED_TIME.astype("datetime64[s]")],
                          **{k.upper(): v for k, v in EXPECTED.items()}})
    frame.to_parquet(tmp_path / "x.parquet")
    _assert_expected(load_bars(tmp_path / "x.parquet"))


def test_column_names_are_case_insensitive_and_short_names_work(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("TimeStamp,O,H,L,C\n2024-01-02 00:00:00,1.10420,1.10450,1.10400,1.10430\n"
                    "2024-01-02 00:01:00,1.10430,1.10470,1.10425,1.10460\n")
    bars = load_bars(path)
    _assert_expected(bars, 2)
    np.testing.assert_array_equal(bars.volume, [0.0, 0.0])  # no volume column -> zeros


def test_weekend_gap_loads_as_is() -> None:
    bars = load_bars(DATA / "eurusd_weekend.csv")
    assert len(bars) == 6
    gaps = np.diff(bars.time).astype("timedelta64[s]").astype(int)
    # Friday 21:59 -> Sunday 22:00 is 48 h + 1 min; the other steps are one minute.
    np.testing.assert_array_equal(gaps, [60, 60, 48 * 3600 + 60, 60, 60])
    assert infer_bar_seconds(bars) == 60


def test_timezones_aware_converted_naive_taken_as_utc(tmp_path: Path) -> None:
    path = tmp_path / "tz.csv"
    path.write_text("time,open,high,low,close\n2024-01-02T02:00:00+02:00,1.1,1.2,1.0,1.1\n"
                    "2024-01-02T00:01:00Z,1.1,1.2,1.0,1.1\n2024-01-02T00:02:00Z,1.1,1.2,1.0,1.1\n")
    np.testing.assert_array_equal(load_bars(path).time, EXPECTED_TIME[:3])
    # naive and offset times mixed: which zone are the naive ones in? An error naming the row, unless accepted
    path.write_text(path.read_text().replace("00:02:00Z", "00:02:00"))
    with pytest.raises(DataError, match=r"tz.csv: row 3 \(line 4\), column 'time': .*mixed.*--fx.accept-anomalies"):
        load_bars(path)
    with pytest.warns(DataAnomalyWarning, match="accepted 1 data anomaly"):
        np.testing.assert_array_equal(load_bars(path, checks=DataChecks(accept=True)).time, EXPECTED_TIME[:3])
    duka = tmp_path / "duka_local.csv"
    duka.write_text("Local time,Open,High,Low,Close,Volume\n"
                    "02.01.2024 02:00:00.000 GMT+0200,1.1,1.2,1.0,1.1,5\n"
                    "02.01.2024 02:01:00.000 GMT+0200,1.1,1.2,1.0,1.1,5\n")
    np.testing.assert_array_equal(load_bars(duka).time, EXPECTED_TIME[:2])


def test_dataframe_input_with_column_or_datetime_index() -> None:
    bars = load_bars(DATA / "eurusd_iso.csv")
    frame = bars_to_frame(bars)
    assert str(frame.index.tz) == "UTC"
    _assert_expected(load_bars(frame))
    with_column = frame.reset_index().rename(columns={"time": "Date"})
    _assert_expected(load_bars(with_column))
    eastern = frame.tz_convert("America/New_York")
    _assert_expected(load_bars(eastern))


def test_dataframe_goes_through_validation() -> None:
    frame = bars_to_frame(load_bars(DATA / "eurusd_iso.csv"))
    frame.iloc[3, frame.columns.get_loc("low")] = 2.0
    with pytest.raises(DataError, match=r"<DataFrame>: row 4, column 'low': low 2 > min\(open, close\)"):
        load_bars(frame)


def test_blank_lines_are_skipped_and_line_numbers_stay_true(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("time,open,high,low,close\n2024-01-02 00:00,1.1,1.2,1.0,1.1\n\n"
                    "2024-01-02 00:01,1.1,1.05,1.0,1.1\n")
    with pytest.raises(DataError) as err:
        load_bars(path)
    assert (err.value.row, err.value.line, err.value.column) == (2, 4, "high")


GOOD = ["2024-01-02 00:00,1.1040,1.1050,1.1030,1.1045",
        "2024-01-02 00:01,1.1045,1.1055,1.1040,1.1050",
        "2024-01-02 00:02,1.1050,1.1060,1.1045,1.1055"]


@pytest.mark.parametrize("bad_line, row, column, message", [
    ("2024-13-45 00:02,1.1050,1.1060,1.1045,1.1055", 3, "time", "cannot parse time '2024-13-45 00:02'"),
    ("yesterday,1.1050,1.1060,1.1045,1.1055", 3, "time", "cannot parse time 'yesterday'"),
    ("2024-01-02 00:00:30,1.1050,1.1060,1.1045,1.1055", 3, "time", "is not after the previous row's"),
    ("2024-01-02 00:01,1.1050,1.1060,1.1045,1.1055", 3, "time", "duplicate time 2024-01-02 00:01:00 (same as row 2)"),
    ("2024-01-02 00:02,1.1050,nan,1.1045,1.1055", 3, "high", "high is missing or NaN"),
    ("2024-01-02 00:02,1.1050,1.1060,1.1045,", 3, "close", "close is missing or NaN"),
    ("2024-01-02 00:02,1.1050,inf,1.1045,1.1055", 3, "high", "high inf is not finite"),
    ("2024-01-02 00:02,1.1050,1.1060,-1.1045,1.1055", 3, "low", "low -1.1045 is not > 0"),
    ("2024-01-02 00:02,0,1.1060,1.1045,1.1055", 3, "open", "open 0 is not > 0"),
    ("2024-01-02 00:02,1.1050,1.1060,1.1045,1.1x55", 3, "close", "cannot parse '1.1x55' as a number"),
    ("2024-01-02 00:02,1.1050,1.1052,1.1045,1.1055", 3, "high", "high 1.1052 < max(open, close) 1.1055"),
    ("2024-01-02 00:02,1.1050,1.1060,1.1053,1.1055", 3, "low", "low 1.1053 > min(open, close) 1.105"),
])
def test_bad_rows_name_file_row_and_column(tmp_path: Path, bad_line: str, row: int, column: str,
                                           message: str) -> None:
    path = tmp_path / "eurusd.csv"
    path.write_text("time,open,high,low,close\n" + "\n".join(GOOD[:2] + [bad_line]) + "\n")
    with pytest.raises(DataError) as err:
        load_bars(path)
    text = str(err.value)
    assert text.startswith(f"{path}: row {row} (line {row + 1}), column '{column}': "), text
    assert message in text
    assert (err.value.file, err.value.row, err.value.column) == (str(path), row, column)


def test_bad_row_in_headerless_histdata_file(tmp_path: Path) -> None:
    path = tmp_path / "DAT_ASCII_EURUSD_M1_2024.csv"
    path.write_text("20240102 000000;1.10420;1.10450;1.10400;1.10430;0\n"
                    "20240102 000100;1.10430;1.10420;1.10425;1.10460;0\n")
    with pytest.raises(DataError, match=r"DAT_ASCII_EURUSD_M1_2024.csv: row 2 \(line 2\), column 'high': "
                                        r"high 1.1042 < max\(open, close\) 1.1046"):
        load_bars(path)


def test_unparsable_split_time_in_mt4_file(tmp_path: Path) -> None:
    path = tmp_path / "mt4.csv"
    path.write_text("2024.01.02,00:00,1.1042,1.1045,1.1040,1.1043,120\n"
                    "2024.01.02,25:61,1.1043,1.1047,1.1040,1.1046,9\n")
    with pytest.raises(DataError, match=r"mt4.csv: row 2 \(line 2\), column 'date\+time': "
                                        r"cannot parse time '2024.01.02 25:61'"):
        load_bars(path)


@pytest.mark.parametrize("header, missing", [
    ("time,open,high,close", "'low'"),
    ("Time,Open,Close", "'high', 'low'"),
    ("open,high,low,close", "'time'"),
])
def test_missing_columns_are_named(tmp_path: Path, header: str, missing: str) -> None:
    path = tmp_path / "cols.csv"
    path.write_text(header + "\n" + ",".join(["2024-01-02"] + ["1.1"] * (header.count(","))) + "\n")
    with pytest.raises(DataError, match=f"cols.csv: column .*missing required columns? {missing}"):
        load_bars(path)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv: no such file"):
        load_bars(tmp_path / "nope.csv")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="unsupported extension '.json'"):
        load_bars(tmp_path / "x.json")
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(DataError, match="empty.csv: file is empty"):
        load_bars(tmp_path / "empty.csv")
    (tmp_path / "header_only.csv").write_text("time,open,high,low,close\n")
    with pytest.raises(DataError, match="header_only.csv: no data rows"):
        load_bars(tmp_path / "header_only.csv")
    (tmp_path / "short.csv").write_text("2024.01.02,00:00,1.1,1.2,1.0\n")
    with pytest.raises(DataError, match="short.csv: row 1 \\(line 1\\): line 1 has 5 fields"):
        load_bars(tmp_path / "short.csv")


def test_infer_bar_seconds_takes_the_mode() -> None:
    t = np.array(["2024-01-01T00:00", "2024-01-01T00:05", "2024-01-01T00:10", "2024-01-01T01:00",
                  "2024-01-01T01:05"], dtype="datetime64[ns]")
    ones = np.ones(5)
    assert infer_bar_seconds(Bars(t, ones, ones, ones, ones, ones)) == 300
    with pytest.raises(ValueError, match="at least 2 bars"):
        infer_bar_seconds(Bars(t[:1], ones[:1], ones[:1], ones[:1], ones[:1], ones[:1]))


def test_ragged_lines_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("time,open,high,low,close\n2024-01-02 00:00,1.1,1.2,1.0,1.1,7\n")
    with pytest.raises(DataError, match="ragged.csv: data lines have 6 fields but line 1 has 5"):
        load_bars(path)
