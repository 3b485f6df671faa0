"""MetricsHook: running (whole run) and windowed (last N episodes) episode statistics.

Per finished episode it records the return, the length, a win (return > 0) and every
numeric ``reward/<name>`` entry of the episode's ``final_info`` (the episode's component
totals). Once per cycle it adds to the metrics dict:

* windowed over the last ``window`` episodes: ``episode/return_mean``, ``episode/return_std``,
  ``episode/return_min``, ``episode/return_max``, ``episode/length_mean``, ``episode/win_rate``
  and ``reward/<name>_episode`` (mean episode total of each component);
* over the whole run (torchmetrics aggregators): ``episode/return_mean_all``,
  ``episode/length_mean_all``, ``episode/win_rate_all``, ``episode/return_max_all``,
  ``episode/count``.

Nothing is added before the first episode ends, so no NaN reaches the loggers. In a run the
window is the run's ``--metrics-window`` (the one the engine's own ``episode/return_mean``
uses), and the hook never overwrites a key already in the dict: the engine's
``episode/return_mean``, ``episode/length_mean`` and ``episode/count`` are reduced across
ranks and win, because a monitored metric must be identical on every rank. The hook's other
statistics are per rank. Used alone (no run), it computes all of them itself.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
from torchmetrics.aggregation import MaxMetric, MeanMetric

from engine.events import Hook
from hooks._util import to_float

_COMPONENT_PREFIX = "reward/"


class MetricsHook(Hook):
    """Episode return/length/win-rate and reward-component statistics, run-long and windowed."""

    def __init__(self, window: int | None = None) -> None:
        if window is not None and window < 1:
            raise ValueError(f"MetricsHook: window must be >= 1, got {window}")
        self.window = window if window is not None else 100
        self._window_from_run = window is None
        self._returns: deque[float] = deque(maxlen=window)
        self._lengths: deque[float] = deque(maxlen=window)
        self._components: dict[str, deque[float]] = {}
        # Per-rank statistics: no cross-process sync, so ranks with no episode yet cannot deadlock.
        kw = {"sync_on_compute": False, "nan_strategy": "ignore"}
        self._run_return = MeanMetric(**kw).set_dtype(torch.float64)
        self._run_length = MeanMetric(**kw).set_dtype(torch.float64)
        self._run_win = MeanMetric(**kw).set_dtype(torch.float64)
        self._run_max = MaxMetric(**kw).set_dtype(torch.float64)
        self.count = 0

    # -- events ---------------------------------------------------------------------------------
    def on_training_start(self, run: Any) -> None:
        window = getattr(getattr(run, "cfg", None), "metrics_window", None)
        if self._window_from_run and window is not None and window != self.window:
            self.window = int(window)
            self._returns = deque(self._returns, maxlen=self.window)
            self._lengths = deque(self._lengths, maxlen=self.window)
            self._components = {k: deque(v, maxlen=self.window) for k, v in self._components.items()}

    def on_episode_end(self, episode_info: dict) -> None:
        ret = to_float(episode_info.get("return", episode_info.get("reward")))
        length = to_float(episode_info.get("length"))
        if ret is None or length is None:
            raise ValueError(
                f"MetricsHook: episode payload needs numeric 'return' and 'length', got keys {sorted(episode_info)}"
            )
        self._returns.append(ret)
        self._lengths.append(length)
        self._run_return.update(ret)
        self._run_length.update(length)
        self._run_win.update(1.0 if ret > 0 else 0.0)
        self._run_max.update(ret)
        self.count += 1
        for key, value in (episode_info.get("final_info") or {}).items():
            if not (isinstance(key, str) and key.startswith(_COMPONENT_PREFIX)):
                continue
            v = to_float(value)
            if v is not None:
                name = key[len(_COMPONENT_PREFIX):]
                self._components.setdefault(name, deque(maxlen=self.window)).append(v)

    def on_metrics_computed(self, metrics: dict) -> None:
        for key, value in self.compute().items():
            metrics.setdefault(key, value)

    # -- values ---------------------------------------------------------------------------------
    def compute(self) -> dict[str, float]:
        """The current statistics (empty before the first episode)."""
        if self.count == 0:
            return {}
        r = torch.tensor(list(self._returns), dtype=torch.float64)
        ln = torch.tensor(list(self._lengths), dtype=torch.float64)
        out = {
            "episode/return_mean": r.mean().item(),
            "episode/return_std": r.std(unbiased=False).item(),
            "episode/return_min": r.min().item(),
            "episode/return_max": r.max().item(),
            "episode/length_mean": ln.mean().item(),
            "episode/win_rate": (r > 0).double().mean().item(),
            "episode/return_mean_all": self._run_return.compute().item(),
            "episode/length_mean_all": self._run_length.compute().item(),
            "episode/win_rate_all": self._run_win.compute().item(),
            "episode/return_max_all": self._run_max.compute().item(),
            "episode/count": float(self.count),
        }
        for name, values in self._components.items():
            out[f"{_COMPONENT_PREFIX}{name}_episode"] = sum(values) / len(values)
        return out

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        def agg(m: Any) -> dict[str, torch.Tensor]:
            return {k: v.detach().clone() for k, v in m.metric_state.items()}

        return {
            "window": self.window,
            "count": self.count,
            "returns": list(self._returns),
            "lengths": list(self._lengths),
            "components": {k: list(v) for k, v in self._components.items()},
            "run_return": agg(self._run_return),
            "run_length": agg(self._run_length),
            "run_win": agg(self._run_win),
            "run_max": agg(self._run_max),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        self._returns = deque((float(x) for x in state["returns"]), maxlen=self.window)
        self._lengths = deque((float(x) for x in state["lengths"]), maxlen=self.window)
        self._components = {
            k: deque((float(x) for x in v), maxlen=self.window) for k, v in state["components"].items()
        }
        for attr in ("run_return", "run_length", "run_win"):
            metric, saved = getattr(self, f"_{attr}"), state[attr]
            metric.reset()
            if float(saved["weight"]) > 0:  # the saved weighted sum, restored through update()
                metric.update(saved["mean_value"] / saved["weight"], weight=saved["weight"])
        self._run_max.reset()
        if self.count > 0:
            self._run_max.update(state["run_max"]["max_value"])
