"""``python -m engine.walkforward``: does the agent have an edge out of sample? Retrain per fold, select on
validation, test on the next unseen period, stitch, and report with statistics, baselines and costs.

    python -m engine.walkforward --data EURUSD_H1.csv --folds 4 --seeds 3 --out-dir runs/wf-eurusd
    python -m engine.walkforward fx-randomwalk --folds 3 --seeds 1 --total-steps 200000 --out-dir runs/wf-rw
    python -m engine.walkforward --out-dir runs/wf-rw        # the same command again: resumes where it stopped

The training flags are the training command's (a preset subcommand and its flags; ``--out-dir``
is the walk-forward's directory); the rest are the walk-forward's own. Writes
``<out-dir>/report.json``, ``bars.csv`` and the PNGs; each fold and seed is a normal run in
``<out-dir>/fold_<k>/seed_<s>``. The logic is :mod:`envs.fx.research.walkforward`.
"""

from __future__ import annotations

if __name__ == "__main__":  # Ctrl-C during the imports below: one line, exit 130
    from engine.startup import quiet_interrupts

    quiet_interrupts()

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any

import tyro

from configs import PRESETS, TrainConfig, refine
from engine.cli import run_command, train
from envs.fx.research.report import format_report
from envs.fx.research.walkforward import WalkForward, WalkForwardArgs

FX_PRESETS = ("fx", "fx-m15", "fx-h1", "fx-randomwalk")


def _trainer_presets(defaults: dict[str, TrainConfig] | None = None) -> dict[str, TrainConfig]:
    table = {name: dataclasses.replace(PRESETS[name](), out_dir="runs/walkforward") for name in FX_PRESETS}
    table.update(defaults or {})
    return table


def _args_type(table: dict[str, TrainConfig]) -> type:
    """WalkForwardArgs plus the trainer's config as preset subcommands (built at run time from ``table``)."""
    trainer = tyro.extras.subcommand_type_from_defaults(table, {n: f"walk forward with the {n} preset" for n in table})
    kind = Annotated[trainer, tyro.conf.arg(name="", help="the trainer's config: a preset subcommand and its flags "
                                                           "(--out-dir is the walk-forward's directory)"),
                     tyro.conf.OmitSubcommandPrefixes]
    args = dataclasses.make_dataclass("WalkForwardCli", [("train", kind, field(default_factory=lambda: table["fx"]))],
                                      bases=(WalkForwardArgs,))
    args.__doc__ = WalkForwardArgs.__doc__
    return args


def parse_cli(argv: Sequence[str] | None = None) -> Any:
    """The walk-forward's flags and the trainer's config; ``fx`` with ``--data`` becomes the preset for the bar size."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    table = _trainer_presets()
    parse = lambda t: tyro.cli(_args_type(t), args=args_list, prog="python -m engine.walkforward",  # noqa: E731
                               config=(tyro.conf.CascadeSubcommandArgs,))
    args = parse(table)
    picked = refine(args.train)
    if picked is not None:
        new, line = picked
        print(line, file=sys.stderr)
        args = parse(_trainer_presets({args.train.preset: dataclasses.replace(new, out_dir="runs/walkforward")}))
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Check every flag (the walk-forward's and the trainer's, its data included) before the first fold, then
    walk forward; errors end as one line (:func:`engine.cli.run_command`)."""
    def body() -> dict[str, Any]:
        from engine.launch import validate
        from engine.ranges import check_numbers

        args = parse_cli(argv)
        if args.train.env != "fx":
            raise ValueError(f"--env {args.train.env}: the walk-forward needs the FX env")
        check_numbers(args)  # the walk-forward's numbers and the trainer's
        wf = WalkForward(args.train, args, train)  # the data and the fold layout
        validate(wf.fold_cfg(wf.folds[0], wf.seeds[0]))  # the rest of the trainer's flags, on a real fold
        result = wf.run()
        print(format_report(result))
        print(f"walk-forward report: {Path(args.train.out_dir) / 'report.json'} (PNGs and bars.csv beside it)")
        return result

    return run_command(body)


if __name__ == "__main__":
    main()
