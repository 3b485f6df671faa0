"""What an FX checkpoint carries besides the weights (its ``env_spec``): the fitted feature
normalisation and what the features were computed with. With it, a policy runs on new bars
(a backtest of another file, a live feed) exactly as in training, without the training data."""

from __future__ import annotations

from typing import Any

from envs.fx.features import FeatureNorm, feature_names


def spec_of(env: Any) -> dict[str, Any]:
    """An FX env's spec: tensors, numbers and strings only (a checkpoint loads them with weights_only)."""
    return {
        "norm": env.norm.state_dict() if env.norm is not None else None,
        "bar_ns": int(env.bar_ns),
        "pair": env.context.pair.name,
        "pip": float(env.context.pip),
        "account": env.context.account,
        "features": list(feature_names(env.cfg)),
    }


def norm_from_spec(spec: dict[str, Any] | None) -> FeatureNorm | None:
    """The feature normalisation a checkpoint carries (None when it has none)."""
    if spec is None or spec.get("norm") is None:
        return None
    return FeatureNorm.from_state_dict(spec["norm"])
