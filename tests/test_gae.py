"""GAE against a plain-Python reference, including truncation bootstrap and termination."""

import random

import pytest
import torch

from engine.gae import gae


def reference_gae(rewards, values, terminated, truncated, final_values, next_value, gamma, lam):
    """Episode-by-episode reference written from the definition, one env at a time."""
    T, N = len(rewards), len(rewards[0])
    adv = [[0.0] * N for _ in range(T)]
    for n in range(N):
        running = 0.0
        for t in reversed(range(T)):
            if terminated[t][n]:
                next_v, cont = 0.0, 0.0
            elif truncated[t][n]:
                next_v, cont = final_values[t][n], 0.0  # bootstrap from the real last obs
            else:
                next_v = next_value[n] if t == T - 1 else values[t + 1][n]
                cont = 1.0
            delta = rewards[t][n] + gamma * next_v - values[t][n]
            running = delta + gamma * lam * cont * running
            adv[t][n] = running
    return adv


def _case(T, N, seed):
    rng = random.Random(seed)
    rewards = [[rng.uniform(-1, 1) for _ in range(N)] for _ in range(T)]
    values = [[rng.uniform(-2, 2) for _ in range(N)] for _ in range(T)]
    terminated = [[rng.random() < 0.1 for _ in range(N)] for _ in range(T)]
    truncated = [[(not terminated[t][n]) and rng.random() < 0.1 for n in range(N)] for t in range(T)]
    final_values = [[rng.uniform(-2, 2) for _ in range(N)] for _ in range(T)]
    next_value = [rng.uniform(-2, 2) for _ in range(N)]
    return rewards, values, terminated, truncated, final_values, next_value


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0)])
def test_gae_matches_reference(seed, gamma, lam):
    r, v, te, tr, fv, nv = _case(T=17, N=5, seed=seed)
    tv = [[fv[t][n] if tr[t][n] else 0.0 for n in range(5)] for t in range(17)]
    done = torch.tensor(te) | torch.tensor(tr)
    adv, target = gae(torch.tensor(r), torch.tensor(v), done, torch.tensor(nv), torch.tensor(tv), gamma, lam)
    ref = torch.tensor(reference_gae(r, v, te, tr, fv, nv, gamma, lam))
    assert torch.allclose(adv, ref, atol=1e-5)
    assert torch.allclose(target, ref + torch.tensor(v), atol=1e-5)


def test_truncation_bootstraps_and_termination_does_not():
    # one env, 2 steps; step 0 ends the episode; step 1 starts a new one
    rewards = torch.tensor([[1.0], [0.0]])
    values = torch.tensor([[0.0], [0.0]])
    done = torch.tensor([[True], [False]])
    next_value = torch.tensor([0.0])
    # terminated: advantage of step 0 is just the reward
    adv_term, _ = gae(rewards, values, done, next_value, torch.zeros(2, 1), 0.9, 0.95)
    assert adv_term[0, 0].item() == pytest.approx(1.0)
    # truncated with V(final_obs) = 10: advantage is r + gamma * 10
    adv_trunc, _ = gae(rewards, values, done, next_value, torch.tensor([[10.0], [0.0]]), 0.9, 0.95)
    assert adv_trunc[0, 0].item() == pytest.approx(1.0 + 0.9 * 10.0)


def test_gae_never_crosses_envs():
    T, N = 6, 3
    rewards = torch.zeros(T, N)
    rewards[:, 1] = 1.0  # only env 1 is rewarded
    adv, _ = gae(rewards, torch.zeros(T, N), torch.zeros(T, N, dtype=torch.bool), torch.zeros(N),
                 torch.zeros(T, N), 0.99, 0.95)
    assert torch.all(adv[:, 0] == 0) and torch.all(adv[:, 2] == 0) and torch.all(adv[:, 1] > 0)
