"""Reward system: named per-step components, weighted from the config.

All money terms are RELATIVE to the initial equity E0 (so rewards are comparable across account
sizes) and the reward is

    reward_t = reward_scale x sum_c w_c x component_c,t

Components (raw, before weight and scale):

* ``pnl``               gross mark-to-market PnL at mid / E0 (before any cost)
* ``transaction_cost``  -(spread + commission + slippage paid this step) / E0   (<= 0)
* ``swap``              overnight swap credited this step / E0 (financing; usually <= 0)
* ``drawdown_penalty``  -(increase of (peak equity - equity) / E0)               (<= 0)
* ``holding_penalty``   -|position| / max_position                               (<= 0)
* ``variance_penalty``  -((equity_t - equity_{t-1}) / E0)^2: the quadratic term of a
  mean-variance utility; charges risk, not holding                           (<= 0)
* ``differential_sharpe`` Moody & Saffell's differential Sharpe ratio of the per-step
  return (equity_t / equity_{t-1} - 1), with moving moments of rate ``dsr_eta``. Computed (and
  its moments kept) only when its weight is not zero: it is stateful and costs ~8 % of a step,
  so a run that does not reward it has no ``reward_raw/differential_sharpe``.

pnl + transaction_cost + swap = (equity_t - equity_{t-1}) / E0 exactly (the ledger identity),
so with the default weights (1, 1, 1, 0, 0, 0) an episode's rewards sum to
``reward_scale x (final equity - initial equity) / E0``: the net result after every cost.
"""

from __future__ import annotations

import torch

from envs.fx.config import REWARD_COMPONENTS, FxEnvConfig


class RewardSystem:
    """Per-env reward state (differential-Sharpe moments, last drawdown) and the weighting."""

    def __init__(self, cfg: FxEnvConfig, num_envs: int, device: torch.device) -> None:
        self.cfg = cfg
        self.weights = cfg.reward_weights()
        self.scale = float(cfg.reward_scale)
        self.e0 = float(cfg.initial_equity)
        z = lambda: torch.zeros(num_envs, dtype=torch.float64, device=device)  # noqa: E731
        self.dsr_a, self.dsr_b, self.last_drawdown = z(), z(), z()
        self.device = device

    def reset(self, mask: torch.Tensor) -> None:
        for name in ("dsr_a", "dsr_b", "last_drawdown"):
            setattr(self, name, getattr(self, name).masked_fill(mask, 0.0))

    def _differential_sharpe(self, ret: torch.Tensor) -> torch.Tensor:
        a, b, eta = self.dsr_a, self.dsr_b, self.cfg.dsr_eta
        da, db = ret - a, ret * ret - b
        var = b - a * a
        ok = var > 1e-18
        dsr = torch.where(ok, (b * da - 0.5 * a * db) / var.clamp(min=1e-18).pow(1.5), 0.0)
        self.dsr_a = a + eta * da
        self.dsr_b = b + eta * db
        return dsr.clamp(-10.0, 10.0)

    def compute(self, pnl: torch.Tensor, cost: torch.Tensor, swap: torch.Tensor,
                equity_prev: torch.Tensor, equity: torch.Tensor, peak_equity: torch.Tensor,
                position: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Returns (reward [N] float64, weighted-and-scaled components, raw components)."""
        drawdown = (peak_equity - equity) / self.e0
        raw = {
            "pnl": pnl / self.e0,
            "transaction_cost": cost / -self.e0,  # = -cost / e0 to the bit, one op fewer
            "swap": swap / self.e0,
            "drawdown_penalty": -(drawdown - self.last_drawdown).clamp(min=0.0),
            "holding_penalty": position.abs() / -self.cfg.max_position,
            "variance_penalty": -((equity - equity_prev) / self.e0) ** 2,
        }
        if self.weights["differential_sharpe"] != 0.0:
            ret = torch.where(equity_prev > 0, equity / equity_prev.clamp(min=1e-12) - 1.0, 0.0)
            raw["differential_sharpe"] = self._differential_sharpe(ret)
        self.last_drawdown = drawdown
        zeros = torch.zeros_like(pnl)
        weighted, reward = {}, None
        for name in REWARD_COMPONENTS:
            w = self.scale * self.weights[name]
            if w == 0.0:
                weighted[name] = zeros
                continue
            weighted[name] = raw[name] if w == 1.0 else w * raw[name]
            reward = weighted[name] if reward is None else reward + weighted[name]
        return (zeros if reward is None else reward), weighted, raw

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"dsr_a": self.dsr_a.clone(), "dsr_b": self.dsr_b.clone(),
                "last_drawdown": self.last_drawdown.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name in ("dsr_a", "dsr_b", "last_drawdown"):
            setattr(self, name, state[name].to(device=self.device, dtype=torch.float64).clone())


class ScalarReward:
    """:class:`RewardSystem` for ONE account in Python floats (the fast single env's): the same formulas in
    the same order, so the same numbers to the last bit (``tests/test_fx_single_fast.py``)."""

    __slots__ = ("weights", "scale", "e0", "eta", "max_position", "use_dsr", "dsr_a", "dsr_b", "last_drawdown")

    def __init__(self, cfg: FxEnvConfig) -> None:
        self.scale = float(cfg.reward_scale)
        self.weights = [(name, self.scale * w) for name, w in cfg.reward_weights().items()]
        self.use_dsr = cfg.reward_weights()["differential_sharpe"] != 0.0
        self.e0 = float(cfg.initial_equity)
        self.eta = cfg.dsr_eta
        self.max_position = cfg.max_position
        self.reset()

    def reset(self) -> None:
        self.dsr_a = self.dsr_b = self.last_drawdown = 0.0

    def state(self) -> dict[str, float]:
        return {"dsr_a": self.dsr_a, "dsr_b": self.dsr_b, "last_drawdown": self.last_drawdown}

    def load(self, state: dict[str, float]) -> None:
        self.dsr_a, self.dsr_b, self.last_drawdown = (float(state[k]) for k in ("dsr_a", "dsr_b", "last_drawdown"))

    def compute(self, pnl: float, cost: float, swap: float, equity_prev: float, equity: float, peak_equity: float,
                position: float) -> tuple[float, dict[str, float], dict[str, float]]:
        """(reward, weighted-and-scaled components, raw components), as :meth:`RewardSystem.compute`."""
        e0 = self.e0
        drawdown = (peak_equity - equity) / e0
        dd_step = drawdown - self.last_drawdown
        step = (equity - equity_prev) / e0
        raw = {
            "pnl": pnl / e0,
            "transaction_cost": -cost / e0,
            "swap": swap / e0,
            "drawdown_penalty": -(dd_step if dd_step > 0.0 or dd_step != dd_step else 0.0),
            "holding_penalty": -abs(position) / self.max_position,
            "variance_penalty": -(step * step),
        }
        if self.use_dsr:
            ret = equity / (equity_prev if equity_prev > 1e-12 else 1e-12) - 1.0 if equity_prev > 0 else 0.0
            a, b, eta = self.dsr_a, self.dsr_b, self.eta
            da, db = ret - a, ret * ret - b
            var = b - a * a
            dsr = (b * da - 0.5 * a * db) / var ** 1.5 if var > 1e-18 else 0.0
            self.dsr_a, self.dsr_b = a + eta * da, b + eta * db
            raw["differential_sharpe"] = min(max(dsr, -10.0), 10.0)
        self.last_drawdown = drawdown
        weighted, reward = {}, None
        for name, w in self.weights:
            if w == 0.0:
                weighted[name] = 0.0
                continue
            x = raw[name] if w == 1.0 else w * raw[name]
            weighted[name] = x
            reward = x if reward is None else reward + x
        return (0.0 if reward is None else reward), weighted, raw
