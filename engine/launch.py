"""Starting a run: validate everything, prepare the out dir, launch Fabric, run on each rank.

``launch(cfg, hooks, loggers)`` is the engine's entry point; the command modules
(``python -m engine.ppo`` ...) decide which hooks and loggers a config asks for and call it.
Bad input (flags, the env's data, the out dir, an explicitly named checkpoint, misspelled
hook events) fails here, before any work starts, with one line naming the flag or file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.fabric import Fabric
from lightning.fabric.loggers import Logger

from engine import registry
from engine.checkpoint import resolve_resume
from engine.config import config_to_dict, validate_run_config
from engine.events import HookBus
from engine.loop import Run
from engine.vec import check_gym_id


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


def validate(cfg: Any) -> None:
    """Every check that needs no Fabric: flags, algorithm and policy settings, the env (its data too)."""
    validate_run_config(cfg)
    algo = registry.algorithm(cfg.algo)
    algo.cls.check_config(registry.section(cfg, algo.section), cfg.rollout_steps * cfg.num_envs, f"--{algo.section}")
    registry.section(cfg, registry.policy(cfg.policy).section)
    family = registry.env_family(cfg.env)
    if family is not None:
        family.validate(cfg)  # bad market data or env settings fail here, naming the file/row/column or flag
    else:
        check_gym_id(cfg.env)


def make_fabric(cfg: Any, loggers: Sequence[Logger] = ()) -> Fabric:
    strategy = cfg.strategy
    if strategy == "auto" and cfg.devices * cfg.num_nodes > 1:
        strategy = "ddp"
    return Fabric(accelerator=cfg.accelerator, devices=cfg.devices, strategy=strategy, num_nodes=cfg.num_nodes,
                  precision=cfg.precision, loggers=list(loggers))


def _run_on_rank(fabric: Fabric, cfg: Any, hooks: Sequence[Any], resume_path: Path | None) -> dict[str, Any]:
    hparams = config_to_dict(cfg)
    for logger in fabric.loggers:  # the loggers write on rank 0 only
        logger.log_hyperparams(hparams)
    run = Run(cfg, fabric, hooks)
    if resume_path is not None:
        run.load_checkpoint(resume_path)
    return run.train()


def launch(cfg: Any, hooks: Sequence[Any] = (), loggers: Sequence[Logger] = ()) -> dict[str, Any]:
    """Validate ``cfg``, then train on every rank with ``hooks`` (in dispatch order) and ``loggers``.

    Returns the summary dict (also written to ``<out_dir>/summary.json``)."""
    validate(cfg)
    check_out_dir(cfg.out_dir)
    resume_path = resolve_resume(cfg.resume, cfg.out_dir)  # a bad explicit checkpoint fails now, naming it
    hooks = list(hooks)
    HookBus(hooks)  # misspelled event names fail before any work
    fabric = make_fabric(cfg, loggers)
    # launch(fn) covers every launcher: in-process, subprocess (ddp re-runs the command) and spawn
    return fabric.launch(_run_on_rank, cfg, hooks, resume_path)
