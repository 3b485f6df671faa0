"""BacktestReportHook: at the end of an FX run, backtest the trained policy and write the report.

Rank 0 runs the deterministic policy over a held-out split (``test`` by default) next to the
baselines (:func:`envs.fx.research.backtest.backtest_report`), writes
``report.json`` and the PNGs into ``<out_dir>/report/``, and adds the headline figures to
the run's summary (``summary.json``) under ``backtest``. A run stopped by SIGTERM/SIGINT skips the
report (its process is about to be killed): ``python -m engine.backtest`` writes it from the checkpoint.
"""

from __future__ import annotations

from typing import Any

from engine.events import Hook
from envs.fx.market import make_fx_eval_env
from envs.fx.research.backtest import backtest_report


class BacktestReportHook(Hook):
    def __init__(self, split: str = "test", subdir: str = "report") -> None:
        self.split = split
        self.subdir = subdir
        self.run: Any = None
        self.result: dict[str, Any] | None = None

    def on_training_start(self, run: Any) -> None:
        self.run = run

    def on_training_end(self, summary: dict) -> None:
        run = self.run
        if run is None or not run.is_global_zero:
            return
        if summary.get("signal"):
            summary["backtest"] = {"skipped": f"stopped by {summary['signal']}: write the report with python -m "
                                              f"engine.backtest --ckpt {summary.get('last_checkpoint')}"}
            return
        fx = run.cfg.fx

        def env_factory(num_envs: int = 1) -> Any:
            return make_fx_eval_env(fx, split=self.split, seed=run.cfg.seed, device=run.device, num_envs=num_envs)

        policy = run.policy_fn()
        self.result = backtest_report(lambda obs, info: policy(obs), env_factory, run.out_dir / self.subdir,
                                      split=self.split, extra={"reward_weights": fx.reward_weights()})
        m, base = self.result["metrics"], self.result["baselines"]
        summary["backtest"] = {
            "split": self.split,
            "report": str(run.out_dir / self.subdir / "report.json"),
            "verdict": self.result["verdict"],
            "verdict_line": self.result["verdict_line"],
            "sharpe_ci": self.result["sharpe_ci"],
            "psr": self.result["psr"],
            **{k: m.get(k) for k in ("sharpe", "total_return", "max_drawdown", "turnover", "n_trades",
                                      "costs_paid")},
            "baseline_sharpe": {name: b.get("sharpe") for name, b in base.items()},
            "best_baseline": self.result.get("best_baseline"),
        }
