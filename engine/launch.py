"""Starting a run: validate everything, decide what to do with the out dir, launch Fabric, run on each rank.

``launch(cfg, hooks, loggers)`` is the engine's entry point; the command modules
(``python -m engine.ppo`` ...) decide which hooks and loggers a config asks for and call it.
Bad input (flags, the env's data, the out dir, a checkpoint, a used out dir the command
would mix or lose (:mod:`engine.rundir`), misspelled hook events) fails here, before any work
starts and before any file changes, with one line naming the flag or file. ``loggers`` may
be a function of the :class:`engine.rundir.RunPlan`, so that a continued run's loggers
continue its log version and W&B/MLflow run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lightning.fabric import Fabric
from lightning.fabric.loggers import Logger

from engine import registry
from engine.config import config_to_dict, validate_run_config
from engine.events import HookBus
from engine.loop import Run
from engine.rundir import RunPlan, clear_run, plan_run
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


def active_hparams(cfg: Any) -> dict[str, Any]:
    """The config as a dict without the sections of registered parts this run does not use (the other
    algorithms', policies' and env families' settings): what the loggers record as hyper-parameters."""
    used = {registry.algorithm(cfg.algo).section, registry.policy(cfg.policy).section}
    family = registry.env_family(cfg.env)
    if family is not None:
        used.add(family.section)
    unused = ({e.section for e in registry.ALGORITHMS.values()} | {e.section for e in registry.POLICIES.values()}
              | {f.section for f in registry.ENV_FAMILIES.values()}) - used
    return {k: v for k, v in config_to_dict(cfg).items() if k not in unused}


def _run_on_rank(fabric: Fabric, cfg: Any, hooks: Sequence[Any], plan: RunPlan) -> dict[str, Any]:
    run = Run(cfg, fabric, hooks, plan)
    if plan.resume_path is not None:
        run.load_checkpoint(plan.resume_path)
    hparams = active_hparams(cfg)  # logged once the checkpoint fits: a refused resume leaves the logs alone
    for logger in fabric.loggers:  # the loggers write on rank 0 only
        logger.log_hyperparams(hparams)
    return run.train()


LoggersArg = Sequence[Logger] | Callable[[RunPlan], Sequence[Logger]]


def launch(cfg: Any, hooks: Sequence[Any] = (), loggers: LoggersArg = ()) -> dict[str, Any]:
    """Validate ``cfg``, decide what to do with its out dir, then train on every rank with ``hooks``
    (in dispatch order) and ``loggers`` (a list, or a function of the run plan returning one).

    Returns the summary dict (also written to ``<out_dir>/summary.json``)."""
    validate(cfg)
    check_out_dir(cfg.out_dir)
    plan = plan_run(cfg)  # refuses to mix or lose a run; a bad checkpoint fails now, naming it
    hooks = list(hooks)
    HookBus(hooks)  # misspelled event names and unsupported signatures fail before any work
    if plan.overwrite:
        clear_run(cfg.out_dir)
    fabric = make_fabric(cfg, loggers(plan) if callable(loggers) else loggers)
    # launch(fn) covers every launcher: in-process, subprocess (ddp re-runs the command) and spawn
    return fabric.launch(_run_on_rank, cfg, hooks, plan)
