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
``fxai_spec``, or the ``.pt2`` extra file ``fxai_spec.json``; :func:`envs.fx.live.artifact.load_artifact`
reads both formats and returns a callable, and :meth:`envs.fx.live.agent.Agent.load` streams with one.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import nn

from engine.files import nearest_existing
from envs.fx.config import FxEnvConfig
from envs.fx.features import TIMEFRAMES, feature_names, scaled_columns
from envs.fx.live.artifact import ACCOUNT_COLUMNS, INPUTS, OUTPUTS, SPEC_FORMAT, SPEC_KEY
from envs.fx.vector import portfolio_vector
from envs.fx.windows import history_bars, window_sizes

if TYPE_CHECKING:
    from envs.fx.live.agent import Agent

FORMATS = ("onnx", "pt2")


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
    tmp = out.with_name(f"{out.stem}.tmp{out.suffix}")
    write(tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    return out


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """The exporters' notes (optimizer passes skipped, torchvision absent, deprecations) are not the user's."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_agent(agent: Agent, fmt: Literal["onnx", "pt2"], out: str | os.PathLike) -> Path:
    """Write ``agent`` as one ONNX or ``.pt2`` file at ``out`` (atomically: a temp file, then renamed)."""
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {fmt!r}")
    if agent.policy is None:
        raise ValueError(f"{agent.source} is already an exported artifact; export its checkpoint")
    model = ExportablePolicy(agent).eval()
    args = example_inputs(agent.fx)
    spec = json.dumps(artifact_spec(agent, fmt), sort_keys=True)
    out = Path(out)
    with _quiet_exporters():
        return _export(model, args, spec, fmt, out)


def _export(model: ExportablePolicy, args: tuple[torch.Tensor, ...], spec: str, fmt: str, out: Path) -> Path:
    with torch.no_grad():
        program = torch.export.export(model, args, dynamic_shapes=_dynamic_shapes(), strict=False)
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
# python -m engine.export
# ----------------------------------------------------------------------------------------------
@dataclass
class ExportArgs:
    """Export a trained FX checkpoint as one file: feature normalisation, policy and target mapping inside."""

    RANGES: ClassVar[dict[str, str]] = {"check": "[0, 1000000]"}
    """Allowed values (:mod:`engine.ranges`)."""

    ckpt: Path
    """Checkpoint file written by training (it carries the config, the feature normalisation and the weights)."""
    format: Literal["onnx", "pt2"]
    """``onnx`` (run it with onnxruntime, from any language) or ``pt2`` (``torch.export``, load with
    ``torch.export.load``)."""
    out: Path
    """The artifact to write (``.onnx`` or ``.pt2``, as the format; written to a temp file, then renamed)."""
    check: int = 256
    """After writing, run the artifact and the eager policy on this many random inputs and print the
    largest output difference and how many actions agree (0: no check)."""


def check_artifact(agent: Agent, path: Path, n: int = 256) -> dict[str, Any]:
    """The artifact at ``path`` against ``agent``'s eager policy on ``n`` random inputs: the largest absolute
    difference of each output and how many actions agree."""
    from envs.fx.live.artifact import load_artifact

    art = load_artifact(path)
    args = example_inputs(agent.fx, n, seed=1)
    with torch.no_grad():
        eager = ExportablePolicy(agent).eval()(*args)
    got = art({key: x.numpy() for key, x in zip(TIMEFRAMES, args[:3])}, args[3].numpy())
    diffs = {name: float((torch.as_tensor(got[name]).double() - ref.double()).abs().max())
             for name, ref in zip(("target", "target_units", "action", "params"), eager)}
    return {"inputs": n, "max_abs_diff": diffs,
            "actions_equal": int((torch.as_tensor(got["action"]) == eager[2]).sum())}


def export_checkpoint(args: ExportArgs) -> dict[str, Any]:
    """``python -m engine.export``: check the flags, load the checkpoint, write the artifact, check it."""
    from engine.ranges import check_numbers
    from envs.fx.live.agent import Agent

    check_numbers(args)
    if not Path(args.ckpt).is_file():
        raise FileNotFoundError(f"--ckpt: checkpoint {args.ckpt} does not exist")
    if Path(args.ckpt).suffix.lower() in (".onnx", ".pt2"):
        raise ValueError(f"--ckpt: {args.ckpt} is already an exported artifact; export the checkpoint it came from")
    if args.format not in FORMATS:
        raise ValueError(f"--format: must be one of {FORMATS} (got {args.format!r})")
    if Path(args.out).suffix.lower() != f".{args.format}":
        raise ValueError(f"--out {args.out}: a {args.format} artifact's file name must end in .{args.format}")
    if Path(args.out).is_dir():
        raise ValueError(f"--out {args.out}: is a directory; name the file to write")
    probe = nearest_existing(Path(args.out).resolve().parent)
    if not probe.is_dir():
        raise ValueError(f"--out {args.out}: {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK):
        raise PermissionError(f"--out {args.out}: {probe} is not writable")
    agent = Agent.load(args.ckpt)
    t0 = time.perf_counter()
    print(f"exporting {args.ckpt} ({agent.cfg.policy}, step {agent.global_step}) as {args.format} ...", flush=True)
    path = export_agent(agent, args.format, args.out)
    result: dict[str, Any] = {"artifact": str(path), "format": args.format, "bytes": path.stat().st_size,
                              "export_s": round(time.perf_counter() - t0, 2)}
    if args.check:
        check = check_artifact(agent, path, args.check)
        result["check"] = check
        worst = max(v for k, v in check["max_abs_diff"].items() if k != "action")
        print(f"check on {check['inputs']} random inputs: actions equal {check['actions_equal']}/{check['inputs']}, "
              f"largest output difference {worst:.2e}")
        if check["actions_equal"] != check["inputs"] or not math.isfinite(worst) or worst > 1e-4:
            print("warning: the artifact disagrees with the eager policy", file=sys.stderr)
    print(f"wrote {path} ({result['bytes'] / 1024:.0f} KiB, {args.format}; inputs {', '.join(INPUTS)}; "
          f"outputs {', '.join(OUTPUTS)})")
    return result


__all__ = ["ExportArgs", "ExportablePolicy", "FORMATS", "artifact_spec", "check_artifact", "example_inputs",
           "export_agent", "export_checkpoint"]
