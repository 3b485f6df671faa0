"""Data that parses but is wrong: a bar at 1000x its neighbours, a bar at 1e300, a two-year hole with a 30 % jump,
naive and offset timestamps mixed. Each is an error naming the file, row and column (before any work, one line),
unless accepted knowingly with --fx.accept-anomalies, which warns with their count."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main
from engine.launch import validate
from engine.ppo import parse_args
from envs.fx.data import DataAnomalyWarning, DataChecks, DataError, load_bars
from tests.adversarial.fixtures import write_bars

H1 = ["--policy", "mlp", "--num-envs", "2", "--rollout-steps", "16", "--hooks.no-progress", "--hooks.eval-every", "0",
      "--report-split", "none", "--total-steps", "64"]
ROW = 3001  # the planted bar (the middle of 6,000)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bars")
    out = {}
    for kind in ("good", "spike", "huge", "hole", "mixedtz"):
        out[kind] = d / f"EURUSD_H1_{kind}.csv"
        write_bars(out[kind], kind)
    return out


@pytest.mark.parametrize("kind, row, column, what", [
    ("spike", ROW, "high", "robust standard deviations"),  # the column that moved most
    ("huge", ROW, "open", "robust standard deviations"),
    ("hole", ROW, "time", "a hole of 730.0 days"),
    ("mixedtz", ROW, "time", "mixed"),
])
def test_wrong_data_is_an_error_naming_file_row_and_column(files, kind, row, column, what) -> None:
    with pytest.raises(DataError) as err:
        load_bars(files[kind])
    e = err.value
    assert (e.file, e.row, e.column) == (str(files[kind]), row, column)
    assert what in str(e) and "--fx.accept-anomalies" in str(e)
    with pytest.warns(DataAnomalyWarning, match=r"accepted \d+ data anomal"):
        bars = load_bars(files[kind], checks=DataChecks(accept=True))
    assert len(bars) == 6000


def test_limits_and_real_data_pass(files) -> None:
    assert len(load_bars(files["good"])) == 6000  # weekends, news-sized moves: no anomaly
    assert len(load_bars(files["spike"], checks=DataChecks(max_return_sigmas=0))) == 6000  # 0 = no check
    assert len(load_bars(files["hole"], checks=DataChecks(max_gap_days=1000))) == 6000


@pytest.mark.parametrize("kind", ["spike", "hole", "mixedtz"])
def test_the_training_command_refuses_it_in_one_line_before_work(files, kind, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--data", str(files[kind]), *H1, "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    (line,) = [e for e in err.splitlines() if e.startswith("error:")]
    assert exit_.value.code == 2 and f"{files[kind]}: row {ROW}" in line and "Traceback" not in err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_accepted_knowingly_it_validates_with_a_warning_that_counts(files, tmp_path) -> None:
    cfg = parse_args(["--data", str(files["spike"]), *H1, "--out-dir", str(tmp_path), "--fx.accept-anomalies"])
    with pytest.warns(DataAnomalyWarning, match=r"accepted 2 data anomalies \(2 move\(s\) beyond the limit\)"):
        validate(cfg)  # the bar at 1000x, and the next one's move back
