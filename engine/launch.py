"""Starting a run: validate the config, prepare the out dir, launch Fabric, build hooks and loggers.

``train(cfg, hooks)`` is what ``python -m engine.ppo`` calls. Bad input (flags, the out dir,
an explicitly named checkpoint, misspelled hook events) fails here, before any work starts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lightning.fabric import Fabric

from engine.config import TrainConfig, config_to_dict
from engine.events import HookBus
from engine.loop import Run
from hooks.continuous import resolve_resume


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` and prove it writable, before any work starts."""
    path = Path(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_probe_{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"--out-dir {str(path)!r} is not writable: {exc.strerror or exc}") from exc
    return path


def make_fabric(cfg: TrainConfig, hooks: Sequence[Any]) -> Fabric:
    strategy = cfg.strategy
    if strategy == "auto" and cfg.devices * cfg.num_nodes > 1:
        strategy = "ddp"
    return Fabric(accelerator=cfg.accelerator, devices=cfg.devices, strategy=strategy, num_nodes=cfg.num_nodes,
                  precision=cfg.precision, callbacks=list(hooks))


def _run_on_rank(fabric: Fabric, cfg: TrainConfig, user_hooks: Sequence[Any],
                 resume_path: Path | None) -> dict[str, Any]:
    from hooks import build_default_hooks, make_loggers

    # loggers are made here, once the rank is known (only rank 0 starts a W&B run)
    fabric._loggers = make_loggers(cfg.hooks.loggers, cfg.out_dir, Path(cfg.out_dir).name, config_to_dict(cfg),
                                   online=cfg.hooks.wandb_online, project=cfg.hooks.wandb_project,
                                   is_global_zero=fabric.is_global_zero)
    builtin = build_default_hooks(cfg.hooks, has_eval=True) if cfg.builtin_hooks else []
    if cfg.env == "fx" and cfg.report_split != "none":
        from hooks.backtest_report import BacktestReportHook

        builtin.append(BacktestReportHook(split=cfg.report_split))
    hooks = [*builtin, *user_hooks]
    run = Run(cfg, fabric, hooks)
    if resume_path is not None:
        run.load_checkpoint(resume_path)
    return run.train()


def train(cfg: TrainConfig, hooks: Iterable[Any] = ()) -> dict[str, Any]:
    """Train with ``cfg``; ``hooks`` are added after the default ones. Returns the summary dict."""
    if cfg.data is not None:
        if cfg.env != "fx":
            raise ValueError(f"--data: bar files are for the FX env, but --env is {cfg.env!r}")
        if not Path(cfg.data).is_file():
            raise ValueError(f"--data: file {cfg.data} does not exist")
        cfg = dataclasses.replace(cfg, fx=dataclasses.replace(cfg.fx, data=cfg.data))
    validate_config(cfg)
    if cfg.env == "fx":  # bad market data or FX settings fail here, naming the file/row/column or flag
        from envs import load_market

        cfg.fx.validate()
        load_market(cfg.fx)
    check_out_dir(cfg.out_dir)
    resume_path = resolve_resume(cfg.resume, cfg.out_dir)  # a bad explicit checkpoint fails now, naming it
    user_hooks = list(hooks)
    HookBus(user_hooks)  # misspelled event names fail before any work
    fabric = make_fabric(cfg, user_hooks)
    # launch(fn) covers every launcher: in-process, subprocess (ddp re-runs the command) and spawn
    return fabric.launch(_run_on_rank, cfg, user_hooks, resume_path)


def validate_config(cfg: TrainConfig) -> None:
    """Reject bad flag values with a message naming the flag, before any work starts."""
    def need(ok: bool, flag: str, msg: str) -> None:
        if not ok:
            raise ValueError(f"{flag}: {msg}")

    need(cfg.total_steps > 0, "--total-steps", f"must be > 0 (got {cfg.total_steps})")
    need(cfg.num_envs > 0, "--num-envs", f"must be > 0 (got {cfg.num_envs})")
    need(cfg.rollout_steps > 0, "--rollout-steps", f"must be > 0 (got {cfg.rollout_steps})")
    need(cfg.devices > 0, "--devices", f"must be > 0 (got {cfg.devices})")
    need(cfg.num_nodes > 0, "--num-nodes", f"must be > 0 (got {cfg.num_nodes})")
    need(cfg.precision in ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true"),
         "--precision", f"unknown value {cfg.precision!r}")
    if cfg.algo == "ppo":
        p = cfg.ppo
        need(p.num_minibatches > 0, "--ppo.num-minibatches", "must be > 0")
        need((cfg.rollout_steps * cfg.num_envs) % p.num_minibatches == 0, "--ppo.num-minibatches",
             f"rollout_steps * num_envs = {cfg.rollout_steps * cfg.num_envs} is not divisible by {p.num_minibatches}")
        need(p.update_epochs > 0, "--ppo.update-epochs", "must be > 0")
        need(p.clip_coef > 0, "--ppo.clip-coef", "must be > 0")
        need(p.ent_coef >= 0, "--ppo.ent-coef", f"must be >= 0 (got {p.ent_coef})")
        need(p.ent_coef_final is None or p.ent_coef_final >= 0, "--ppo.ent-coef-final",
             f"must be >= 0 (got {p.ent_coef_final})")
        need(0 <= p.ent_anneal_start < 1, "--ppo.ent-anneal-start", f"must be in [0, 1) (got {p.ent_anneal_start})")
    need(0 < cfg.algo_cfg.gamma <= 1, f"--{cfg.algo}.gamma", f"must be in (0, 1] (got {cfg.algo_cfg.gamma})")
    need(0 <= cfg.algo_cfg.gae_lambda <= 1, f"--{cfg.algo}.gae-lambda", "must be in [0, 1]")
    need(cfg.algo_cfg.learning_rate > 0, f"--{cfg.algo}.learning-rate", "must be > 0")
