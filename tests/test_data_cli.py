"""Training on a bar file with --data, and a bad file failing before any work with file/row/column."""

import subprocess
import sys

from envs.fx.data import save_bars
from envs.fx.synthetic import generate
from engine.ppo import parse_args, train
from tests.paths import ROOT



def test_train_on_a_csv_file(tmp_path):
    csv = tmp_path / "eurusd_m1.csv"
    save_bars(generate("ou", 12_000, seed=3), csv)
    cfg = parse_args(["--data", str(csv), "--policy", "mlp", "--total-steps", "256", "--num-envs", "4",
                      "--rollout-steps", "32", "--out-dir", str(tmp_path / "run"), "--report-split", "none",
                      "--hooks.eval-every", "0", "--hooks.no-progress"])
    summary = train(cfg)
    assert summary["global_step"] == 256
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_bad_data_file_fails_before_training_naming_row_and_column(tmp_path):
    csv = tmp_path / "bad.csv"
    save_bars(generate("gbm", 3000, seed=1), csv)
    rows = csv.read_text().splitlines()
    header = [c.strip().lower() for c in rows[0].split(",")]
    fields = rows[3].split(",")
    fields[header.index("high")] = "0.5"  # high below open/close on data row 3
    rows[3] = ",".join(fields)
    csv.write_text("\n".join(rows) + "\n")
    res = subprocess.run([sys.executable, "-m", "engine.ppo", "--data", str(csv), "--out-dir", str(tmp_path / "o"),
                          "--hooks.no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "bad.csv" in res.stderr and "row 3" in res.stderr and "'high'" in res.stderr, res.stderr
    assert not (tmp_path / "o").exists()  # nothing created before the error
