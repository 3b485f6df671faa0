"""Exported FX policies: one file holding the feature normalisation, the network and the mapping to a
target position, in ONNX (run with onnxruntime, any language) or ``torch.export`` (``.pt2``) format.

The artifact's inputs are what a live system has (float64, any batch size ``B``):

* ``high_freq`` ``[B, W1, F]``, ``medium_freq`` ``[B, W2, F]``, ``low_freq`` ``[B, W3, F]``: the RAW
  (unnormalised) feature windows of the newest bar, as :func:`envs.fx.windows.raw_windows` computes
  them from the bars (the numpy feature function shipped beside the artifact; NaN allowed where a
  lookback is not filled, as the env zeroes them);
* ``account`` ``[B, 4]``: position (signed base-currency units), unrealised P&L of the position
  (account currency), bars held in the position, the previous decision's target (units).

Inside: the checkpoint's :class:`~envs.fx.features.FeatureNorm` (float64, as the env), NaN -> 0 and
clipping, the portfolio observation (:func:`envs.fx.vector.portfolio_vector`), the engine's running
observation normaliser (``--norm-obs``) when the checkpoint has one, the policy network and its
deterministic action (argmax of the logits, or the Gaussian mean). Outputs: ``target`` ``[B]``
(float64, the target position as a fraction of ``max_position``), ``target_units`` ``[B]`` (float64),
``action`` ``[B]`` (the level index, int64, or the continuous action, float32) and ``params``
``[B, D]`` (float32 logits, or mean and log-std). The file also carries its spec (JSON: the FX
config, bar length, pair, position levels, input and output names): ONNX metadata property
``fxai_spec``, or the ``.pt2`` extra file ``fxai_spec.json``; :func:`load_artifact` reads both
formats and returns a callable.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from envs.fx.config import FxEnvConfig
from envs.fx.features import TIMEFRAMES, feature_names, scaled_columns
from envs.fx.live.agent import Agent
from envs.fx.vector import portfolio_vector
from envs.fx.windows import history_bars, window_sizes

FORMATS = ("onnx", "pt2")
SPEC_KEY = "fxai_spec"
"""ONNX metadata property (and, with ``.json``, the ``.pt2`` extra file) holding the artifact's spec."""
SPEC_FORMAT = "fxai-policy/1"
INPUTS = ("high_freq", "medium_freq", "low_freq", "account")
OUTPUTS = ("target", "target_units", "action", "params")
ACCOUNT_COLUMNS = ("position", "unrealised_pnl", "time_in_position", "last_target")


class ExportablePolicy(nn.Module):
    """An :class:`~envs.fx.live.agent.Agent` as one module from raw windows and account to the target
    (see the module docstring); positional tensor inputs, so it exports without tricks."""

    def __init__(self, agent: Agent) -> None:
        super().__init__()
        fx = agent.fx
        self.fx = fx
        self.price_mode = fx.obs_mode == "price"
        self.clip = float(fx.obs_clip)
        self.discrete = fx.action_mode == "discrete"
        self.max_position = float(fx.max_position)
        n = len(feature_names(fx))
        scaled = torch.zeros(n, dtype=torch.bool)
        if not self.price_mode:
            cols = torch.as_tensor(scaled_columns(fx))
            scaled[cols] = True
            for key in TIMEFRAMES:  # zero mean / unit std on the clock columns, which stay as they are
                mean, std = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)
                mean[cols], std[cols] = agent.feature_norm.mean[key].double(), agent.feature_norm.std[key].double()
                self.register_buffer(f"mean_{key}", mean)
                self.register_buffer(f"std_{key}", std)
        self.register_buffer("scaled", scaled)
        self.obs_keys = (*TIMEFRAMES, "portfolio")
        self.obs_clip = 0.0
        if agent.obs_normalizer is not None:  # engine.normalize.ObsNormalizer._norm, in the same precision
            self.obs_clip = float(agent.obs_normalizer.clip)
            for key in self.obs_keys:
                rms = agent.obs_normalizer.rms[key]
                self.register_buffer(f"obs_mean_{key}", rms.mean.to(torch.float32))
                self.register_buffer(f"obs_std_{key}", (rms.var + 1e-8).sqrt().to(torch.float32))
        self.register_buffer("levels", torch.tensor(fx.position_levels, dtype=torch.float64))
        self.policy = copy.deepcopy(agent.policy).cpu().eval()

    def forward(self, high_freq: torch.Tensor, medium_freq: torch.Tensor, low_freq: torch.Tensor,
                account: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        obs: dict[str, torch.Tensor] = {}
        for key, x in zip(TIMEFRAMES, (high_freq, medium_freq, low_freq)):
            x = x.to(torch.float64)
            if not self.price_mode:
                x = torch.where(self.scaled, (x - getattr(self, f"mean_{key}")) / getattr(self, f"std_{key}"), x)
            x = torch.where(torch.isfinite(x), x, torch.zeros_like(x))
            if not self.price_mode:
                x = x.clamp(-self.clip, self.clip)
            obs[key] = x.to(torch.float32)
        account = account.to(torch.float64)
        obs["portfolio"] = portfolio_vector(account[:, 0], account[:, 1], account[:, 2], account[:, 3], self.fx)
        if self.obs_clip > 0:
            obs = {key: ((v - getattr(self, f"obs_mean_{key}")) / getattr(self, f"obs_std_{key}"))
                   .clamp(-self.obs_clip, self.obs_clip) for key, v in obs.items()}
        params, _ = self.policy(obs)
        params = params.float()
        if self.discrete:
            action = params.argmax(dim=-1)
            target = self.levels[action]
        else:
            mean = params[:, : params.shape[-1] // 2]
            action = mean[:, 0]
            a = action.to(torch.float64)
            target = torch.where(torch.isnan(a), torch.zeros_like(a), a).clamp(-1.0, 1.0)
        return target, target * self.max_position, action, params


def artifact_spec(agent: Agent, fmt: str) -> dict[str, Any]:
    """What an artifact says about itself (JSON-safe)."""
    fx = agent.fx
    sizes = window_sizes(fx)
    n = len(feature_names(fx))
    return {
        "format": SPEC_FORMAT, "artifact": fmt,
        "inputs": {**{key: {"shape": ["B", w, n], "dtype": "float64"} for key, w in sizes.items()},
                   "account": {"shape": ["B", 4], "dtype": "float64", "columns": list(ACCOUNT_COLUMNS)}},
        "outputs": {"target": "float64 [B]: target position / max_position",
                    "target_units": "float64 [B]: target position in base-currency units",
                    "action": ("int64 [B]: level index" if fx.action_mode == "discrete" else "float32 [B]: action"),
                    "params": "float32 [B, D]: logits, or mean and log-std"},
        "features": list(feature_names(fx)), "fx": dataclasses.asdict(fx), "bar_ns": agent.bar_ns,
        "pair": agent.context.pair.name, "pip": agent.context.pip, "account_currency": agent.context.account,
        "position_levels": list(fx.position_levels), "max_position": fx.max_position,
        "action_mode": fx.action_mode, "history_bars": history_bars(fx), "policy": agent.cfg.policy,
        "checkpoint": agent.source, "global_step": agent.global_step,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def example_inputs(fx: FxEnvConfig, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random float64 inputs of the artifact's shapes (for tracing and self-checks)."""
    g = torch.Generator().manual_seed(seed)
    n = len(feature_names(fx))
    windows = [torch.randn((batch, w, n), generator=g, dtype=torch.float64) * 1e-3
               for w in window_sizes(fx).values()]
    account = torch.zeros((batch, 4), dtype=torch.float64)
    account[:, 0] = torch.randint(-100, 101, (batch,), generator=g).double() * 1000
    account[:, 1] = torch.randn(batch, generator=g, dtype=torch.float64) * 50
    account[:, 2] = torch.randint(0, 200, (batch,), generator=g).double()
    account[:, 3] = account[:, 0]
    return (*windows, account)


def _dynamic_shapes() -> dict[str, dict[int, Any]]:
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    return {name: {0: batch} for name in ("high_freq", "medium_freq", "low_freq", "account")}


def _write_atomic(out: Path, write: Callable[[Path], None]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    write(tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    return out


def export_agent(agent: Agent, fmt: Literal["onnx", "pt2"], out: str | os.PathLike) -> Path:
    """Write ``agent`` as one ONNX or ``.pt2`` file at ``out`` (atomically: a temp file, then renamed)."""
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {fmt!r}")
    model = ExportablePolicy(agent).eval()
    args = example_inputs(agent.fx)
    spec = json.dumps(artifact_spec(agent, fmt), sort_keys=True)
    with torch.no_grad():
        program = torch.export.export(model, args, dynamic_shapes=_dynamic_shapes(), strict=False)
    out = Path(out)
    if fmt == "pt2":
        return _write_atomic(out, lambda tmp: torch.export.save(program, tmp, extra_files={f"{SPEC_KEY}.json": spec}))

    import onnx

    def write_onnx(tmp: Path) -> None:
        onnx_program = torch.onnx.export(program, f=None, input_names=list(INPUTS), output_names=list(OUTPUTS),
                                         dynamo=True, external_data=False, optimize=True, verbose=False)
        proto = onnx_program.model_proto
        onnx.helper.set_model_props(proto, {SPEC_KEY: spec})
        onnx.save(proto, tmp)

    return _write_atomic(out, write_onnx)


# ----------------------------------------------------------------------------------------------
# running an artifact
# ----------------------------------------------------------------------------------------------
class Artifact:
    """An exported policy, loaded: ``artifact(windows, account) -> {target, target_units, action, params}``
    (numpy in, numpy out). ``spec`` is its JSON spec; ``fx`` and ``bar_ns`` are what
    :func:`envs.fx.windows.raw_windows` needs to compute its inputs from bars."""

    def __init__(self, path: Path, spec: dict[str, Any], run: Callable[[list[np.ndarray]], list[np.ndarray]]) -> None:
        self.path, self.spec, self._run = path, spec, run
        fx = dict(spec["fx"])
        fx["position_levels"] = tuple(fx["position_levels"])
        self.fx = FxEnvConfig(**fx)
        self.bar_ns = int(spec["bar_ns"])

    def __call__(self, windows: dict[str, np.ndarray], account: np.ndarray) -> dict[str, np.ndarray]:
        inputs = [np.ascontiguousarray(windows[key], dtype=np.float64) for key in TIMEFRAMES]
        inputs.append(np.ascontiguousarray(np.asarray(account, dtype=np.float64).reshape(-1, 4)))
        return dict(zip(OUTPUTS, self._run(inputs)))


def load_artifact(path: str | os.PathLike, threads: int = 1) -> Artifact:
    """Load an ``.onnx`` (onnxruntime, CPU) or ``.pt2`` (``torch.export.load``) artifact written by
    :func:`export_agent`; the format is read from the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"artifact {path} does not exist")
    with open(path, "rb") as fh:
        is_zip = fh.read(2) == b"PK"  # a .pt2 file is a zip archive; an ONNX file is a protobuf
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


__all__ = ["ACCOUNT_COLUMNS", "Artifact", "ExportablePolicy", "FORMATS", "INPUTS", "OUTPUTS", "artifact_spec",
           "example_inputs", "export_agent", "load_artifact"]
