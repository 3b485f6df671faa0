"""Running observation normalisation (Welford/Chan parallel moments), state_dict'ed.

Works on a tensor observation or a dict of them (one set of moments per key). Under DDP
the batch moments are summed across ranks before the update, so every rank normalises
with the same statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Obs = torch.Tensor | dict[str, torch.Tensor]


class RunningMeanStd:
    """Mean and variance of a stream of [B, *shape] batches, float64 on the CPU."""

    def __init__(self, shape: tuple[int, ...], epsilon: float = 1e-4) -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64)
        self.var = torch.ones(shape, dtype=torch.float64)
        self.count = torch.tensor(epsilon, dtype=torch.float64)

    def update(self, x: torch.Tensor, reduce_sum: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        x = x.detach().to("cpu", torch.float64).reshape(-1, *self.mean.shape)
        n = torch.tensor(float(x.shape[0]), dtype=torch.float64)
        s1, s2 = x.sum(0), (x * x).sum(0)
        if reduce_sum is not None:
            n, s1, s2 = (reduce_sum(t) for t in (n, s1, s2))
        b_mean = s1 / n
        b_var = (s2 / n - b_mean**2).clamp_min(0.0)
        delta = b_mean - self.mean
        tot = self.count + n
        self.mean = self.mean + delta * n / tot
        self.var = (self.var * self.count + b_var * n + delta**2 * self.count * n / tot) / tot
        self.count = tot

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state["mean"].shape != self.mean.shape:
            raise ValueError(f"normaliser shape mismatch: checkpoint {tuple(state['mean'].shape)} vs run {tuple(self.mean.shape)}")
        self.mean, self.var, self.count = state["mean"].clone(), state["var"].clone(), state["count"].clone()


class ObsNormalizer:
    """Normalises observations to zero mean / unit variance, clipped to ±clip."""

    def __init__(self, example: Obs, clip: float = 10.0) -> None:
        self.clip = clip
        if isinstance(example, dict):
            self.rms: dict[str, RunningMeanStd] = {k: RunningMeanStd(tuple(v.shape[1:])) for k, v in example.items()}
        else:
            self.rms = {"": RunningMeanStd(tuple(example.shape[1:]))}

    def update(self, obs: Obs, reduce_sum: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        for k, rms in self.rms.items():
            rms.update(obs[k] if k else obs, reduce_sum)

    def _norm(self, x: torch.Tensor, rms: RunningMeanStd) -> torch.Tensor:
        mean = rms.mean.to(x.device, torch.float32)
        std = (rms.var + 1e-8).sqrt().to(x.device, torch.float32)
        return ((x.float() - mean) / std).clamp(-self.clip, self.clip)

    def normalize(self, obs: Obs) -> Obs:
        if isinstance(obs, dict):
            return {k: self._norm(v, self.rms[k]) for k, v in obs.items()}
        return self._norm(obs, self.rms[""])

    def state_dict(self) -> dict[str, Any]:
        return {k or "_": r.state_dict() for k, r in self.rms.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = {k or "_" for k in self.rms}
        if set(state) != expected:
            raise ValueError(f"normaliser keys mismatch: checkpoint {sorted(state)} vs run {sorted(expected)}")
        for k, r in self.rms.items():
            r.load_state_dict(state[k or "_"])
