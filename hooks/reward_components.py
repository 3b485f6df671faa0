"""RewardComponentsHook: per-step means of the ``reward/<name>`` entries of the env info over a rollout.

Environments report reward components in their step info as ``info["reward/<name>"]``
(shape [N], one value per env). Gymnasium vector envs may add a boolean mask
``info["_reward/<name>"]`` saying which envs set the entry; masked-out envs are skipped.
At the end of each cycle the hook adds ``reward/<name>`` = mean over all steps and envs of
the rollout; the sums restart at the next rollout.
"""

from __future__ import annotations

from typing import Any

import torch

from engine.events import Hook

_PREFIX = "reward/"


def _as_tensor(value: Any) -> torch.Tensor:
    return torch.as_tensor(value).detach().to("cpu", torch.float64).reshape(-1)


class RewardComponentsHook(Hook):
    """Rollout means of the reward components found in step info."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def on_rollout_start(self, info: dict) -> None:
        self._sums.clear()
        self._counts.clear()

    def on_step_end(self, info: dict) -> None:
        step_info = info.get("info") or {}
        for key, value in step_info.items():
            if not (isinstance(key, str) and key.startswith(_PREFIX)):
                continue
            try:
                values = _as_tensor(value)
            except (TypeError, ValueError, RuntimeError):
                continue  # not numeric
            mask = step_info.get(f"_{key}")
            if mask is not None:
                values = values[torch.as_tensor(mask, dtype=torch.bool).reshape(-1)]
            name = key[len(_PREFIX):]
            self._sums[name] = self._sums.get(name, 0.0) + float(values.sum())
            self._counts[name] = self._counts.get(name, 0) + int(values.numel())

    def compute(self) -> dict[str, float]:
        return {f"{_PREFIX}{n}": self._sums[n] / c for n, c in self._counts.items() if c > 0}

    def on_metrics_computed(self, metrics: dict) -> None:
        metrics.update(self.compute())
