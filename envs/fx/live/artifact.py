"""Running an exported FX policy (:mod:`envs.fx.live.export` writes them): an ``.onnx`` file through
onnxruntime on the CPU, or a ``.pt2`` file through ``torch.export.load``, both behind one call:
``artifact(windows, account) -> {target, target_units, action, params}`` (numpy in and out).

Use it without the rest of FxAI's training stack::

    art = load_artifact("policy.onnx")
    windows = raw_windows(bars, art.fx, art.bar_ns)          # envs.fx.windows: the numpy feature function
    account = np.array([[position, unrealised_pnl, bars_held, last_target]])
    target = art(windows, account)["target"][0]              # fraction of art.spec["max_position"]

or with onnxruntime alone: the input names are :data:`INPUTS` (float64), the outputs :data:`OUTPUTS`,
and the JSON spec is the model's ``fxai_spec`` metadata property.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.config import config_from_dict
from envs.fx.config import FxEnvConfig
from envs.fx.features import TIMEFRAMES

SPEC_KEY = "fxai_spec"
"""ONNX metadata property (and, with ``.json``, the ``.pt2`` extra file) holding the artifact's spec."""
SPEC_FORMAT = "fxai-policy/1"
INPUTS = ("high_freq", "medium_freq", "low_freq", "account")
OUTPUTS = ("target", "target_units", "action", "params")
ACCOUNT_COLUMNS = ("position", "unrealised_pnl", "time_in_position", "last_target")
"""The ``account`` input's columns: signed units, account currency, bars held, units."""


class Artifact:
    """An exported policy, loaded: ``artifact(windows, account) -> {target, target_units, action, params}``
    (numpy in, numpy out). ``spec`` is its JSON spec; ``fx`` and ``bar_ns`` are what
    :func:`envs.fx.windows.raw_windows` needs to compute its inputs from bars."""

    def __init__(self, path: Path, spec: dict[str, Any], run: Callable[[list[np.ndarray]], list[np.ndarray]]) -> None:
        self.path, self.spec, self._run = path, spec, run
        self.fx = config_from_dict(FxEnvConfig, spec["fx"])
        self.bar_ns = int(spec["bar_ns"])

    def __call__(self, windows: dict[str, np.ndarray], account: np.ndarray) -> dict[str, np.ndarray]:
        inputs = [np.ascontiguousarray(windows[key], dtype=np.float64) for key in TIMEFRAMES]
        inputs.append(np.ascontiguousarray(np.asarray(account, dtype=np.float64).reshape(-1, 4)))
        return dict(zip(OUTPUTS, self._run(inputs)))


def load_artifact(path: str | os.PathLike, threads: int = 1) -> Artifact:
    """Load an ``.onnx`` (onnxruntime, CPU) or ``.pt2`` (``torch.export.load``) artifact written by
    :func:`envs.fx.live.export.export_agent`; the format is read from the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"artifact {path} does not exist")
    with open(path, "rb") as fh:
        is_zip = fh.read(2) == b"PK"  # a .pt2 file is a zip archive, an ONNX file a protobuf
    if is_zip:
        extra = {f"{SPEC_KEY}.json": ""}
        program = torch.export.load(path, extra_files=extra)
        module = program.module()

        @torch.no_grad()
        def run_pt2(inputs: list[np.ndarray]) -> list[np.ndarray]:
            return [o.numpy() for o in module(*(torch.from_numpy(x) for x in inputs))]

        return Artifact(path, json.loads(extra[f"{SPEC_KEY}.json"]), run_pt2)

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if SPEC_KEY not in meta:
        raise ValueError(f"{path}: not an FxAI artifact (no {SPEC_KEY!r} metadata)")

    def run_onnx(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return session.run(list(OUTPUTS), dict(zip(INPUTS, inputs)))

    return Artifact(path, json.loads(meta[SPEC_KEY]), run_onnx)


__all__ = ["ACCOUNT_COLUMNS", "Artifact", "INPUTS", "OUTPUTS", "SPEC_FORMAT", "SPEC_KEY", "load_artifact"]
