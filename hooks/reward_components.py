"""RewardComponentsHook: the ``reward/<name>`` entries of the env's step info, per rollout and per episode.

Environments report reward components in their step info as ``info["reward/<name>"]``
(shape [N], one value per env); the FX env does for each of its components. Gymnasium vector
envs may add a boolean mask ``info["_reward/<name>"]`` saying which envs set the entry;
masked-out envs are skipped (and add 0 to the episode totals). Per cycle the hook adds to the metrics:

* ``reward/<name>``: mean per env step over the cycle's rollout (the sums restart each rollout;
  masked-out entries are not counted);
* ``reward/<name>_episode``: mean *episode total* of the component over the last
  ``--metrics-window`` finished episodes (each env's running total is read and reset at its
  ``on_episode_end``), unless an earlier hook already set the key (e.g. :class:`MetricsHook`
  from an env whose ``final_info`` carries the totals).

``reward/total`` (the reward itself, per env step) is the engine's. The running per-env totals
are part of the hook's state, so the episode totals stay exact across a resume.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

from engine.events import Hook

_PREFIX = "reward/"


class RewardComponentsHook(Hook):
    """Rollout means and windowed episode totals of the reward components found in step info."""

    def __init__(self, window: int | None = None) -> None:
        if window is not None and window < 1:
            raise ValueError(f"RewardComponentsHook: window must be >= 1, got {window}")
        self.window = window or 20
        self._window_from_run = window is None
        self._rollout: dict[str, torch.Tensor] = {}  # per-env sums over this rollout
        self._counts: dict[str, Any] = {}  # entries summed (an int, or a tensor with masks)
        self._episode: dict[str, torch.Tensor] = {}  # per-env running episode totals
        self._totals: dict[str, deque[float]] = {}  # finished episodes' totals, last `window`

    def on_training_start(self, run: Any) -> None:
        window = getattr(getattr(run, "cfg", None), "metrics_window", None)
        if self._window_from_run and window is not None:
            self.window = int(window)
            self._totals = {k: deque(v, maxlen=self.window) for k, v in self._totals.items()}

    def on_rollout_start(self, info: dict) -> None:
        self._rollout.clear()
        self._counts.clear()

    def on_step_end(self, info: dict) -> None:
        step_info = info.get("info") or {}
        for key, value in step_info.items():
            if not (isinstance(key, str) and key.startswith(_PREFIX)):
                continue
            try:
                values = torch.as_tensor(value).detach().reshape(-1).to(torch.float64)
            except (TypeError, ValueError, RuntimeError):
                continue  # not numeric
            mask = step_info.get(f"_{key}")
            name = key[len(_PREFIX):]
            if mask is not None:
                valid = torch.as_tensor(mask, dtype=torch.bool, device=values.device).reshape(-1)
                values = torch.where(valid, values, torch.zeros_like(values))
                self._counts[name] = self._counts.get(name, 0) + valid.sum()
            else:
                self._counts[name] = self._counts.get(name, 0) + values.numel()
            roll = self._rollout.get(name)
            if roll is None:
                roll = self._rollout[name] = torch.zeros_like(values)
            ep = self._episode.get(name)
            if ep is None or ep.shape != values.shape:
                ep = self._episode[name] = torch.zeros_like(values)
            elif ep.device != values.device:  # restored from a checkpoint on the CPU
                ep = self._episode[name] = ep.to(values.device)
            roll.add_(values)
            ep.add_(values)

    def on_episode_end(self, episode_info: dict) -> None:
        i = episode_info.get("env_index")
        if i is None:
            return
        for name, totals in self._episode.items():
            self._totals.setdefault(name, deque(maxlen=self.window)).append(float(totals[i]))
            totals[i] = 0.0

    def compute(self) -> dict[str, float]:
        out = {}
        for name, sums in self._rollout.items():
            n = int(self._counts.get(name, 0))
            if n > 0:
                out[f"{_PREFIX}{name}"] = float(sums.sum()) / n
        return out

    def on_metrics_computed(self, metrics: dict) -> None:
        metrics.update(self.compute())
        for name, totals in self._totals.items():
            if totals:
                metrics.setdefault(f"{_PREFIX}{name}_episode", sum(totals) / len(totals))

    def state_dict(self) -> dict[str, Any]:
        return {"episode": {k: v.detach().cpu().clone() for k, v in self._episode.items()},
                "totals": {k: list(v) for k, v in self._totals.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._episode = {k: v.clone() for k, v in state["episode"].items()}
        self._totals = {k: deque((float(x) for x in v), maxlen=self.window) for k, v in state["totals"].items()}
