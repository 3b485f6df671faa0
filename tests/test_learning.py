"""The engine learns: PPO solves most of CartPole on a small budget (fixed seed, real threshold).

The full claim (>= 475 within 100k steps for seeds 1, 2, 3) is the README's command; this is
the suite-sized version: 30k steps, about 15 s here. Measured: seeds 1/2/3 reach 490/461/418.
"""

from engine.ppo import parse_args, train


def test_ppo_learns_cartpole_on_a_small_budget(tmp_path):
    cfg = parse_args(["cartpole", "--total-steps", "30000", "--seed", "1", "--out-dir", str(tmp_path),
                      "--hooks.no-progress"])
    summary = train(cfg)
    assert summary["global_step"] >= 30000
    # a random policy averages ~22; an untrained MLP the same
    assert summary["episode_return_mean"] >= 400, summary
