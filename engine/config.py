"""Run configuration: one dataclass tree that tyro turns into the command line.

Top-level fields are the run (env, budget, devices, precision, output); algorithm
hyper-parameters live under their own prefix (``--ppo.*``, ``--a2c.*``), the policy network
under ``--mlp.*`` / ``--model.*``, the FX market and account under ``--fx.*`` and the
hooks under ``--hooks.*``. Every field's docstring is its ``--help`` text.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from algos.transformer import TransformerConfig
from envs.config import FxEnvConfig
from hooks.config import HooksConfig


@dataclass
class PPOConfig:
    """Proximal Policy Optimisation (clipped surrogate)."""

    learning_rate: float = 2.5e-4
    """Adam learning rate (annealed linearly to 0 when ``anneal_lr``)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over the run."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda (1.0 = Monte-Carlo returns, 0.0 = one-step TD)."""
    update_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 4
    """Minibatches per epoch (rollout_steps * num_envs must be divisible by it)."""
    clip_coef: float = 0.2
    """Surrogate clipping epsilon."""
    anneal_clip: bool = False
    """Anneal the clipping epsilon linearly to 0 with the learning rate."""
    clip_vloss: bool = True
    """Clip the value loss around the old value estimate."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient (at the start of the run when ``ent_coef_final`` is set)."""
    ent_coef_final: float | None = None
    """Anneal the entropy bonus linearly from ``ent_coef`` to this value over the run (None: constant).
    A strong bonus early keeps exploring; a weak one late lets the policy commit, so the
    deterministic policy that is evaluated is the one the values were learned for."""
    ent_anneal_start: float = 0.0
    """Fraction of the run after which the entropy annealing starts (constant ``ent_coef`` before)."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip (``fabric.clip_gradients``)."""
    target_kl: float | None = None
    """Stop the epochs of an update early once the approximate KL exceeds this."""


@dataclass
class A2CConfig:
    """Advantage Actor-Critic: one synchronous gradient step per rollout."""

    learning_rate: float = 7e-4
    """RMSprop learning rate (annealed linearly to 0 when ``anneal_lr``)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over the run."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 1.0
    """GAE lambda (1.0 = n-step returns, as in the original A2C)."""
    norm_adv: bool = False
    """Normalise advantages over the rollout."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    rmsprop_eps: float = 1e-5
    """RMSprop epsilon."""
    rmsprop_alpha: float = 0.99
    """RMSprop smoothing constant."""


@dataclass
class MLPConfig:
    """Separate actor and critic MLPs (for generic envs and speed)."""

    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths."""
    activation: Literal["tanh", "relu"] = "tanh"
    """Activation function."""


@dataclass
class TrainConfig:
    """Train an RL agent with an explicit rollout -> GAE -> minibatch-epoch loop on Lightning Fabric."""

    env: str = "fx"
    """``fx`` (the FX trading env, see ``--fx.*``) or any gymnasium id, e.g. ``CartPole-v1``."""
    data: str | None = None
    """FX only: train on this CSV/Parquet bar file instead of the synthetic market (same as --fx.data)."""
    preset: str | None = None
    """Named preset from ``configs/`` (e.g. ``cartpole``, ``fx``, ``fx-ou``, ``fx-randomwalk``); later flags override it."""
    algo: Literal["ppo", "a2c"] = "ppo"
    """Algorithm from ``algos/``: ``ppo`` or ``a2c`` (``python -m engine.a2c`` sets ``a2c``)."""
    policy: Literal["mlp", "transformer"] = "transformer"
    """Policy network: ``mlp`` (any env) or ``transformer`` (multi-branch, Dict observations)."""
    total_steps: int = 200_000
    """Budget in environment steps, summed over envs and ranks (the engine's clock)."""
    num_envs: int = 16
    """Parallel environments per rank."""
    rollout_steps: int = 128
    """Vector steps collected per cycle (buffer is rollout_steps x num_envs)."""
    vector_mode: Literal["sync", "async"] = "sync"
    """How gymnasium-id envs are vectorised (native torch envs such as ``fx`` ignore it)."""
    seed: int = 1
    """Base seed; rank r uses seed + r for its RNGs and seed + 1000 * r for its envs."""
    norm_obs: bool = False
    """Running observation normalisation (stored in checkpoints)."""
    accelerator: str = "auto"
    """Fabric accelerator: ``cpu``, ``cuda``, ``gpu``, ``mps`` or ``auto``."""
    devices: int = 1
    """Processes/devices per node."""
    strategy: str = "auto"
    """Fabric strategy: ``auto``, ``ddp``, ``ddp_spawn``, ... (``ddp`` is used for devices > 1 when ``auto``)."""
    num_nodes: int = 1
    """Number of nodes (with torchrun or SLURM, see README)."""
    precision: str = "32-true"
    """Fabric precision: ``32-true``, ``bf16-mixed``, ``16-mixed`` (GPU). Advantages and targets stay fp32."""
    out_dir: str = "runs/default"
    """Run directory: summary.json, checkpoints/, logs, reports."""
    resume: str | None = None
    """Checkpoint path to continue from, or ``auto`` for the newest valid one in ``out_dir`` (fresh start if none)."""
    max_nonfinite_updates: int = 5
    """Stop with an error after this many consecutive updates skipped for NaN/Inf loss or gradients."""
    detect_anomaly: bool = False
    """Enable torch.autograd anomaly detection (slow; for debugging NaNs)."""
    eval_episodes: int = 5
    """Episodes per evaluation for gymnasium envs (the FX env evaluates one pass over the split)."""
    report_split: Literal["test", "val", "none"] = "test"
    """FX only: backtest the final policy on this split and write report.json + PNGs to <out_dir>/report."""
    threads: int = 1
    """torch intra-op threads per process (0 = torch/Fabric's choice). 1 is best for small policies: measured here,
    2 threads on a loaded 2-core machine ran 40x slower (OpenMP workers spinning against each other)."""
    builtin_hooks: bool = True
    """Use the built-in hooks configured by --hooks.* (off: only hooks passed to train(), plus loggers)."""
    """Episodes per evaluation for gymnasium envs (the FX env evaluates one pass over the split)."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    a2c: A2CConfig = field(default_factory=A2CConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)
    model: TransformerConfig = field(default_factory=TransformerConfig)
    fx: FxEnvConfig = field(default_factory=FxEnvConfig)
    hooks: HooksConfig = field(default_factory=HooksConfig)

    @property
    def algo_cfg(self) -> PPOConfig | A2CConfig:
        return self.ppo if self.algo == "ppo" else self.a2c


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Nested plain dict (tuples become lists) for checkpoints, loggers and summaries."""
    return dataclasses.asdict(cfg)


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, hint = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = _from_dict(hint, value)
        elif isinstance(value, list) and _is_tuple_hint(hint):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _is_tuple_hint(hint: Any) -> bool:
    if typing.get_origin(hint) is tuple:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(typing.get_origin(a) is tuple for a in typing.get_args(hint))
    return False


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Inverse of :func:`config_to_dict` (unknown keys from older versions are ignored)."""
    return _from_dict(TrainConfig, data)
