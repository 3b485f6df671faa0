"""Run directories: one run per ``--out-dir``, continued or refused, never silently overwritten.

Before any work, :func:`plan_run` decides what a command does with its out dir and returns a
:class:`RunPlan` (which checkpoint to continue, the run's identity for the loggers):

============================  =================================================================
out dir                       what happens
============================  =================================================================
holds no run                  a fresh run (``--resume PATH`` forks that checkpoint into it)
holds a run, no ``--resume``  continues its newest valid checkpoint when the settings match
                              (:func:`engine.config.config_diff`: everything but the fields a
                              session may change, such as ``--total-steps`` to extend the run);
                              otherwise refused, naming the differences and the choices
``--resume auto``             continues the newest valid checkpoint, with the new settings
``--resume best``             continues the run's best checkpoint (the top-k hook's best)
``--resume PATH``             continues that checkpoint (it must belong to this out dir)
``--overwrite``               removes the old run's files (:data:`RUN_ENTRIES`), then a fresh run
============================  =================================================================

A directory *holds a run* when any of :data:`RUN_ENTRIES` exists in it. A run keeps one
identity across all its sessions (resumes, extensions): its ``run_id`` (the W&B run id),
its log ``version`` (the CSV/TensorBoard ``version_<n>`` directory; 0 for a new run) and the
versions its loggers reported (MLflow's run id), all stored in every checkpoint
(``ckpt["run"]``); ``resumes`` counts the sessions that continued it. Metrics a killed
session logged after its last checkpoint are dropped when the run continues
(``resume_step``), so each step is logged once.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import registry
from engine.checkpoint import CheckpointError, find_latest_valid, read_checkpoint
from engine.config import config_diff, config_to_dict

RUN_ENTRIES: tuple[str, ...] = ("checkpoints", "summary.json", "logs", "wandb", "mlflow.db", "mlartifacts",
                                "report", "profiler")
"""What a run writes into its out dir (and ``--overwrite`` removes)."""

CHOICES = "continue it with --resume auto, start over with --overwrite, or choose a new --out-dir"


@dataclass
class RunPlan:
    """What a command does with its out dir (the same on every rank)."""

    resume_path: Path | None = None
    """The checkpoint to continue (None: a fresh start)."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    """The run's id, kept across sessions (the W&B run id)."""
    version: int = 0
    """The run's log version (CSV/TensorBoard ``version_<n>``), kept across sessions."""
    resumes: int = 0
    """Sessions that continued the run before this one."""
    loggers: dict[str, str] = field(default_factory=dict)
    """Logger class name -> the version it reported (MLflow: its run id), from the checkpoint."""
    resume_step: int | None = None
    """The continued checkpoint's global step: logged metrics after it are dropped."""
    overwrite: bool = False
    """Remove the old run's files before starting (:func:`clear_run`)."""
    forked_from: str | None = None
    """A checkpoint of another directory this fresh run starts from."""


def run_entries(out_dir: str | os.PathLike) -> list[str]:
    """The :data:`RUN_ENTRIES` present in ``out_dir`` (empty: it holds no run)."""
    out = Path(out_dir)
    return [e for e in RUN_ENTRIES if (out / e).exists()]


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
        return True
    except ValueError:
        return False


def _identity(ckpt: dict[str, Any], path: Path, total_steps: int | None = None) -> RunPlan:
    if total_steps is not None and int(ckpt["global_step"]) >= total_steps:
        warnings.warn(f"the run continued from {path} is at step {ckpt['global_step']}, already at --total-steps "
                      f"{total_steps}: nothing to train (raise --total-steps to extend it)", stacklevel=3)
    rec = ckpt.get("run") or {}
    plan = RunPlan(resume_path=path, resume_step=int(ckpt["global_step"]))
    if rec.get("id"):
        plan.run_id = str(rec["id"])
    plan.version = int(rec.get("version", 0) or 0)
    plan.resumes = int(rec.get("resumes", 0) or 0)
    plan.loggers = {str(k): str(v) for k, v in (rec.get("loggers") or {}).items()}
    return plan


def check_settings_fit(cfg: Any, ckpt: dict[str, Any], path: Path) -> None:
    """The parts of the checkpoint's fit check that need no env (env, algorithm, policy and its
    network, observation normalisation): a mismatch fails before any file is touched."""
    meta = ckpt.get("meta") or {}
    section = registry.section(cfg, registry.policy(cfg.policy).section)
    ours = {"env": cfg.env, "algo": cfg.algo, "policy": cfg.policy, "norm_obs": bool(cfg.norm_obs),
            "network": json.dumps(config_to_dict(section), sort_keys=True)}
    diffs = [f"{k}: checkpoint {meta.get(k)!r} vs this run {v!r}" for k, v in ours.items()
             if k in meta and meta.get(k) != v]
    if diffs:
        raise CheckpointError(f"checkpoint {path} does not fit this run:\n  " + "\n  ".join(diffs))


def plan_run(cfg: Any) -> RunPlan:
    """Decide, reading only, what to do with ``cfg.out_dir`` (see the module doc).

    Raises ValueError (one line naming the choices) when the command would mix or lose a run,
    CheckpointError for an unreadable or unfitting checkpoint."""
    out = Path(cfg.out_dir)
    resume = None if cfg.resume is None or str(cfg.resume).strip() == "" else str(cfg.resume)
    overwrite = bool(getattr(cfg, "overwrite", False))
    present = run_entries(out)
    explicit = resume not in (None, "auto", "best")
    path = Path(resume) if explicit else None
    if explicit:
        if not path.exists():
            raise CheckpointError(f"--resume {path}: checkpoint {path} does not exist")
        if path.is_dir():
            raise CheckpointError(f"--resume {path}: {path} is a directory, not a checkpoint file "
                                  f"(use --resume auto)")
    if overwrite:
        if resume in ("auto", "best"):
            raise ValueError(f"--overwrite starts the run in {out} over; it cannot be combined with --resume {resume}")
        if explicit and _inside(path, out):
            raise ValueError(f"--overwrite would remove --resume {path} (it is inside --out-dir {out}); "
                             f"copy it elsewhere first")
    if not present or overwrite:
        plan = RunPlan(overwrite=bool(present))
        if explicit:
            ckpt = read_checkpoint(path)
            check_settings_fit(cfg, ckpt, path)
            plan.resume_path, plan.forked_from = path, str(path)
        return plan

    where = f"--out-dir {out} holds a run ({', '.join(present)})"
    if explicit:
        if not _inside(path, out):
            raise ValueError(f"{where}; --resume {path} is another run's checkpoint: continue this run with "
                             f"--resume auto, start over from that checkpoint with --overwrite, or choose a new "
                             f"--out-dir")
        ckpt = read_checkpoint(path)
        check_settings_fit(cfg, ckpt, path)
        return _identity(ckpt, path, cfg.total_steps)
    latest = find_latest_valid(out)
    if latest is None:
        raise ValueError(f"{where} with no valid checkpoint to continue; start over with --overwrite or choose a "
                         f"new --out-dir")
    ckpt = read_checkpoint(latest)
    if resume == "best":
        best = ckpt.get("best_checkpoint")
        if not best:
            raise ValueError(f"--resume best: the run in {out} recorded no best checkpoint (top-k checkpoints need "
                             f"--hooks.save-top-k > 0 and a --hooks.monitor metric); use --resume auto")
        best_path = Path(best)
        try:
            ckpt = read_checkpoint(best_path)
        except CheckpointError as exc:
            raise ValueError(f"--resume best: {exc}") from None
        check_settings_fit(cfg, ckpt, best_path)
        return _identity(ckpt, best_path, cfg.total_steps)
    check_settings_fit(cfg, ckpt, latest)
    if resume is None:
        diffs = config_diff(cfg, ckpt.get("config") or {})
        if diffs:
            shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
            raise ValueError(f"{where} trained with other settings ({shown}); {CHOICES}")
    return _identity(ckpt, latest, cfg.total_steps)


def env_rank() -> int:
    """This process's global rank as the launcher set it (0 when launched plainly)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(var, "").strip().isdigit():
            return int(os.environ[var])
    return 0


def clear_run(out_dir: str | os.PathLike) -> None:
    """Remove the run's entries from ``out_dir``: each is first renamed (atomically) into a hidden
    sibling directory, which is then deleted, so the out dir never holds part of the old run and
    part of the new one. Rank 0 only."""
    out = Path(out_dir)
    present = run_entries(out)
    if not present or env_rank() != 0:
        return
    trash = out.parent / f".{out.name}.overwritten-{os.getpid()}-{time.time_ns()}"
    trash.mkdir()
    for entry in present:
        os.replace(out / entry, trash / entry)
    shutil.rmtree(trash, ignore_errors=True)
