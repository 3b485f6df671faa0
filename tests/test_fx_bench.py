"""The env benchmark runs end to end and reports positive throughputs for every column it has."""

from __future__ import annotations

import importlib.util

from envs.fx.bench import format_table, run_env_bench


def test_run_env_bench_small():
    res = run_env_bench((1, 8), steps=15, seed=0, n_bars=3_000, max_seconds=1.0, verbose=False)
    for n in (1, 8):
        assert res["fx_price"][n] > 0 and res["fx_full"][n] > 0
    if importlib.util.find_spec("gym_anytrading") is None:
        assert "gym-anytrading not installed" in res["anytrading_error"] and not res["ratio"]
    else:
        assert res["anytrading_error"] is None
        assert res["ratio"][8] == res["fx_price"][8] / res["anytrading"][8]
    table = format_table(res)
    assert "FxVectorEnv price" in table and len(table.splitlines()) >= 4
