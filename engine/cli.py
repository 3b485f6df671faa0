"""What the commands share: the one top-level error handler, presets as tyro subcommands, and the hooks
and loggers a config asks for.

:func:`run_command` runs a command's body: anything expected (bad input, a busy run directory,
divergence, a signal) ends as one ``error:``/``stopped:`` line and the exit code of
:mod:`engine.errors`; anything unexpected keeps its traceback, then one line says where the last
good checkpoint is (the run has already flushed its loggers and written ``summary.json``).
``parse_args(argv, algo)`` is exactly the command line's parsing: the presets of
:func:`configs.presets` are subcommands (the first is the default, so plain flags apply to
it), and every flag after them overrides the preset's value. ``train(cfg, hooks)`` adds the
built-in hooks (``--hooks.*``), the env family's own hooks and the loggers, then hands
everything to :func:`engine.launch.launch`. This is the command layer: it may import every
package, and no core module imports it.
"""

from __future__ import annotations

import dataclasses
import errno
import sqlite3
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import tyro

from configs import TrainConfig, presets, refine
from engine import errors, registry, startup
from engine.checkpoint import CheckpointError
from engine.launch import launch
from engine.rundir import RunPlan, env_rank
from hooks.factory import build_default_hooks, build_final_hooks
from hooks.loggers import make_loggers

T = TypeVar("T")

_PATH_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


def exit_code(exc: BaseException) -> int | None:
    """The documented exit code of an expected error (:mod:`engine.errors`), None for an unexpected one.

    What was raised while training (``exc.during_training``) is judged as such: a ``ValueError`` there is a
    bug, not bad input; an I/O or accelerator error is the machine's."""
    code = getattr(exc, "exit_code", None)
    if isinstance(code, int):
        return code
    training = bool(getattr(exc, "during_training", False))
    if isinstance(exc, CheckpointError):
        return errors.BAD_INPUT
    if isinstance(exc, sqlite3.DatabaseError):  # a damaged journal or study database (engine.paper, engine.tune)
        return errors.MACHINE if training else errors.BAD_INPUT
    if isinstance(exc, OSError):
        if training:
            return errors.MACHINE
        return errors.BAD_INPUT if isinstance(exc, _PATH_ERRORS) or exc.errno in (errno.EACCES, errno.EROFS) \
            else errors.MACHINE
    if _accelerator_error(exc):
        return errors.MACHINE if training else errors.BAD_INPUT
    if isinstance(exc, ValueError) and not training:
        return errors.BAD_INPUT
    return None


def _accelerator_error(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    try:
        from lightning.fabric.utilities.exceptions import MisconfigurationException
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, MisconfigurationException)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (a multi-line list joined with '; ')."""
    parts = [p.strip() for p in str(exc).strip().splitlines() if p.strip()]
    text = "; ".join(parts) or type(exc).__name__
    return text if not isinstance(exc, OSError) or exc.filename is None or str(exc.filename) in text \
        else f"{text}: {exc.filename}"


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  line: str | None = None) -> str:
    return f"warning: {message}\n"


def run_command(body: Callable[[], T]) -> T:
    """Run a command's ``body`` under the top-level error handler (see the module docstring); returns what
    it returns, or ends the process with the documented exit code."""
    previous, warnings.formatwarning = warnings.formatwarning, _warning_line  # one line each, like the errors
    startup.restore()  # Ctrl-C from here on is a KeyboardInterrupt (below), then a stop signal while training
    try:
        return body()
    except SystemExit:
        raise
    except errors.Interrupted as exc:
        print(f"stopped: {exc}", file=sys.stderr, flush=True)
        if exc.summary and exc.summary.get("out_dir") and env_rank() == 0:
            print(where_line(exc.summary, exc.summary["out_dir"]), flush=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("stopped: interrupted (SIGINT) before training started; nothing was saved", file=sys.stderr)
        raise SystemExit(128 + 2) from None
    except Exception as exc:  # noqa: BLE001  (the top-level handler: every error ends here)
        code = exit_code(exc)
        last = getattr(exc, "last_checkpoint", None)
        where = ""
        if getattr(exc, "during_training", False):
            where = (f"; last good checkpoint: {last} (continue with --resume auto)" if last
                     else "; no checkpoint was written")
        if code is None:
            traceback.print_exc()
            print(f"error: unexpected {type(exc).__name__} (a bug: please report it with the traceback above)"
                  f"{where}", file=sys.stderr)
            raise SystemExit(errors.UNEXPECTED) from None
        print(f"error: {one_line(exc)}{where}", file=sys.stderr)
        raise SystemExit(code) from None
    finally:
        warnings.formatwarning = previous


def where_line(summary: dict[str, Any], out_dir: str | Path) -> str:
    """The last line a training command prints: where its summary and report are."""
    line = f"summary: {Path(out_dir) / 'summary.json'}"
    report = (summary.get("backtest") or {}).get("report") if isinstance(summary, dict) else None
    return line + (f"  report: {report}" if report else "")


def parse_args(argv: Sequence[str] | None = None, algo: str = "ppo", prog: str | None = None,
               description: str | None = None) -> TrainConfig:
    """Parse a command line into a :class:`configs.TrainConfig` (``algo`` picks the preset table).

    A preset that depends on the data (``fx`` with ``--data``) is replaced by the one that fits the
    file, and the same command line is parsed again over it (so every flag still overrides)."""
    table = presets(algo)
    args = list(sys.argv[1:] if argv is None else argv)
    defaults = {name: make() for name, make in table.items()}
    cfg = _parse(defaults, table, args, prog, description, algo)
    picked = refine(cfg)
    if picked is not None:
        new, line = picked
        print(line, file=sys.stderr)
        if algo != "ppo":
            new = dataclasses.replace(new, algo=cfg.algo)
        defaults[cfg.preset] = new
        cfg = _parse(defaults, table, args, prog, description, algo)
    return cfg


def _parse(defaults: dict[str, TrainConfig], table: dict[str, Any], args: list[str], prog: str | None,
           description: str | None, algo: str) -> TrainConfig:
    descriptions = {name: (make.__doc__ or name).strip().split("\n\n")[0].replace("\n", " ")
                    for name, make in table.items()}
    choice = tyro.extras.subcommand_type_from_defaults(defaults, descriptions)
    return tyro.cli(choice, args=args, default=next(iter(defaults.values())), prog=prog, description=description,
                    config=(tyro.conf.CascadeSubcommandArgs,))


def build_hooks(cfg: TrainConfig, hooks: Iterable[Any] = ()) -> list[Any]:
    """Built-in hooks (``--hooks.*``), then the env family's (e.g. the FX report), then the built-in
    hooks that use what those wrote (W&B artifacts of the report), then ``hooks``."""
    builtin = build_default_hooks(cfg.hooks, has_eval=True) if cfg.builtin_hooks else []
    final = build_final_hooks(cfg.hooks) if cfg.builtin_hooks else []
    family = registry.env_family(cfg.env)
    return [*builtin, *(family.end_hooks(cfg) if family is not None else []), *final, *hooks]


def loggers_for(cfg: TrainConfig) -> Any:
    """The loggers ``cfg`` asks for, as a function of the run plan (a continued run continues its logs)."""
    h = cfg.hooks
    metric_names = tuple(dict.fromkeys(m for m in (h.monitor, "episode/return_mean")
                                       if h.eval_every > 0 or not m.startswith("val/")))

    def make(plan: RunPlan) -> list[Any]:
        return make_loggers(h.loggers, cfg.out_dir, Path(cfg.out_dir).name, run_id=plan.run_id, version=plan.version,
                            resume_step=plan.resume_step, versions=plan.loggers, online=h.wandb_online,
                            project=h.wandb_project, tags=h.wandb_tags, notes=h.wandb_notes,
                            mlflow_tracking_uri=h.mlflow_tracking_uri, mlflow_experiment=h.mlflow_experiment,
                            hparam_metrics=metric_names, is_global_zero=env_rank() == 0)

    return make


def train(cfg: TrainConfig, hooks: Iterable[Any] = ()) -> dict[str, Any]:
    """Train with ``cfg``; ``hooks`` run after the built-in ones. Returns the summary dict."""
    return launch(cfg, build_hooks(cfg, hooks), loggers_for(cfg))


def main(argv: Sequence[str] | None = None, algo: str = "ppo", description: str | None = None) -> dict[str, Any]:
    """Parse and train under :func:`run_command`; the last line printed says where the summary and report are."""
    def body() -> dict[str, Any]:
        cfg = parse_args(argv, algo=algo, prog=f"python -m engine.{algo}", description=description)
        summary = train(cfg)
        if env_rank() == 0:
            print(where_line(summary, cfg.out_dir), flush=True)
        return summary

    return run_command(body)
