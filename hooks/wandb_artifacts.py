"""WandbArtifactsHook: at the end of training, the run's checkpoints and report go to W&B (rank 0).

Runs after the env family's hooks (so an FX run's ``<out_dir>/report/`` is written), on every
W&B logger of the run (offline runs keep them in their local files for ``wandb sync``):

* artifact ``model-<run_id>`` (type ``model``): ``last.ckpt`` and, when the run has one, the best
  top-k checkpoint as ``best.ckpt``; aliases ``latest`` and ``step-<global_step>``;
* artifact ``report-<run_id>`` (type ``report``): the report directory, when there is one, and
  each of its PNGs logged as an image (``report/<name>``).

The names logged are added to the summary under ``wandb_artifacts``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.events import Hook


class WandbArtifactsHook(Hook):
    def __init__(self, report_dir: str = "report") -> None:
        self.report_dir = report_dir
        self.run: Any = None
        self.logged: list[str] = []

    def on_training_start(self, run: Any) -> None:
        self.run = run

    def on_training_end(self, summary: dict) -> None:
        run = self.run
        if run is None or not run.is_global_zero:
            return
        from lightning.pytorch.loggers import WandbLogger

        targets = [lg for lg in run.fabric.loggers if isinstance(lg, WandbLogger)]
        if not targets:
            return
        import wandb

        last = summary.get("last_checkpoint") if isinstance(summary, dict) else None
        best = run.checkpoints.best_path
        report = Path(run.out_dir) / self.report_dir
        for logger in targets:
            experiment = logger.experiment
            if last and Path(last).is_file():
                model = wandb.Artifact(f"model-{run.run_id}", type="model",
                                       metadata={"global_step": run.global_step, "best_checkpoint": best})
                model.add_file(str(last), name="last.ckpt")
                if best and Path(best).is_file():
                    model.add_file(str(best), name="best.ckpt")
                experiment.log_artifact(model, aliases=["latest", f"step-{run.global_step}"])
                self.logged.append(model.name)
            if report.is_dir() and any(report.iterdir()):
                art = wandb.Artifact(f"report-{run.run_id}", type="report")
                art.add_dir(str(report))
                experiment.log_artifact(art, aliases=["latest"])
                self.logged.append(art.name)
                images = {f"report/{png.stem}": wandb.Image(str(png)) for png in sorted(report.glob("*.png"))}
                if images:
                    experiment.log({**images, "trainer/global_step": run.global_step})
        if isinstance(summary, dict):
            summary["wandb_artifacts"] = list(self.logged)
