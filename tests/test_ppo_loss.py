"""PPO and A2C losses on hand-computed values, with clipping active on both sides."""

import math

import pytest
import torch

from algos.a2c import a2c_loss
from algos.ppo import normalize_advantages, ppo_loss


def test_ppo_clipping_both_sides_known_values():
    eps = 0.2
    # ratios 1.5 (A>0: clipped at 1.2), 0.5 (A<0: clipped at 0.8), 1.1 (inside), 0.5 (A>0: unclipped, pessimistic)
    ratios = torch.tensor([1.5, 0.5, 1.1, 0.5])
    adv = torch.tensor([2.0, -1.0, 1.0, 1.0])
    old = torch.zeros(4)
    new = ratios.log()
    loss, stats = ppo_loss(new, old, adv, new_value=torch.zeros(4), old_value=torch.zeros(4),
                           value_target=torch.zeros(4), entropy=torch.zeros(4), clip_coef=eps,
                           clip_vloss=False, vf_coef=0.5, ent_coef=0.0)
    # per-sample surrogate max(-A r, -A clip(r)): -2.4, 0.8, -1.1, -0.5
    expected = (-2.4 + 0.8 - 1.1 - 0.5) / 4
    assert stats["policy_loss"].item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert stats["clipfrac"].item() == pytest.approx(3 / 4)  # |r-1| > 0.2 for 1.5, 0.5, 0.5
    # gradient flows only through the unclipped samples (index 2 and 3)
    new_req = ratios.log().clone().requires_grad_(True)
    loss2, _ = ppo_loss(new_req, old, adv, torch.zeros(4), torch.zeros(4), torch.zeros(4), torch.zeros(4),
                        eps, False, 0.5, 0.0)
    loss2.backward()
    g = new_req.grad
    assert g[0].item() == 0.0 and g[1].item() == 0.0
    assert g[2].item() == pytest.approx(-1.0 * 1.1 / 4) and g[3].item() == pytest.approx(-1.0 * 0.5 / 4)


def test_value_clipping_and_entropy_known_values():
    new_v = torch.tensor([1.0, 0.0])
    old_v = torch.tensor([0.0, 0.0])
    target = torch.tensor([2.0, 1.0])
    zeros = torch.zeros(2)
    ent = torch.tensor([0.5, 1.5])
    loss, stats = ppo_loss(zeros, zeros, zeros, new_v, old_v, target, ent, clip_coef=0.2, clip_vloss=True,
                           vf_coef=0.5, ent_coef=0.1)
    # sample 0: unclipped (1-2)^2=1; clipped v=0.2 -> (0.2-2)^2=3.24 -> max 3.24; sample 1: 1 and 1 -> 1
    v_loss = 0.5 * (3.24 + 1.0) / 2
    assert stats["value_loss"].item() == pytest.approx(v_loss)
    assert stats["entropy"].item() == pytest.approx(1.0)
    assert loss.item() == pytest.approx(0.5 * v_loss - 0.1 * 1.0)
    _, unclipped = ppo_loss(zeros, zeros, zeros, new_v, old_v, target, ent, 0.2, False, 0.5, 0.1)
    assert unclipped["value_loss"].item() == pytest.approx(0.5 * (1.0 + 1.0) / 2)


def test_approx_kl_zero_at_same_policy():
    lp = torch.tensor([-0.3, -1.2])
    _, stats = ppo_loss(lp, lp, torch.ones(2), torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2),
                        0.2, True, 0.5, 0.0)
    assert stats["approx_kl"].item() == pytest.approx(0.0, abs=1e-7)
    assert stats["clipfrac"].item() == 0.0


def test_normalize_advantages():
    a = normalize_advantages(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert a.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert a.std().item() == pytest.approx(1.0, abs=1e-4)


def test_a2c_loss_known_values():
    log_prob = torch.tensor([math.log(0.5), math.log(0.25)])
    adv = torch.tensor([1.0, -2.0])
    loss, stats = a2c_loss(log_prob, adv, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]),
                           torch.tensor([0.2, 0.4]), vf_coef=0.5, ent_coef=0.01)
    pg = -(1.0 * math.log(0.5) + -2.0 * math.log(0.25)) / 2
    assert stats["policy_loss"].item() == pytest.approx(pg)
    assert stats["value_loss"].item() == pytest.approx(0.25)
    assert loss.item() == pytest.approx(pg + 0.5 * 0.25 - 0.01 * 0.3)
