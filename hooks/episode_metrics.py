"""EpisodeMetricsHook: logs each finished episode (or every k-th) to the loggers, rank 0 only.

Logged through ``run.log`` at the episode's global step: ``episode/return``,
``episode/length`` and every numeric ``final_info`` entry as ``episode/info/<key>``.
"""

from __future__ import annotations

from typing import Any

from engine.events import Hook
from hooks._util import to_float


class EpisodeMetricsHook(Hook):
    """Per-episode logging; ``every_k`` = log one episode in k (counted on this rank)."""

    def __init__(self, every_k: int = 1) -> None:
        if every_k < 1:
            raise ValueError(f"EpisodeMetricsHook: every_k must be >= 1, got {every_k}")
        self.every_k = every_k
        self.episodes = 0
        self.run: Any = None

    def on_training_start(self, run: Any) -> None:
        self.run = run

    def on_episode_end(self, episode_info: dict) -> None:
        self.episodes += 1
        if self.episodes % self.every_k != 0 or not getattr(self.run, "is_global_zero", True):
            return
        row: dict[str, float] = {}
        ret = to_float(episode_info.get("return", episode_info.get("reward")))
        length = to_float(episode_info.get("length"))
        if ret is not None:
            row["episode/return"] = ret
        if length is not None:
            row["episode/length"] = length
        for key, value in (episode_info.get("final_info") or {}).items():
            v = to_float(value)
            if v is not None and isinstance(key, str) and not key.startswith("_"):
                row[f"episode/info/{key}"] = v
        step = int(episode_info.get("global_step", getattr(self.run, "global_step", 0)))
        self.run.log(row, step)

    def state_dict(self) -> dict[str, Any]:
        return {"episodes": self.episodes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episodes = int(state["episodes"])
