"""HistogramHook: every N cycles, histograms of the rollout's actions and value estimates (rank 0).

Taken in ``on_rollout_end`` from the rollout buffer (cloned: the buffer is rewritten next
cycle) and written at the end of the cycle, at its global step, to every logger that draws
histograms: W&B (``hist/actions``, ``hist/values`` as ``wandb.Histogram``) and TensorBoard
(``add_histogram``). Other loggers are skipped. Nothing is done on other cycles.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.fabric.loggers import TensorBoardLogger

from engine import keys as K
from engine.events import Hook


def _is_wandb(logger: Any) -> bool:
    from lightning.pytorch.loggers import WandbLogger

    return isinstance(logger, WandbLogger)


class HistogramHook(Hook):
    """Action and value histograms every ``every_n_cycles`` cycles."""

    def __init__(self, every_n_cycles: int = 10) -> None:
        if every_n_cycles < 1:
            raise ValueError(f"HistogramHook: every_n_cycles must be >= 1, got {every_n_cycles}")
        self.every_n_cycles = every_n_cycles
        self.run: Any = None
        self.pending: dict[str, torch.Tensor] | None = None
        self.logged = 0

    def on_training_start(self, run: Any) -> None:
        self.run = run

    def on_rollout_end(self, info: dict) -> None:
        if info["cycle"] % self.every_n_cycles or not self.run.is_global_zero or not self.run.fabric.loggers:
            return
        buf = info["buffer"]
        self.pending = {"hist/actions": buf.get(K.ACTION).detach().float().reshape(-1).cpu().clone(),
                        "hist/values": buf.get(K.VALUE).detach().float().reshape(-1).cpu().clone()}

    def on_cycle_complete(self, info: dict) -> None:
        if self.pending is None:
            return
        data, self.pending = self.pending, None
        step = int(info["global_step"])
        for logger in self.run.fabric.loggers:
            if isinstance(logger, TensorBoardLogger):
                for name, values in data.items():
                    logger.experiment.add_histogram(name, values, step)
            elif _is_wandb(logger):
                import wandb

                logger.experiment.log({**{k: wandb.Histogram(v.numpy()) for k, v in data.items()},
                                       "trainer/global_step": step})
        self.logged += 1
