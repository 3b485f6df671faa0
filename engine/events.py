"""The hook bus: FxAI's 16 training events, their payloads, and a dispatch table built once.

A *hook* is any object with some of the 16 ``on_*`` methods below (a class with only
``on_episode_end`` is a valid hook). The engine fires each event with **one explicit
payload** (a plain ``dict``, never ``locals()``). How a method is called depends on how many
positional arguments besides ``self`` it *requires*, decided once when the bus is built:

* none (``def on_training_start(self)``, or only defaulted ones): called with nothing;
* one (``def on_episode_end(self, episode_info)``, or ``*args``): called with the payload;
* two, the old system's ``(trainer, payload)`` form (``def on_cycle_complete(self, trainer,
  metrics)``): called with ``(run, legacy payload)``, where ``run`` is the
  :class:`engine.loop.Run` (a legacy *trainer*: ``run.model``, ``run.save_checkpoint``,
  ``run.global_step`` ...) and the legacy payload is the event's payload, except for
  ``on_cycle_complete``, whose legacy payload is the cycle's **metrics dict** (what the old
  system passed), and ``on_training_start``, whose payload is the run itself;
* more: rejected when the bus is built (before any work), naming the hook and method.

Legacy metric names: the metrics dict the hooks see also holds the old system's names
(:data:`LEGACY_METRIC_ALIASES`: ``episode_reward_mean``, ``timesteps_total`` ...), copies of
the engine's values; they are not sent to the loggers.

Any hook can stop training: return ``False`` from any event method, or call
``run.request_stop(reason)`` on the run object handed over in ``on_training_start``.
Every hook still sees the event (all run, any stops); the loop stops at the end of the
current cycle.

Why not ``fabric.call``: it re-inspects every callback's signature on every call (about
9 µs per hook per call here) and silently ignores misspelled names. The bus resolves
methods once, and rejects any ``on_*`` method whose name is not one of the 16.

Events, when they fire and their payloads
-----------------------------------------
``on_training_start(run)``
    once, after set-up (and after a resume), before the first rollout. ``run`` is the
    :class:`engine.loop.Run`: ``cfg``, ``fabric``, ``algo``, ``envs``, ``out_dir``,
    ``global_step``, ``cycle``, ``state_dict()``, ``save_checkpoint(path)``,
    ``request_stop(reason)``, ``is_global_zero``.
``on_rollout_start({"cycle", "global_step"})``
    at the start of each cycle's data collection.
``on_step_start({"global_step", "observation"})``
    before each *vector* step (once for the whole batch of envs).
``on_step_end({"global_step", "reward", "terminated", "truncated", "info"})``
    after each vector step; ``global_step`` already counts it; tensors of shape [N].
``on_episode_start({"env_index", "global_step"})``
    when an env begins an episode (all envs at the first reset, then on each autoreset).
``on_episode_end(episode_info)``
    once per finished episode: ``{"env_index", "return", "reward" (same as return,
    legacy name), "length", "terminated", "truncated", "final_info", "global_step"}``.
``on_rollout_end({"cycle", "global_step", "buffer"})``
    after collection and GAE; ``buffer`` is the [time, env] TensorDict.
``on_update_start({"cycle", "global_step"})`` / ``on_update_end({"cycle", "global_step", "losses"})``
    around the optimisation phase; ``losses`` is a dict of floats. With training phases on
    (``--hooks.phases``, :mod:`hooks.phases`), the phase hook, first in the list, adds
    ``"phase": {"name", "index", "changed"}`` to ``on_update_start``'s payload (plus
    ``"previous"``, ``"reason"``, ``"settings"`` on the update where the phase changed): the
    announcement of a phase transition every later hook sees.
``on_evaluation_start({"cycle", "global_step"})`` / ``on_evaluation_end({"cycle", "global_step", "metrics"})``
    around an evaluation (fired by whoever evaluates, e.g. the evaluation hook).
``on_checkpoint_saved({"path", "global_step"})`` / ``on_checkpoint_loaded({"path", "global_step"})``
    after a checkpoint is written / restored.
``on_metrics_computed(metrics)``
    once per cycle after the update, with the flat metrics dict (``train/``, ``episode/``,
    ``reward/``, ``perf/``, ``training/`` ... namespaces, plus the legacy aliases); hooks may add
    keys to it before it is logged.
``on_cycle_complete({"cycle", "global_step", "metrics"})``
    last thing in each cycle.
``on_training_end(summary)``
    once, with the summary dict that is written to ``summary.json``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

EVENTS: tuple[str, ...] = (
    "on_training_start",
    "on_training_end",
    "on_episode_start",
    "on_episode_end",
    "on_step_start",
    "on_step_end",
    "on_rollout_start",
    "on_rollout_end",
    "on_update_start",
    "on_update_end",
    "on_evaluation_start",
    "on_evaluation_end",
    "on_checkpoint_saved",
    "on_checkpoint_loaded",
    "on_metrics_computed",
    "on_cycle_complete",
)
_EVENT_SET = frozenset(EVENTS)

LEGACY_METRIC_ALIASES: dict[str, str] = {
    "episode_reward_mean": "episode/return_mean",
    "episode_len_mean": "episode/length_mean",
    "episodes_total": "episode/count",
    "timesteps_total": "global_step",
    "training_iteration": "cycle",
}
"""Old metric name -> the engine's key it copies (added to the hooks' metrics dict, never logged)."""


class Hook:
    """Optional base class: every event is a no-op. Subclass and override what you need.

    Subclassing is not required; any object with some ``on_*`` methods is a hook.
    Stateful hooks should implement ``state_dict``/``load_state_dict``; the engine
    stores them in the checkpoint.
    """

    def on_training_start(self, run: Any) -> None: ...
    def on_training_end(self, summary: dict) -> None: ...
    def on_episode_start(self, info: dict) -> None: ...
    def on_episode_end(self, episode_info: dict) -> None: ...
    def on_step_start(self, info: dict) -> None: ...
    def on_step_end(self, info: dict) -> None: ...
    def on_rollout_start(self, info: dict) -> None: ...
    def on_rollout_end(self, info: dict) -> None: ...
    def on_update_start(self, info: dict) -> None: ...
    def on_update_end(self, info: dict) -> None: ...
    def on_evaluation_start(self, info: dict) -> None: ...
    def on_evaluation_end(self, info: dict) -> None: ...
    def on_checkpoint_saved(self, info: dict) -> None: ...
    def on_checkpoint_loaded(self, info: dict) -> None: ...
    def on_metrics_computed(self, metrics: dict) -> None: ...
    def on_cycle_complete(self, info: dict) -> None: ...


def _is_noop(hook: Any, name: str) -> bool:
    """True when ``hook.name`` is :class:`Hook`'s own no-op (not overridden)."""
    impl = getattr(type(hook), name, None)
    return impl is not None and impl is getattr(Hook, name)


NO_ARG, PAYLOAD, RUN_AND_PAYLOAD = 0, 1, 2
"""How a hook method is called: ``fn()``, ``fn(payload)`` or ``fn(run, legacy_payload)``."""


def call_mode(hook: Any, event: str, fn: Callable) -> int:
    """:data:`NO_ARG`, :data:`PAYLOAD` or :data:`RUN_AND_PAYLOAD` from ``fn``'s signature; ValueError otherwise."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return PAYLOAD
    required = sum(p.default is p.empty for p in params)
    kw_required = [p.name for p in inspect.signature(fn).parameters.values()
                   if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    if required <= 1 and not kw_required:
        return PAYLOAD if params else NO_ARG
    if required == 2 and not kw_required:
        return RUN_AND_PAYLOAD
    raise ValueError(
        f"hook {type(hook).__name__}.{event} requires {required} positional argument(s)"
        f"{' and keyword-only ' + ', '.join(kw_required) if kw_required else ''}; an event method takes "
        f"none, (payload) or the legacy (run, payload)"
    )


def legacy_payload(event: str, payload: Any) -> Any:
    """What the second argument of a legacy ``(run, payload)`` method is: the metrics dict for
    ``on_cycle_complete``, the payload itself for every other event."""
    if event == "on_cycle_complete" and isinstance(payload, dict) and "metrics" in payload:
        return payload["metrics"]
    return payload


class HookBus:
    """Dispatches the 16 events to a list of hooks through a table built once.

    ``fire(event, payload)`` calls every hook that implements ``event`` in registration
    order and returns ``True`` when any of them asked to stop (returned ``False``).
    ``run`` is what legacy two-argument methods receive first (set by the run that owns the bus).
    """

    def __init__(self, hooks: Iterable[Any] = (), run: Any = None) -> None:
        self.hooks: list[Any] = list(hooks)
        self.run = run
        self._table: dict[str, list[tuple[Callable, int]]] = {e: [] for e in EVENTS}
        for hook in self.hooks:
            self._check_names(hook)
            for event in EVENTS:
                fn = getattr(hook, event, None)
                if fn is None or not callable(fn) or _is_noop(hook, event):
                    continue
                self._table[event].append((fn, call_mode(hook, event, fn)))

    @staticmethod
    def _check_names(hook: Any) -> None:
        unknown = sorted(
            n for n in dir(hook)
            if n.startswith("on_") and n not in _EVENT_SET and callable(getattr(hook, n, None))
        )
        if unknown:
            raise ValueError(
                f"hook {type(hook).__name__} defines {', '.join(unknown)}, which "
                f"{'is not an event' if len(unknown) == 1 else 'are not events'}; "
                f"the events are: {', '.join(EVENTS)}"
            )

    def has(self, event: str) -> bool:
        """True when at least one hook listens to ``event`` (lets the loop skip payload building)."""
        return bool(self._table[event])

    def fire(self, event: str, payload: Any = None) -> bool:
        stop = False
        for fn, mode in self._table[event]:
            if mode == PAYLOAD:
                result = fn(payload)
            elif mode == NO_ARG:
                result = fn()
            else:
                result = fn(self.run, legacy_payload(event, payload))
            if result is False:
                stop = True
        return stop

    def state_dict(self) -> dict[str, Any]:
        """States of the stateful hooks, keyed by position and class name."""
        return {
            f"{i}:{type(h).__name__}": h.state_dict()
            for i, h in enumerate(self.hooks)
            if callable(getattr(h, "state_dict", None))
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore hook states by position and class; a class whose position moved (hooks were
        added or removed between runs) is matched by name when it is unique on both sides."""
        saved_by_class: dict[str, list[str]] = {}
        for key in state:
            saved_by_class.setdefault(key.split(":", 1)[1], []).append(key)
        classes = [type(h).__name__ for h in self.hooks]
        for i, h in enumerate(self.hooks):
            if not callable(getattr(h, "load_state_dict", None)):
                continue
            name = classes[i]
            key = f"{i}:{name}"
            if key not in state and len(saved_by_class.get(name, [])) == 1 and classes.count(name) == 1:
                key = saved_by_class[name][0]
            if key in state:
                h.load_state_dict(state[key])
