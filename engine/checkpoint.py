"""Checkpoints, in one place: what a run's checkpoint holds, how it is written and read, which
file ``--resume`` means, and whether a file fits a run.

* :class:`Checkpoints` belongs to a :class:`engine.loop.Run`: ``save(path)`` writes the run's
  full state (model, optimizer, algorithm counters, observation normaliser, hook states,
  every rank's env/RNG state, the clock, the config), ``save_last()`` writes
  ``<out_dir>/checkpoints/last.ckpt`` (once per step, whoever asks), ``load(path)`` restores a
  run exactly. Hooks decide *when* to save (periodically, top-k); this module decides *how*.
* Writes are atomic: ``fabric.save`` into a temp file of this writer (``<name>.<pid>.<hex>.tmp``,
  removed when the write fails; :mod:`engine.files`), fsync, then rename, so a crash (even
  SIGKILL) mid-write never leaves a half-written file under the final name, and two writers
  never share a temp file.
* Every checkpoint carries a content hash (``"integrity"``: SHA-256 over every tensor's bytes and
  every other value, in a fixed order), checked whenever a checkpoint is read: a flipped bit
  anywhere in its data makes it *corrupt* (named in the error; ``--resume auto`` skips it).
  Files without the entry (older FxAI) are read unchecked.
* After every save the run's loggers are flushed, so the metrics on disk reach the checkpoint.
* ``--resume auto`` continues the checkpoint with the highest step recorded *inside* it (ties:
  the first by path name), never the newest file by time: a backup copy with a fresh mtime
  cannot roll a run back. Only the small pickled part of each file is read to find the step.
* Every value is a tensor, number, string or container of those (RNG states are tensors), so
  a checkpoint loads with ``torch.load(weights_only=True)``: no pickled code runs.
* Older formats are converted when read (:mod:`engine.formats`; ``python -m engine.convert``
  writes the converted file).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from lightning.fabric.wrappers import is_wrapped

from engine import registry
from engine.config import class_path, config_to_dict
from engine.files import fsync_dir, temp_path
from engine.formats import CHECKPOINT_FORMAT, convert_checkpoint
from engine.state import to_cpu

if TYPE_CHECKING:
    from engine.loop import Run

CKPT_SUFFIX = ".ckpt"


INTEGRITY_KEY = "integrity"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the run (the message names the file)."""


# ---------------------------------------------------------------------------------------------
# integrity
# ---------------------------------------------------------------------------------------------
def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)};".encode())
        for k in sorted(obj, key=lambda k: (type(k).__name__, str(k))):
            _feed(h, k)
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)};".encode())
        for v in obj:
            _feed(h, v)
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def content_hash(state: dict[str, Any]) -> str:
    """SHA-256 of a checkpoint dict's content (every key but the hash itself), independent of how it is stored."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != INTEGRITY_KEY})
    return h.hexdigest()


def seal(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with its content hash added (what every checkpoint writer stores)."""
    state.pop(INTEGRITY_KEY, None)
    state[INTEGRITY_KEY] = {"sha256": content_hash(state)}
    return state


def verify(ckpt: dict[str, Any], path: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` naming ``path`` when its stored content hash does not match its content."""
    stored = ckpt.get(INTEGRITY_KEY)
    if stored is None:
        return
    want = stored.get("sha256") if isinstance(stored, dict) else None
    if want != content_hash(ckpt):
        raise CheckpointError(f"checkpoint {path} is corrupt: its content does not match the hash stored in it "
                              f"(a damaged copy or a failing disk); use another checkpoint")


def plain_state(fabric: Any, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with modules, optimizers and stateful objects replaced by their state dicts, as Fabric
    stores them (so that the hash covers exactly what is written)."""
    out: dict[str, Any] = {}
    for key, obj in state.items():
        if isinstance(obj, torch.nn.Module):
            out[key] = fabric.strategy.get_module_state_dict(obj.module if is_wrapped(obj) else obj)
        elif isinstance(obj, torch.optim.Optimizer):
            out[key] = fabric.strategy.get_optimizer_state(obj.optimizer if is_wrapped(obj) else obj)
        elif callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None)):
            out[key] = obj.state_dict()
        else:
            out[key] = obj
    return out


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
def save_atomic(fabric: Any, path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """``fabric.save`` of ``state`` with its content hash into a temp file, fsync, then rename over ``path``
    (rank 0 writes; a failed write removes its temp file).

    Every rank must call this (Fabric synchronises inside ``save``).
    """
    path = Path(path)
    tmp = temp_path(path) if fabric.is_global_zero else path.with_name(path.name + ".unused.tmp")
    if fabric.is_global_zero:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = seal(plain_state(fabric, state))
    fabric.barrier()
    try:
        fabric.save(tmp, state)
        if fabric.is_global_zero:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            fsync_dir(path.parent)  # make the rename itself durable
    except BaseException:
        if fabric.is_global_zero:
            tmp.unlink(missing_ok=True)
        raise
    fabric.barrier()
    return path


def read_checkpoint(path: str | os.PathLike, convert: bool = True) -> dict[str, Any]:
    """Load a checkpoint file into a plain dict, or raise :class:`CheckpointError` naming it.

    An older format is converted to the current one (``convert=False``: as stored); the dict
    then holds ``"converted_from"`` (the format of the file)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, wrong format ...
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {_short(exc)}") from exc
    if not isinstance(ckpt, dict) or "global_step" not in ckpt:
        raise CheckpointError(f"checkpoint {path} is not an FxAI checkpoint (no 'global_step' entry)")
    verify(ckpt, path)
    ckpt.pop(INTEGRITY_KEY, None)
    if convert:
        try:
            ckpt, found = convert_checkpoint(ckpt)
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {path} cannot be converted to the current format: {exc}") from exc
        if found != CHECKPOINT_FORMAT:
            ckpt["converted_from"] = found
    return ckpt


def _short(exc: BaseException) -> str:
    """``Type: first line of the message`` (torch's unpickling errors run to dozens of lines)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def peek_step(path: str | os.PathLike) -> int | None:
    """The global step recorded inside a checkpoint, reading only its small pickled part (the tensors are
    memory-mapped, not read); None when the file cannot be read that way."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(ckpt["global_step"])
    except Exception:  # noqa: BLE001  (truncated zip, bad pickle, not a checkpoint ...)
        return None


def find_latest_valid(directory: str | os.PathLike) -> Path | None:
    """The valid checkpoint under ``directory`` (recursively) with the highest step recorded inside it;
    ties go to the first by path name (``last.ckpt`` before ``step=...`` files). File times play no part.

    Unreadable, truncated and corrupt files are skipped with a warning; ``None`` when there is none.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    stepped: list[tuple[int, str, Path]] = []
    for p in directory.rglob(f"*{CKPT_SUFFIX}"):
        if not p.is_file():
            continue
        step = peek_step(p)
        if step is None:
            warnings.warn(f"skipping checkpoint {p}: corrupt or unreadable", stacklevel=2)
            continue
        stepped.append((step, str(p.relative_to(directory)), p))
    for _step, _name, p in sorted(stepped, key=lambda e: (-e[0], e[1])):
        try:
            read_checkpoint(p)
            return p
        except CheckpointError as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
    return None


def resolve_resume(resume: str | os.PathLike | None, out_dir: str | os.PathLike) -> Path | None:
    """The checkpoint ``--resume`` names, or ``None`` to start fresh.

    ``None`` or ``""`` -> ``None``; ``"auto"`` -> the valid checkpoint with the highest step under
    ``out_dir`` (``None`` when there is none); anything else is a path that must exist and
    be readable (:class:`CheckpointError` naming it otherwise).
    """
    if resume is None or str(resume).strip() == "":
        return None
    if str(resume) == "auto":
        return find_latest_valid(out_dir)
    path = Path(resume)
    if not path.exists():
        raise CheckpointError(f"--resume {path}: checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"--resume {path}: {path} is a directory, not a checkpoint file (use --resume auto)")
    read_checkpoint(path)  # raises CheckpointError naming the file when unreadable
    return path


def check_fits(path: str | os.PathLike, theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    """Raise :class:`CheckpointError` listing every entry of ``ours`` (the run's meta) that the
    checkpoint's meta ``theirs`` disagrees with."""
    diffs = [f"{k}: checkpoint {theirs.get(k)!r} vs this run {v!r}" for k, v in ours.items() if theirs.get(k) != v]
    if diffs:
        raise CheckpointError(f"checkpoint {path} does not fit this run:\n  " + "\n  ".join(diffs))


def flush_loggers(loggers: Any) -> None:
    """Write what each logger holds in memory to disk (Lightning's CSV logger otherwise writes only every
    100th step it is given, which the engine's step counts rarely hit). Failures only warn."""
    for logger in loggers:
        try:
            logger.save()
        except Exception as exc:  # noqa: BLE001  (a logger's own failure must not stop the run or its ending)
            warnings.warn(f"could not flush the {type(logger).__name__}: {exc}", stacklevel=2)


# ---------------------------------------------------------------------------------------------
# a run's checkpoints
# ---------------------------------------------------------------------------------------------
class Checkpoints:
    """Saves and restores one :class:`engine.loop.Run` (every rank calls ``save``/``load``)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.directory = Path(run.out_dir) / "checkpoints"
        self.last_path: Path | None = None
        self.best_path: str | None = None  # the best checkpoint so far (hooks say which: save(..., best=True))
        self._last_saved: tuple[str, int] | None = None  # (path, global_step) of the newest write
        self.newest: Path | None = None  # the checkpoint this session wrote or loaded last

    def meta(self) -> dict[str, Any]:
        """What must match for a checkpoint to fit the run."""
        run = self.run
        return {
            "env": run.cfg.env,
            "observation_space": repr(run.obs_space),
            "action_space": repr(run.action_space),
            "algo": run.cfg.algo,
            "policy": run.cfg.policy,
            "network": json.dumps(config_to_dict(run.policy_cfg), sort_keys=True),
            "norm_obs": bool(run.cfg.norm_obs),
        }

    def state(self) -> dict[str, Any]:
        """Everything a checkpoint holds (modules/optimizer/stateful objects are converted by Fabric)."""
        run = self.run
        local = to_cpu(run.rank_state())
        ranks: list[Any] = [local]
        if run.world_size > 1:
            ranks = [None] * run.world_size
            torch.distributed.all_gather_object(ranks, local)
        return {
            "format": CHECKPOINT_FORMAT,
            "run": run.run_record(),
            "best_checkpoint": self.best_path,
            "policy": run.algo.policy,
            "optimizer": run.algo.optimizer,
            "algo": run.algo,
            "obs_norm": run.normalizer.state_dict() if run.normalizer is not None else None,
            "hooks": run.bus.state_dict(),
            "ranks": ranks,
            "global_step": run.global_step,
            "cycle": run.cycle,
            "episodes": run.episodes,
            "recent_returns": list(run.recent_returns),
            "recent_lengths": list(run.recent_lengths),
            "config": config_to_dict(run.cfg),
            "config_class": class_path(run.cfg),
            "env_spec": to_cpu(family.spec(run.envs)) if (family := registry.env_family(run.cfg.env)) else None,
            "meta": self.meta(),
            "world_size": run.world_size,
        }

    def save(self, path: str | os.PathLike, best: bool = False) -> Path | None:
        """Atomic save of the full state; refuses (warns, returns None) a model with NaN/Inf weights.

        ``best=True``: this file becomes the run's best checkpoint (what ``--resume best`` continues;
        recorded in this and every later checkpoint)."""
        run = self.run
        if not all(torch.isfinite(p).all() for p in run.algo.policy.parameters()):
            warnings.warn(f"not writing checkpoint {path}: the model has NaN/Inf parameters", stacklevel=2)
            return None
        previous_best = self.best_path
        if best:
            self.best_path = str(path)
        try:
            path = save_atomic(run.fabric, path, self.state())
        except BaseException:
            self.best_path = previous_best
            raise
        self._last_saved = (str(path), run.global_step)
        if path.name == "last" + CKPT_SUFFIX:
            self.last_path = path
        self.newest = path
        if run.is_global_zero:
            flush_loggers(run.fabric.loggers)  # the metrics on disk reach the checkpoint
        run.fire("on_checkpoint_saved", {"path": str(path), "global_step": run.global_step})
        return path

    def save_last(self) -> Path | None:
        """``<out_dir>/checkpoints/last.ckpt`` at the current step (not rewritten when it already is)."""
        path = self.directory / f"last{CKPT_SUFFIX}"
        if self._last_saved == (str(path), self.run.global_step):
            return path
        return self.save(path)

    def load(self, path: str | os.PathLike) -> None:
        """Restore the run exactly: model, optimizer, scheduler, normaliser, hooks, envs, RNGs, clock."""
        run = self.run
        ckpt = read_checkpoint(path)
        check_fits(path, ckpt.get("meta", {}), self.meta())
        state = {"policy": run.algo.policy, "optimizer": run.algo.optimizer, "algo": run.algo}
        if "converted_from" in ckpt:  # an older format: Fabric loads the converted copy
            with tempfile.TemporaryDirectory() as tmp:
                converted = Path(tmp) / Path(path).name
                torch.save(ckpt, converted)
                rest = run.fabric.load(converted, state, strict=False)
        else:
            rest = run.fabric.load(path, state, strict=False)
        if run.normalizer is not None and rest.get("obs_norm") is not None:
            run.normalizer.load_state_dict(rest["obs_norm"])
        run.bus.load_state_dict(rest.get("hooks", {}))
        run.global_step, run.cycle, run.episodes = rest["global_step"], rest["cycle"], rest["episodes"]
        self.best_path = rest.get("best_checkpoint")
        run.recent_returns.extend(rest["recent_returns"])
        run.recent_lengths.extend(rest["recent_lengths"])
        ranks = rest["ranks"]
        if len(ranks) == run.world_size:
            run.restore_rank_state(ranks[run.rank])
        else:
            warnings.warn(f"checkpoint {path} was written by {len(ranks)} ranks, this run has "
                          f"{run.world_size}: envs and RNGs start fresh", stacklevel=2)
            run.restart_episodes()
        run.resumed_from = {"path": str(path), "global_step": run.global_step}
        self.newest = Path(path)
        if Path(path).resolve() == (self.directory / f"last{CKPT_SUFFIX}").resolve():
            self._last_saved = (str(self.directory / f"last{CKPT_SUFFIX}"), run.global_step)  # already on disk
        run.resumes = int((rest.get("run") or {}).get("resumes", 0) or 0) + 1
        run.fire("on_checkpoint_loaded", {"path": str(path), "global_step": run.global_step})
