"""Multi-branch transformer policy for multi-timescale observations.

The FX env observes the market at several bar sizes at once (a gymnasium ``Dict`` with one
``[window, features]`` Box per timescale plus a flat ``portfolio`` vector). This policy gives
each timescale its own small transformer encoder, each flat vector its own MLP, fuses the
per-branch embeddings, and ends in an actor head (:class:`algos.distributions.ActionHead`)
and a critic head. It is generic over key names: every 2-D Box key becomes a time branch,
every 1-D Box key a vector branch.

Speed (the PPO update runs it on minibatches of hundreds of windows, often on CPU): each
token covers ``patch_size`` consecutive bars, and with ``last``/``cls`` pooling the final
encoder layer is evaluated for the pooled token only (:func:`encode_one_token`, exact).

``forward(obs)`` follows the shared policy contract: ``(dist_params [B, D], value [B])``,
both float32 even under bf16 autocast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal, Mapping

import gymnasium as gym
import torch
from torch import nn

from algos.distributions import ActionHead, layer_init
from engine.distributions import action_dim
from engine.ranges import check_numbers


@dataclass
class TransformerConfig:
    """Sizes and choices of :class:`MultiBranchTransformer`."""

    RANGES: ClassVar[dict[str, str]] = {
        "d_model": "[1, 8192]", "n_heads": "[1, 256]", "n_layers": "[1, 64]", "dim_feedforward": "[1, 65536]",
        "patch_size": "[1, 4096]", "dropout": "[0, 1)", "portfolio_hidden": "[1, 65536]", "head_hidden": "[1, 65536]",
    }
    """Allowed values (:mod:`engine.ranges`)."""

    d_model: int = 64
    """Width of every branch embedding and transformer token."""
    n_heads: int = 4
    """Attention heads per transformer layer (must divide d_model)."""
    n_layers: int = 2
    """Transformer encoder layers per time branch."""
    dim_feedforward: int = 128
    """Hidden width of each transformer layer's feed-forward block."""
    patch_size: int = 4
    """Consecutive bars merged into one token by the input projection (PatchTST-style), so a
    64-bar window costs 16 tokens; a window not divisible by it is zero-padded at the old end.
    1 = one token per bar."""
    dropout: float = 0.0
    """Dropout inside the transformer layers (0 is usual for RL: PPO ratios need a stable policy)."""
    positional: Literal["learned", "sinusoidal"] = "learned"
    """Positional encoding added to the projected bars: a learned table or fixed sinusoids."""
    pooling: Literal["last", "mean", "cls"] = "last"
    """How a time branch becomes one token: the newest bar, the mean over the window, or a learned CLS token."""
    fusion: Literal["attention", "gated"] = "attention"
    """Fusing branch embeddings: one self-attention layer over branch tokens + mean, or gated concatenation."""
    portfolio_hidden: int = 64
    """Hidden width of the MLP that embeds each 1-D (portfolio) observation key."""
    head_hidden: int = 64
    """Hidden width of the actor and critic heads."""

    def check(self) -> None:
        """Raise one ``ValueError`` naming the ``--model.*`` flag of the first bad value (the commands call it before
        any work, through :func:`engine.launch.validate`; :func:`algos.build_transformer` too)."""
        check_numbers(self, "--model.")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"--model.d-model ({self.d_model}) must be a positive multiple of --model.n-heads ({self.n_heads})")
        for name, allowed in (("positional", ("learned", "sinusoidal")), ("pooling", ("last", "mean", "cls")),
                              ("fusion", ("attention", "gated"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"--model.{name} must be one of {allowed}, got {getattr(self, name)!r}")


def sinusoidal_table(length: int, d_model: int) -> torch.Tensor:
    """The fixed sine/cosine positional table of "Attention is all you need", shape [length, d_model]."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
    return table


def _encoder(cfg: TransformerConfig, n_layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        cfg.d_model, cfg.n_heads, cfg.dim_feedforward, cfg.dropout,
        activation="gelu", batch_first=True, norm_first=True,
    )
    # norm_first layers leave the residual stream un-normalised: close with a LayerNorm.
    return nn.TransformerEncoder(layer, n_layers, norm=nn.LayerNorm(cfg.d_model), enable_nested_tensor=False)


def encode_one_token(encoder: nn.TransformerEncoder, tokens: torch.Tensor, index: int) -> torch.Tensor:
    """``encoder(tokens)[:, index]`` without computing the other tokens' outputs in the last layer.

    Only the pooled token's output is used, so the last layer needs queries, attention output
    and feed-forward for that token alone (keys and values still come from every token); this
    saves about a third of a two-layer branch's work. Exact for the pre-norm layers built by
    :func:`_encoder` (the tests compare it with the full encoder).
    """
    *body, last = encoder.layers
    for layer in body:
        tokens = layer(tokens)
    h = last.norm1(tokens)
    q = h[:, index:index + 1] if index != -1 else h[:, -1:]
    x = tokens[:, index:index + 1] if index != -1 else tokens[:, -1:]
    x = x + last.dropout1(last.self_attn(q, h, h, need_weights=False)[0])
    x = x + last.dropout2(last.linear2(last.dropout(last.activation(last.linear1(last.norm2(x))))))
    return encoder.norm(x).squeeze(1)


class TimeBranch(nn.Module):
    """[B, W, F] bars -> [B, d_model]: patch projection, positions, transformer encoder, pooling."""

    def __init__(self, window: int, n_features: int, cfg: TransformerConfig) -> None:
        super().__init__()
        self.pooling = cfg.pooling
        self.patch = min(cfg.patch_size, window)
        n_patches = -(-window // self.patch)
        self.pad = n_patches * self.patch - window
        self.proj = nn.Linear(self.patch * n_features, cfg.d_model)
        n_tokens = n_patches + (1 if cfg.pooling == "cls" else 0)
        if cfg.positional == "learned":
            self.pos = nn.Parameter(torch.randn(n_tokens, cfg.d_model) * 0.02)
        else:
            self.register_buffer("pos", sinusoidal_table(n_tokens, cfg.d_model), persistent=False)
        if cfg.pooling == "cls":
            self.cls = nn.Parameter(torch.randn(1, 1, cfg.d_model) * 0.02)
        self.encoder = _encoder(cfg, cfg.n_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = nn.functional.pad(x, (0, 0, self.pad, 0))
        # [B, W, F] -> [B, W / patch, patch * F]: each token sees `patch` consecutive bars, oldest first
        tokens = self.proj(x.reshape(x.shape[0], -1, self.patch * x.shape[-1]))
        if self.pooling == "cls":
            tokens = torch.cat([self.cls.to(tokens.dtype).expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = tokens + self.pos.to(tokens.dtype)
        if self.pooling == "mean":
            return self.encoder(tokens).mean(dim=1)
        return encode_one_token(self.encoder, tokens, 0 if self.pooling == "cls" else -1)


class VectorBranch(nn.Module):
    """[B, P] flat features (e.g. the portfolio state) -> [B, d_model]."""

    def __init__(self, n_features: int, cfg: TransformerConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            layer_init(nn.Linear(n_features, cfg.portfolio_hidden)), nn.GELU(),
            layer_init(nn.Linear(cfg.portfolio_hidden, cfg.d_model)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AttentionFusion(nn.Module):
    """Self-attention over the K branch tokens (each tagged with a learned branch embedding), then mean."""

    def __init__(self, n_branches: int, cfg: TransformerConfig) -> None:
        super().__init__()
        self.branch_embed = nn.Parameter(torch.randn(n_branches, cfg.d_model) * 0.02)
        self.encoder = _encoder(cfg, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encoder(tokens + self.branch_embed.to(tokens.dtype)).mean(dim=1)


class GatedFusion(nn.Module):
    """Concatenate the K embeddings, scale each feature by a learned sigmoid gate, project to d_model."""

    def __init__(self, n_branches: int, cfg: TransformerConfig) -> None:
        super().__init__()
        width = n_branches * cfg.d_model
        self.norm = nn.LayerNorm(width)
        self.gate = nn.Linear(width, width)
        self.proj = nn.Linear(width, cfg.d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        flat = self.norm(tokens.flatten(1))
        return self.proj(torch.sigmoid(self.gate(flat)) * flat)


def _module_name(key: str) -> str:
    # ModuleDict names cannot contain '.'; keep the rest so state_dict keys stay readable.
    return key.replace(".", "_")


class MultiBranchTransformer(nn.Module):
    """Actor-critic over a ``Dict`` observation of time windows ([W, F] Boxes) and flat vectors ([P] Boxes).

    ``forward(obs)`` takes a mapping (dict or TensorDict) of tensors with a leading batch
    dimension and returns ``(dist_params [B, D], value [B])`` in float32.
    """

    def __init__(self, observation_space: gym.spaces.Dict, action_space: gym.Space,
                 cfg: TransformerConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or TransformerConfig()
        if not isinstance(observation_space, gym.spaces.Dict):
            raise TypeError(f"MultiBranchTransformer needs a gymnasium Dict observation space, got {observation_space!r}")
        action_dim(action_space)  # raises a clear error for unsupported action spaces
        self.cfg = cfg
        self.time_keys: list[str] = []
        self.vector_keys: list[str] = []
        branches: dict[str, nn.Module] = {}
        for key, space in observation_space.spaces.items():
            if not isinstance(space, gym.spaces.Box):
                raise TypeError(f"observation key {key!r}: only Box spaces are supported, got {space!r}")
            name = _module_name(key)
            if name in branches:
                raise ValueError(f"observation keys collide after replacing '.' with '_': {key!r}")
            if len(space.shape) == 2:
                self.time_keys.append(key)
                branches[name] = TimeBranch(space.shape[0], space.shape[1], cfg)
            elif len(space.shape) == 1:
                self.vector_keys.append(key)
                branches[name] = VectorBranch(space.shape[0], cfg)
            else:
                raise ValueError(f"observation key {key!r} has shape {space.shape}; expected [window, features] or [features]")
        if not branches:
            raise ValueError("observation space has no keys")
        self.keys = self.time_keys + self.vector_keys
        self.branches = nn.ModuleDict({_module_name(k): branches[_module_name(k)] for k in self.keys})
        n = len(self.keys)
        self.fusion: nn.Module = AttentionFusion(n, cfg) if cfg.fusion == "attention" else GatedFusion(n, cfg)
        self.actor = nn.Sequential(layer_init(nn.Linear(cfg.d_model, cfg.head_hidden)), nn.Tanh())
        self.action_head = ActionHead(action_space, cfg.head_hidden, init_std=0.01)
        self.critic = nn.Sequential(
            layer_init(nn.Linear(cfg.d_model, cfg.head_hidden)), nn.Tanh(),
            layer_init(nn.Linear(cfg.head_hidden, 1), std=1.0),
        )

    def features(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The fused embedding [B, d_model] of an observation batch."""
        tokens = []
        for key in self.keys:
            try:
                x = obs[key]
            except KeyError:
                raise KeyError(f"observation is missing key {key!r} (policy expects {self.keys})") from None
            if not torch.is_floating_point(x) or x.dtype == torch.float64:
                x = x.float()
            tokens.append(self.branches[_module_name(key)](x))
        return self.fusion(torch.stack(tokens, dim=1))

    def forward(self, obs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.features(obs)
        params = self.action_head(self.actor(z))
        value = self.critic(z).squeeze(-1)
        return params.float(), value.float()
