"""Starting a run: validate everything, lock and plan the out dir, launch Fabric, run on each rank.

``launch(cfg, hooks, loggers)`` is the engine's entry point; the command modules
(``python -m engine.ppo`` ...) decide which hooks and loggers a config asks for and call it.
Bad input (every numeric flag's range and finiteness (:mod:`engine.ranges`), the flags that
bound each other, the devices the flags ask for, the env's data, the out dir, a checkpoint, a
used out dir the command would mix or lose (:mod:`engine.rundir`), misspelled hook events)
fails here, before any work starts and before any file changes, with one line naming the flag
or file. ``loggers`` may be a function of the :class:`engine.rundir.RunPlan`, so that a
continued run's loggers continue its log version and W&B/MLflow run.

While it runs, the out dir is locked against a second run (:mod:`engine.lock`), temp files a
killed writer left there are removed, and SIGTERM/SIGINT stop the run after the current cycle
with a checkpoint (:mod:`engine.signals`; :class:`engine.errors.Interrupted` is raised after it).
When training fails, the loggers are closed (their rows flushed), ``summary.json`` says what
failed, and the exception carries ``last_checkpoint`` (also in a note under its traceback).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from lightning.fabric import Fabric
from lightning.fabric.loggers import Logger

from engine import registry
from engine import signals as stop_signals
from engine.checkpoint import find_latest_valid
from engine.config import config_to_dict, validate_run_config
from engine.errors import Interrupted, signal_name
from engine.events import HookBus
from engine.files import remove_stale_temps
from engine.lock import RunLock
from engine.loop import Run
from engine.rundir import RunPlan, clear_run, env_rank, plan_run
from engine.vec import check_gym_id

ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps")


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
    """Every check that needs no Fabric: every numeric flag's range, then the flags that bound each other,
    the devices, algorithm and policy settings, the env (its data too)."""
    validate_run_config(cfg)  # every numeric flag's range first (engine.ranges), then the engine's own flags
    for section in vars(cfg).values():  # a config section may check itself (what its flags ask of each other)
        if dataclasses.is_dataclass(section) and callable(getattr(section, "check", None)):
            section.check()
    check_devices(cfg)
    algo = registry.algorithm(cfg.algo)
    algo.cls.check_config(registry.section(cfg, algo.section), cfg.rollout_steps * cfg.num_envs, f"--{algo.section}")
    registry.section(cfg, registry.policy(cfg.policy).section)
    family = registry.env_family(cfg.env)
    if family is not None:
        family.validate(cfg)  # bad market data or env settings fail here, naming the file/row/column or flag
    else:
        check_gym_id(cfg.env)


def launcher_detected() -> bool:
    """Whether a multi-node launcher started this process (torchrun, SLURM, LSF, MPI, Kubeflow), or the
    variables of a hand-started node (``MASTER_ADDR`` and ``NODE_RANK``) are set."""
    from lightning.fabric.plugins import environments as envs

    kinds = (envs.TorchElasticEnvironment, envs.SLURMEnvironment, envs.LSFEnvironment, envs.MPIEnvironment,
             envs.KubeflowEnvironment)
    for kind in kinds:
        try:
            if kind.detected():
                return True
        except Exception:  # noqa: BLE001  (a detector that cannot tell counts as absent)
            continue
    return bool(os.environ.get("MASTER_ADDR")) and bool(os.environ.get("NODE_RANK"))


def check_devices(cfg: Any) -> None:
    """What the flags ask of the machine: an accelerator that exists here, no more devices than it has, a known
    strategy, and a launcher for several nodes (each raises one line naming the flag)."""
    from lightning.fabric.strategies import STRATEGY_REGISTRY

    acc = str(cfg.accelerator)
    if acc not in ACCELERATORS:
        raise ValueError(f"--accelerator: unknown value {acc!r}; choose from {', '.join(ACCELERATORS)}")
    strategies = ("auto", *STRATEGY_REGISTRY.available_strategies())
    if cfg.strategy not in strategies:
        raise ValueError(f"--strategy: unknown value {cfg.strategy!r}; choose from {', '.join(strategies[:6])}, ...")
    cuda = torch.cuda.is_available()
    if acc in ("cuda", "gpu"):
        if not cuda:
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
            raise ValueError(f"--accelerator {acc}: {why} on this machine; use --accelerator cpu (or auto)")
        if cfg.devices > torch.cuda.device_count():
            raise ValueError(f"--devices: must be in [1, {torch.cuda.device_count()}] with --accelerator {acc} "
                             f"(the CUDA devices of this machine; got {cfg.devices})")
    if acc == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--accelerator mps: MPS is not available on this machine; use --accelerator cpu (or auto)")
    if acc == "cpu" or (acc == "auto" and not cuda):
        cpus = os.cpu_count() or 1
        if cfg.devices > cpus:
            raise ValueError(f"--devices: must be in [1, {cpus}] on the CPU (one process per device, {cpus} cores "
                             f"here; got {cfg.devices})")
    if cfg.num_nodes > 1 and not launcher_detected():
        raise ValueError(f"--num-nodes {cfg.num_nodes}: a multi-node run must be started on every node by a launcher "
                         f"(torchrun --nnodes, srun, mpirun; or MASTER_ADDR and NODE_RANK set by hand); none "
                         f"was detected, so it would wait for the other nodes forever")


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
    stop_signals.attach(run)
    try:
        return run.train()
    except BaseException as exc:
        newest = run.checkpoints.newest
        last = str(newest) if newest is not None and newest.exists() else _last_good(cfg.out_dir)
        run.record_failure(exc, last)
        exc.during_training = True  # type: ignore[attr-defined]  (the command's handler tells bugs from bad input)
        exc.last_checkpoint = last  # type: ignore[attr-defined]
        exc.add_note(f"last good checkpoint: {last} (continue with --resume auto)" if last
                     else "no checkpoint was written")
        raise
    finally:
        stop_signals.detach()


def _last_good(out_dir: str | os.PathLike) -> str | None:
    try:
        found = find_latest_valid(out_dir)
    except Exception:  # noqa: BLE001  (looking for it must not replace the real error)
        return None
    return str(found) if found is not None else None


LoggersArg = Sequence[Logger] | Callable[[RunPlan], Sequence[Logger]]


def launch(cfg: Any, hooks: Sequence[Any] = (), loggers: LoggersArg = ()) -> dict[str, Any]:
    """Validate ``cfg``, decide what to do with its out dir, then train on every rank with ``hooks``
    (in dispatch order) and ``loggers`` (a list, or a function of the run plan returning one).

    Returns the summary dict (also written to ``<out_dir>/summary.json``); raises
    :class:`engine.errors.Interrupted` (after the checkpoint) when SIGTERM/SIGINT stopped the run."""
    validate(cfg)
    hooks = list(hooks)
    HookBus(hooks)  # misspelled event names and unsupported signatures fail before any work
    with stop_signals.StopOnSignals():
        check_out_dir(cfg.out_dir)
        first = env_rank() == 0  # the other processes of a multi-process run share rank 0's lock
        with RunLock(cfg.out_dir) if first else nullcontext() as lock:
            if lock is not None:
                _note(lock.stale_note())
                removed = remove_stale_temps(cfg.out_dir)
                if removed:
                    _note(f"removed {len(removed)} temp file(s) ({sum(n for _, n in removed) / 1e6:.1f} MB) left in "
                          f"{cfg.out_dir} by an interrupted save")
            plan = plan_run(cfg)  # refuses to mix or lose a run; a bad checkpoint fails now, naming it
            if plan.overwrite:
                clear_run(cfg.out_dir)
            fabric = make_fabric(cfg, loggers(plan) if callable(loggers) else loggers)
            # launch(fn) covers every launcher: in-process, subprocess (ddp re-runs the command) and spawn
            summary = fabric.launch(_run_on_rank, cfg, hooks, plan)
    if isinstance(summary, dict) and summary.get("signal"):
        signum = int(signal.Signals[summary["signal"]])
        raise Interrupted(signum, f"stopped by {signal_name(signum)} at step {summary.get('global_step')}; "
                                  f"checkpoint {summary.get('last_checkpoint')} (continue with --resume auto)",
                          summary)
    return summary


def _note(line: str | None) -> None:
    if line and env_rank() == 0:
        print(f"note: {line}", file=sys.stderr)
