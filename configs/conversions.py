"""Checkpoint conversion steps for the config tree's layout (:class:`configs.train.TrainConfig`).

Registered with :func:`engine.formats.register_conversion` when ``configs`` is imported.
Format 1 -> 2 (the redesign): ``data`` and ``report_split`` moved into the FX section
(``fx.data``, ``fx.report_split``); the top-level ``eval_episodes`` went to
``hooks.eval_episodes`` (which may have been None then: the default 5); ``hooks.metrics_window``
became the top-level ``metrics_window``; and the checkpoint names its config class. (The preset
``fx`` kept its name: it is the default FX job again since format 4.)
"""

from __future__ import annotations

from typing import Any

from engine.formats import register_conversion

CONFIG_CLASS = "configs.train:TrainConfig"


def config_tree_1_to_2(ckpt: dict[str, Any]) -> None:
    cfg = ckpt.get("config")
    if not isinstance(cfg, dict):
        return
    for key in ("data", "report_split"):
        if key in cfg:
            cfg.setdefault("fx", {})[key] = cfg.pop(key)
    hooks = cfg.get("hooks")
    top_eval = cfg.pop("eval_episodes", None)
    if isinstance(hooks, dict):
        if hooks.get("eval_episodes") is None:
            hooks["eval_episodes"] = top_eval if top_eval is not None else 5
        if "metrics_window" in hooks:
            cfg["metrics_window"] = hooks.pop("metrics_window")
    ckpt.setdefault("config_class", CONFIG_CLASS)


register_conversion(1, config_tree_1_to_2, "configs.config_tree_1_to_2")
