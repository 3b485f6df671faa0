"""What the training commands share: presets as tyro subcommands, and the hooks and loggers a
config asks for.

``parse_args(argv, algo)`` is exactly the command line's parsing: the presets of
:func:`configs.presets` are subcommands (the first is the default, so plain flags apply to
it), and every flag after them overrides the preset's value. ``train(cfg, hooks)`` adds the
built-in hooks (``--hooks.*``), the env family's own hooks and the loggers, then hands
everything to :func:`engine.launch.launch`. This is the command layer: it may import every
package, and no core module imports it.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import tyro

from configs import TrainConfig, presets, refine
from engine import registry
from engine.checkpoint import CheckpointError
from engine.launch import launch
from engine.rundir import RunPlan, env_rank
from hooks.factory import build_default_hooks, build_final_hooks
from hooks.loggers import make_loggers


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
    """Parse, train, and turn bad input into one line on stderr (exit code 2)."""
    try:
        cfg = parse_args(argv, algo=algo, prog=f"python -m engine.{algo}", description=description)
        return train(cfg)
    except (ValueError, OSError, CheckpointError) as exc:  # bad input: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
