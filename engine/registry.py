"""What the engine can run, by name: algorithms, policy networks and env families.

The engine core imports no algorithm, network or environment. Packages register what they
provide here when they are imported (``algos`` registers PPO, A2C, the MLP and the
transformer; ``envs.fx.family`` registers the FX env), and the engine looks them up by the
names in the config. Each entry names the config *section* that holds its settings
(``--ppo.*``, ``--model.*``, ``--fx.*``), so the engine reads ``getattr(cfg, section)``
without knowing the section.

An *env family* is an environment the engine knows more about than gymnasium tells it:
how to build its training and evaluation envs, how to check its settings before any work,
how to evaluate a policy on it and which hooks report on a finished run
(:class:`EnvFamily`). Any other ``--env`` is a gymnasium id, vectorised by
:mod:`engine.vec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass(frozen=True)
class AlgorithmEntry:
    """``cls(section_cfg, policy, action_space, fabric, num_updates=, max_nonfinite=)`` builds the algorithm."""

    cls: type
    section: str


@dataclass(frozen=True)
class PolicyEntry:
    """``build(observation_space, action_space, section_cfg)`` returns the ``nn.Module``."""

    build: Callable[..., torch.nn.Module]
    section: str


class EnvFamily(Protocol):
    """An environment the engine builds and evaluates through these calls (all take the full config)."""

    name: str
    """The ``--env`` value that selects it."""
    section: str
    """Its config section (``cfg.<section>``)."""

    def validate(self, cfg: Any) -> None:
        """Check data and settings before any work; raise ValueError with one line naming the flag or file."""

    def make_train_env(self, cfg: Any, num_envs: int, seed: int, device: torch.device) -> Any:
        """A torch vector env (:mod:`engine.vec` protocol) for training on this rank."""

    def make_eval_env(self, cfg: Any, device: torch.device) -> Any:
        """The env :meth:`evaluate` runs on (built once per run)."""

    def evaluate(self, policy_fn: Callable[[Any], torch.Tensor], env: Any, cfg: Any,
                 num_episodes: int) -> dict[str, float]:
        """Deterministic evaluation: metric name -> value (logged under ``val/``)."""

    def end_hooks(self, cfg: Any) -> list[Any]:
        """Hooks added to a run of this family (e.g. an end-of-run report)."""

    def spec(self, envs: Any) -> dict[str, Any] | None:
        """What a checkpoint must carry so that the family can rebuild the policy's inputs without the
        training data (e.g. a fitted feature normalisation): tensors, numbers and strings only."""


ALGORITHMS: dict[str, AlgorithmEntry] = {}
POLICIES: dict[str, PolicyEntry] = {}
ENV_FAMILIES: dict[str, EnvFamily] = {}


def register_algorithm(name: str, cls: type, section: str) -> None:
    ALGORITHMS[name] = AlgorithmEntry(cls, section)


def register_policy(name: str, build: Callable[..., torch.nn.Module], section: str) -> None:
    POLICIES[name] = PolicyEntry(build, section)


def register_env_family(family: EnvFamily) -> None:
    ENV_FAMILIES[family.name] = family


def algorithm(name: str) -> AlgorithmEntry:
    if name not in ALGORITHMS:
        raise ValueError(f"--algo {name!r} is not a registered algorithm (registered: {', '.join(sorted(ALGORITHMS)) or 'none'}; "
                         f"importing algos registers the built-in ones)")
    return ALGORITHMS[name]


def policy(name: str) -> PolicyEntry:
    if name not in POLICIES:
        raise ValueError(f"--policy {name!r} is not a registered policy (registered: {', '.join(sorted(POLICIES)) or 'none'})")
    return POLICIES[name]


def env_family(name: str) -> EnvFamily | None:
    """The family registered for ``--env name``, or None for a plain gymnasium id."""
    return ENV_FAMILIES.get(name)


def section(cfg: Any, name: str) -> Any:
    """``cfg.<name>``, or a clear error when the config tree has no such section."""
    if not hasattr(cfg, name):
        raise ValueError(f"the config has no section {name!r} (its class {type(cfg).__name__} must add it)")
    return getattr(cfg, name)
