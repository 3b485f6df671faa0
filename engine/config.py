"""The engine's own settings (:class:`RunConfig`) and plain-dict conversion of any config tree.

``RunConfig`` holds what the loop itself needs: env, budget, rollout shape, devices,
precision, output and resume. Algorithm, policy, env and hook settings are sections that
the full config tree (``configs.train.TrainConfig``) adds beside these fields; the engine
finds a section through the registries (:mod:`engine.registry`), never by name. Every
field's docstring is its ``--help`` text.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import tyro

PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true")


@dataclass
class RunConfig:
    """Train an RL agent with an explicit rollout -> GAE -> minibatch-epoch loop on Lightning Fabric."""

    SESSION_FIELDS: ClassVar[tuple[str, ...]] = ("total_steps", "out_dir", "resume", "overwrite", "threads",
                                                 "compile", "detect_anomaly", "max_nonfinite_updates", "accelerator")
    """Fields a later session of the same run may change (see :func:`config_diff`)."""
    RANGES: ClassVar[dict[str, str]] = {
        "total_steps": "[1, 1e15]", "num_envs": "[1, 65536]", "rollout_steps": "[1, 1000000]",
        "seed": "[0, 4294967295]", "metrics_window": "[1, 1000000]", "devices": "[1, 1024]", "num_nodes": "[1, 65536]",
        "max_nonfinite_updates": "[1, 1000000]", "threads": "[0, {cpus}]",
    }
    """Allowed values of the numeric flags (:mod:`engine.ranges`; seeds are numpy's 32-bit seeds, more threads
    than cores only slow a run down)."""
    MAX_ROLLOUT = 1 << 24
    """Largest rollout buffer, rollout_steps x num_envs steps (per rank)."""

    env: str = "CartPole-v1"
    """A registered env family or any gymnasium id."""
    algo: str = "ppo"
    """Algorithm from ``algos/``."""
    policy: str = "mlp"
    """Policy network from ``algos/``."""
    total_steps: int = 200_000
    """Budget in environment steps, summed over envs and ranks (the engine's clock)."""
    num_envs: int = 16
    """Parallel environments per rank."""
    rollout_steps: int = 128
    """Vector steps collected per cycle (buffer is rollout_steps x num_envs)."""
    vector_mode: Literal["sync", "async", "vector_entry_point"] = "sync"
    """How gymnasium-id envs are vectorised (native torch envs such as ``fx`` ignore it): gymnasium's ``sync`` or
    ``async`` vector env of single envs, or ``vector_entry_point``: the id's own natively vectorised env where it
    provides one the loop can use (CartPole-v0/v1's ``CartPoleVectorEnv``, or any in SAME_STEP autoreset mode),
    else ``sync``."""
    seed: int = 1
    """Base seed; rank r uses seed + r for its RNGs and seed + 1000 * r for its envs."""
    norm_obs: bool = False
    """Running observation normalisation (stored in checkpoints)."""
    metrics_window: int = 20
    """Finished episodes in the windowed episode/ statistics (``episode/return_mean`` and the summary's
    ``episode_return_mean`` included)."""
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
    """What to continue when --out-dir holds a run. Not given: the newest valid checkpoint if the run's settings
    match this command's (all but total-steps, out-dir, threads and other per-session flags; a larger total-steps
    extends the run), else refuse with the differences. ``auto``: the newest valid checkpoint, with this command's
    settings. ``best``: the run's best checkpoint (top-k by --hooks.monitor). A path: that checkpoint (of this
    out dir; into an empty out dir it starts a new run from it). A fresh run when the out dir holds none."""
    overwrite: bool = False
    """Start over: remove the run already in --out-dir (checkpoints, summary, logs, reports) first."""
    max_nonfinite_updates: int = 5
    """Stop with an error after this many consecutive updates skipped for NaN/Inf loss or gradients."""
    detect_anomaly: bool = False
    """Enable torch.autograd anomaly detection (slow; for debugging NaNs)."""
    compile: bool = False
    """``torch.compile`` the policy's forward (acting, and training on one process); off by default: measured here
    (``python -m engine.bench compile``) it pays only on long runs, since compiling takes tens of seconds."""
    threads: int = 1
    """torch intra-op threads per process (0 = torch/Fabric's choice). 1 is best for small policies: measured here,
    2 threads on a loaded 2-core machine ran 40x slower (OpenMP workers spinning against each other)."""
    builtin_hooks: bool = True
    """Use the built-in hooks configured by --hooks.* (off: only hooks passed to train(), plus loggers)."""
    preset: tyro.conf.Suppress[str | None] = None
    """Name of the preset this config came from (recorded in summaries; not a flag: the preset is the subcommand)."""


def validate_run_config(cfg: RunConfig) -> None:
    """Reject bad values of the engine's own flags with a message naming the flag: the ranges of the numeric
    ones (:func:`engine.ranges.check_numbers`), then the rest and the flags that bound each other."""
    from engine.ranges import check_numbers

    def need(ok: bool, flag: str, msg: str) -> None:
        if not ok:
            raise ValueError(f"{flag}: {msg}")

    check_numbers(cfg)
    need(cfg.precision in PRECISIONS, "--precision", f"unknown value {cfg.precision!r}; choose from {PRECISIONS}")
    need(str(cfg.out_dir).strip() != "", "--out-dir", "must name a directory (got an empty string; use . for the "
                                                      "current directory)")
    buffer = cfg.rollout_steps * cfg.num_envs
    need(buffer <= RunConfig.MAX_ROLLOUT, "--rollout-steps",
         f"rollout-steps x num-envs must be in [1, {RunConfig.MAX_ROLLOUT}] (got {cfg.rollout_steps} x {cfg.num_envs} "
         f"= {buffer}: the rollout buffer would not fit in memory)")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Nested plain dict (tuples become lists) for checkpoints, loggers and summaries."""
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Inverse of :func:`config_to_dict` for dataclass ``cls`` (unknown keys from older versions are ignored)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, hint = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = config_from_dict(hint, value)
        elif isinstance(value, list) and _is_tuple_hint(hint):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_diff(cfg: Any, old: dict[str, Any], prefix: str = "") -> list[str]:
    """``"name: old -> new"`` for every field of dataclass ``cfg`` that differs from the dict ``old``
    (:func:`config_to_dict` of an earlier config), skipping each dataclass's ``SESSION_FIELDS``. A field
    ``old`` lacks (added since) counts as its default."""
    out: list[str] = []
    skip = getattr(type(cfg), "SESSION_FIELDS", ())
    for f in dataclasses.fields(cfg):
        if f.name in skip:
            continue
        new, name = getattr(cfg, f.name), f"{prefix}{f.name}"
        if f.name not in old:
            if f.default is not dataclasses.MISSING:
                was = f.default
            elif f.default_factory is not dataclasses.MISSING:
                was = f.default_factory()
            else:
                continue
            was = config_to_dict(was) if dataclasses.is_dataclass(was) else was
        else:
            was = old[f.name]
        if dataclasses.is_dataclass(new) and isinstance(was, dict):
            out += config_diff(new, was, f"{name}.")
        elif _plain(new) != _plain(was):
            out.append(f"{name}: {was!r} -> {new!r}")
    return out


def _is_tuple_hint(hint: Any) -> bool:
    if typing.get_origin(hint) is tuple:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(typing.get_origin(a) is tuple for a in typing.get_args(hint))
    return False


def class_path(obj: Any) -> str:
    """``module:QualName`` of ``obj``'s class, so a checkpoint can name its config class."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: str) -> type:
    """The class named by :func:`class_path`."""
    module, _, name = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj
