"""A baseline that the action space cannot express is skipped with a warning, never silently replaced."""

import dataclasses

import pytest
import torch

from envs.fx.research.backtest import backtest_report
from envs.fx.research.baselines import target_to_action
from envs.fx import make_fx_eval_env
from envs.fx.config import FxEnvConfig


def test_flat_baseline_needs_a_zero_level(tmp_path):
    cfg = dataclasses.replace(FxEnvConfig(), synthetic_n_bars=20_000, position_levels=(-1.0, 1.0))

    def factory():
        return make_fx_eval_env(cfg, split="test", seed=0)

    with pytest.raises(ValueError, match="cannot express target 0.0"):
        target_to_action(0.0, factory())
    always_long = lambda obs, info: torch.tensor([1])  # noqa: E731  level index 1 = +1
    with pytest.warns(UserWarning, match="baseline flat skipped"):
        result = backtest_report(always_long, factory, tmp_path)
    assert "flat" not in result["baselines"] and "flat" in result["baselines_skipped"]
    # momentum, MACD and the z-score rule also go flat when they have no signal, so they are skipped too
    assert set(result["baselines"]) == {"buy_and_hold", "random"}
    assert set(result["baselines_skipped"]) == {"flat", "momentum", "macd", "zscore"}
    # the policy is buy-and-hold itself here: same metrics
    assert result["metrics"]["total_return"] == pytest.approx(
        result["baselines"]["buy_and_hold"]["metrics"]["total_return"])
