"""MultiBranchTransformer: shapes, gradient flow to every branch, bf16 autocast, determinism, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from engine.distributions import deterministic_action, make_distribution
from algos.transformer import MultiBranchTransformer, TransformerConfig, sinusoidal_table

SMALL = dict(d_model=16, n_heads=2, n_layers=1, dim_feedforward=32, portfolio_hidden=16, head_hidden=16)


def obs_space() -> gym.spaces.Dict:
    box = lambda shape: gym.spaces.Box(-np.inf, np.inf, shape, np.float32)  # noqa: E731
    return gym.spaces.Dict({"high_freq": box((12, 5)), "medium_freq": box((6, 5)), "low_freq": box((4, 5)),
                            "portfolio": box((3,))})


def make_obs(space: gym.spaces.Dict, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(batch, *s.shape, generator=g) for k, s in space.spaces.items()}


ACTION_SPACES = {"discrete": gym.spaces.Discrete(5), "continuous": gym.spaces.Box(-1.0, 1.0, (1,), np.float32)}


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
@pytest.mark.parametrize("batch", [1, 7])
def test_output_shapes(kind: str, batch: int) -> None:
    space, act = obs_space(), ACTION_SPACES[kind]
    torch.manual_seed(0)
    model = MultiBranchTransformer(space, act, TransformerConfig(**SMALL))
    params, value = model(make_obs(space, batch))
    assert params.shape == (batch, 5 if kind == "discrete" else 2)
    assert value.shape == (batch,)
    assert params.dtype == value.dtype == torch.float32
    dist = make_distribution(act, params)
    a = dist.sample()
    assert dist.log_prob(a).shape == (batch,)
    assert deterministic_action(act, params).shape == ((batch,) if kind == "discrete" else (batch, 1))


@pytest.mark.parametrize("fusion,pooling,positional", [
    ("attention", "last", "learned"), ("attention", "cls", "sinusoidal"),
    ("gated", "mean", "learned"), ("gated", "cls", "learned"),
])
@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_gradients_reach_every_parameter(fusion: str, pooling: str, positional: str, kind: str) -> None:
    space, act = obs_space(), ACTION_SPACES[kind]
    torch.manual_seed(1)
    cfg = TransformerConfig(**SMALL, fusion=fusion, pooling=pooling, positional=positional)
    model = MultiBranchTransformer(space, act, cfg)
    params, value = model(make_obs(space, 7, seed=1))
    dist = make_distribution(act, params)
    actions = dist.sample()
    loss = -dist.log_prob(actions).mean() - 0.01 * dist.entropy().mean() + (value - 1.0).pow(2).mean()
    loss.backward()
    names = {n for n, _ in model.named_parameters()}
    for key in ("high_freq", "medium_freq", "low_freq", "portfolio"):
        assert any(n.startswith(f"branches.{key}.") for n in names), key
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, f"{name} gradient is all zero"


@pytest.mark.parametrize("fusion", ["attention", "gated"])
def test_bf16_autocast_cpu_no_nan(fusion: str) -> None:
    space, act = obs_space(), ACTION_SPACES["discrete"]
    torch.manual_seed(2)
    model = MultiBranchTransformer(space, act, TransformerConfig(**SMALL, fusion=fusion))
    obs = make_obs(space, 7, seed=2)
    obs["high_freq"][0] *= 50.0  # large inputs must not overflow bf16 either
    ref_params, ref_value = model(obs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        params, value = model(obs)
        dist = make_distribution(act, params)
        loss = -dist.log_prob(dist.sample()).mean() + value.pow(2).mean()
    loss.backward()
    assert params.dtype == value.dtype == torch.float32
    assert torch.isfinite(params).all() and torch.isfinite(value).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # bf16 keeps ~3 significant digits: close to the fp32 result, not equal
    assert torch.allclose(params, ref_params, atol=0.05) and torch.allclose(value, ref_value, atol=0.1)


def test_deterministic_with_seed() -> None:
    space, act = obs_space(), ACTION_SPACES["continuous"]
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = MultiBranchTransformer(space, act, TransformerConfig(**SMALL))
        outs.append(model(make_obs(space, 3, seed=5)))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    torch.manual_seed(124)
    other = MultiBranchTransformer(space, act, TransformerConfig(**SMALL))(make_obs(space, 3, seed=5))
    assert not torch.equal(other[1], outs[0][1])


def test_generic_key_names_and_state_dict_roundtrip() -> None:
    box = lambda shape: gym.spaces.Box(-1, 1, shape, np.float32)  # noqa: E731
    space = gym.spaces.Dict({"bars.1m": box((5, 2)), "extra": box((2,)), "acct": box((4,))})
    torch.manual_seed(0)
    model = MultiBranchTransformer(space, gym.spaces.Discrete(3), TransformerConfig(**SMALL))
    assert model.time_keys == ["bars.1m"] and sorted(model.vector_keys) == ["acct", "extra"]
    clone = MultiBranchTransformer(space, gym.spaces.Discrete(3), TransformerConfig(**SMALL))
    clone.load_state_dict(model.state_dict())
    obs = make_obs(space, 2)
    assert torch.equal(model(obs)[0], clone(obs)[0])


def test_patching_groups_consecutive_bars() -> None:
    from algos.transformer import TimeBranch

    branch = TimeBranch(window=6, n_features=2, cfg=TransformerConfig(**SMALL, patch_size=4))
    assert (branch.patch, branch.pad, branch.pos.shape[0]) == (4, 2, 2)  # zero-pad 2 old bars -> 2 tokens
    assert branch.proj.in_features == 8
    whole = TimeBranch(window=3, n_features=2, cfg=TransformerConfig(**SMALL, patch_size=8))
    assert (whole.patch, whole.pad, whole.pos.shape[0]) == (3, 0, 1)  # patch capped at the window
    x = torch.randn(5, 6, 2)
    out = branch(x)
    assert out.shape == (5, 16)
    # the newest bar sits in the last (pooled) token and must move the output
    x2 = x.clone()
    x2[:, 5] += 1.0
    assert not torch.allclose(branch(x2), out)


@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("index", [0, -1])
def test_encode_one_token_matches_full_encoder(n_layers: int, index: int) -> None:
    from algos.transformer import _encoder, encode_one_token

    torch.manual_seed(3)
    enc = _encoder(TransformerConfig(**SMALL), n_layers)
    x = torch.randn(4, 6, 16, requires_grad=True)
    full, fast = enc(x)[:, index], encode_one_token(enc, x, index)
    assert fast.shape == (4, 16)
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-5)
    wrt = [x, *enc.parameters()]
    for g_full, g_fast in zip(torch.autograd.grad(full.pow(2).sum(), wrt), torch.autograd.grad(fast.pow(2).sum(), wrt)):
        torch.testing.assert_close(g_fast, g_full, atol=1e-5, rtol=1e-4)


def test_sinusoidal_table_values() -> None:
    t = sinusoidal_table(3, 4)
    assert t.shape == (3, 4)
    # position p, pair i: sin(p / 10000^(2i/d)), cos(p / 10000^(2i/d))
    assert t[0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert t[2, 0].item() == pytest.approx(np.sin(2.0), abs=1e-6)
    assert t[2, 3].item() == pytest.approx(np.cos(2.0 / 100.0), abs=1e-6)


def test_bad_input_errors() -> None:
    with pytest.raises(ValueError, match="n-heads"):
        TransformerConfig(d_model=10, n_heads=4).check()
    with pytest.raises(ValueError, match="fusion"):
        TransformerConfig(fusion="concat").check()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'cube'"):
        MultiBranchTransformer(gym.spaces.Dict({"cube": gym.spaces.Box(0, 1, (2, 2, 2))}), gym.spaces.Discrete(2))
    with pytest.raises(TypeError, match="Dict"):
        MultiBranchTransformer(gym.spaces.Box(0, 1, (3,)), gym.spaces.Discrete(2))  # type: ignore[arg-type]
    model = MultiBranchTransformer(obs_space(), gym.spaces.Discrete(5), TransformerConfig(**SMALL))
    obs = make_obs(obs_space(), 2)
    del obs["low_freq"]
    with pytest.raises(KeyError, match="low_freq"):
        model(obs)
