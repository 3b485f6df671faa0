"""The hook bus: FxAI's 16 training events, their payloads, and a dispatch table built once.

A *hook* is any object with some of the 16 ``on_*`` methods below (a class with only
``on_episode_end`` is a valid hook). The engine fires each event with **one explicit
payload** (a plain ``dict``, never ``locals()``); a method that takes no argument besides
``self`` is called with none, so legacy callbacks such as ``def on_training_start(self)``
or ``def on_episode_end(self, episode_info)`` plug in unchanged.

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
    around the optimisation phase; ``losses`` is a dict of floats.
``on_evaluation_start({"cycle", "global_step"})`` / ``on_evaluation_end({"cycle", "global_step", "metrics"})``
    around an evaluation (fired by whoever evaluates, e.g. the evaluation hook).
``on_checkpoint_saved({"path", "global_step"})`` / ``on_checkpoint_loaded({"path", "global_step"})``
    after a checkpoint is written / restored.
``on_metrics_computed(metrics)``
    once per cycle after the update, with the flat metrics dict (``train/``, ``episode/``,
    ``perf/``, ... namespaces); hooks may add keys to it before it is logged.
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


def _wants_payload(fn: Callable) -> bool:
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(params) > 0


class HookBus:
    """Dispatches the 16 events to a list of hooks through a table built once.

    ``fire(event, payload)`` calls every hook that implements ``event`` in registration
    order and returns ``True`` when any of them asked to stop (returned ``False``).
    """

    def __init__(self, hooks: Iterable[Any] = ()) -> None:
        self.hooks: list[Any] = list(hooks)
        self._table: dict[str, list[tuple[Callable, bool]]] = {e: [] for e in EVENTS}
        for hook in self.hooks:
            self._check_names(hook)
            for event in EVENTS:
                fn = getattr(hook, event, None)
                if fn is None or not callable(fn) or _is_noop(hook, event):
                    continue
                self._table[event].append((fn, _wants_payload(fn)))

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
        for fn, wants in self._table[event]:
            result = fn(payload) if wants else fn()
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
