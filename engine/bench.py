"""``python -m engine.bench [engine|env|policy|scaling|all]``: side-by-side speed, as ratios.

Absolute times on shared machines are noise; every comparison here runs its contenders in
the same process, interleaved over several rounds, and reports the median ratio. Speeds are
steps per *CPU* second of the measured loop (set-up excluded; one torch thread), which other
processes on a shared machine disturb far less than wall time.

* ``engine``: training SPS of the engine vs a bare PyTorch PPO loop written below (same
  env, network and hyper-parameters; no Fabric, hooks or TensorDict), the engine with 16
  no-op hooks, and the engine with the default hooks on.
* ``env``: FX env steps/s at N = 1, 64, 1024 vs gym-anytrading's ``forex-v0`` (``envs/fx/bench.py``).
* ``policy``: training SPS with the multi-branch transformer vs the MLP policy on the FX env.
* ``scaling``: CPU DDP weak scaling, 1 vs 2 processes (gloo).
* ``latency``: per-decision latency of a deployed agent at batch 1 (streaming agent, ONNX and pt2 artifacts;
  absolute microseconds, median and p95: ``envs/fx/live/latency.py``).

Results are printed and written to ``--out`` (``bench.json``).
"""

from __future__ import annotations

if __name__ == "__main__":  # Ctrl-C during the imports below: one line, exit 130
    from engine.startup import quiet_interrupts

    quiet_interrupts()

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch
import tyro
from gymnasium.vector import AutoresetMode

from algos.policies import MLPActorCritic
from configs import TrainConfig, get_preset
from engine.cli import run_command
from engine.distributions import make_distribution
from engine.events import EVENTS
from engine.files import write_atomic
from engine.ranges import check_numbers


@dataclass
class BenchArgs:
    """Benchmarks of the FxAI engine; every figure is a ratio measured in one run."""

    RANGES: ClassVar[dict[str, str]] = {"steps": "[1024, 1e9]", "rounds": "[1, 1000]", "threads": "[1, {cpus}]",
                                        "ttq_target": "[-100, 100]", "ttq_seeds": "[0, 4294967295]",
                                        "ttq_eval_steps": "[1, 1e9]"}
    """Allowed values (:mod:`engine.ranges`; a measurement needs a few cycles)."""

    what: tyro.conf.Positional[Literal["engine", "env", "policy", "scaling", "latency", "ttq", "all"]] = "engine"
    """Which benchmark to run."""
    steps: int = 16_384
    """Env steps per engine/bare-loop/policy measurement."""
    rounds: int = 3
    """Interleaved repetitions; the median is reported."""
    threads: int = 1
    """torch threads for the in-process measurements."""
    out: str = "bench.json"
    """Where to write the results (JSON)."""
    ttq_target: float = 4.0
    """ttq: the validation Sharpe ratio both configurations must reach."""
    ttq_seeds: tuple[int, ...] = (1, 2)
    """ttq: the seeds each configuration trains with (the same for both)."""
    ttq_eval_steps: int = 8192
    """ttq: env steps between validation backtests (their time is not counted)."""


# ----------------------------------------------------------------------------------------------
# the bare loop: CleanRL-style PPO with no Fabric, hooks or TensorDict
# ----------------------------------------------------------------------------------------------
def bare_ppo(cfg: TrainConfig, cpu: bool = True) -> float:
    """Train like the engine does, with plain tensors; returns steps per CPU second (or wall second).

    It does what CleanRL's ppo.py does and nothing else: episode statistics from gymnasium's
    wrapper, the per-minibatch approx-KL and clip-fraction diagnostics, no checkpoints.
    """
    p = cfg.ppo
    torch.manual_seed(cfg.seed)
    envs = gym.make_vec(cfg.env, num_envs=cfg.num_envs, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)  # as CleanRL does: a loop must report returns
    returns: list[float] = []
    logged: list[tuple[float, float, float]] = []  # what CleanRL writes to its logger each update
    space = envs.single_action_space
    policy = MLPActorCritic(envs.single_observation_space, space, tuple(cfg.mlp.hidden), cfg.mlp.activation)
    opt = torch.optim.Adam(policy.parameters(), lr=p.learning_rate, eps=1e-5)
    T, N = cfg.rollout_steps, cfg.num_envs
    num_updates = -(-cfg.total_steps // (T * N))
    obs_np, _ = envs.reset(seed=cfg.seed)
    obs = torch.as_tensor(obs_np, dtype=torch.float32)
    obs_b = torch.zeros((T, N, *envs.single_observation_space.shape))
    act_b = torch.zeros((T, N), dtype=torch.long)
    logp_b, val_b, rew_b, done_b, tv_b = (torch.zeros((T, N)) for _ in range(5))
    clock = time.process_time if cpu else time.perf_counter
    step, t0 = 0, clock()
    for update in range(num_updates):
        if p.lr_schedule == "linear":
            opt.param_groups[0]["lr"] = p.learning_rate * (1.0 - update / num_updates)
        for t in range(T):
            with torch.no_grad():
                params, value = policy(obs)
                dist = make_distribution(space, params)
                action = dist.sample()
                logp = dist.log_prob(action)
            obs_b[t], act_b[t], logp_b[t], val_b[t] = obs, action, logp, value
            obs_np, r, term, trunc, info = envs.step(action.numpy())
            step += N
            if "episode" in info:
                returns.extend(info["episode"]["r"][info["_episode"]].tolist())
            rew_b[t] = torch.as_tensor(r, dtype=torch.float32)
            done_b[t] = torch.as_tensor(term | trunc, dtype=torch.float32)
            only_trunc = trunc & ~term
            if only_trunc.any():
                final = np.stack([info["final_obs"][i] if m else obs_np[i] for i, m in enumerate(only_trunc)])
                with torch.no_grad():
                    fv = policy(torch.as_tensor(final, dtype=torch.float32))[1]
                tv_b[t] = torch.where(torch.as_tensor(only_trunc), fv, torch.zeros_like(fv))
            else:
                tv_b[t] = 0.0
            obs = torch.as_tensor(obs_np, dtype=torch.float32)
        with torch.no_grad():
            next_v = policy(obs)[1]
            adv = torch.zeros((T, N))
            last = torch.zeros(N)
            for t in reversed(range(T)):
                nv = next_v if t == T - 1 else val_b[t + 1]
                delta = rew_b[t] + p.gamma * tv_b[t] + p.gamma * nv * (1 - done_b[t]) - val_b[t]
                last = delta + p.gamma * p.gae_lambda * (1 - done_b[t]) * last
                adv[t] = last
            ret = adv + val_b
        b_obs, b_act, b_logp = obs_b.reshape(T * N, -1), act_b.reshape(-1), logp_b.reshape(-1)
        b_adv, b_ret, b_val = adv.reshape(-1), ret.reshape(-1), val_b.reshape(-1)
        approx_kl = torch.zeros(())
        mb = (T * N) // p.num_minibatches
        clip = p.clip_coef * ((1.0 - update / num_updates) if p.anneal_clip else 1.0)
        clipfracs: list[float] = []
        for _ in range(p.update_epochs):
            for idx in torch.randperm(T * N).split(mb):
                params, value = policy(b_obs[idx])
                dist = make_distribution(space, params)
                new_logp = dist.log_prob(b_act[idx])
                ratio = (new_logp - b_logp[idx]).exp()
                a = b_adv[idx]
                if p.norm_adv:
                    a = (a - a.mean()) / (a.std() + 1e-8)
                pg = torch.max(-a * ratio, -a * ratio.clamp(1 - clip, 1 + clip)).mean()
                if p.clip_vloss:
                    vc = b_val[idx] + (value - b_val[idx]).clamp(-clip, clip)
                    vl = 0.5 * torch.max((value - b_ret[idx]) ** 2, (vc - b_ret[idx]) ** 2).mean()
                else:
                    vl = 0.5 * ((value - b_ret[idx]) ** 2).mean()
                loss = pg - p.ent_coef * dist.entropy().mean() + p.vf_coef * vl
                with torch.no_grad():  # the diagnostics CleanRL's ppo.py computes and logs
                    approx_kl = ((ratio - 1) - (new_logp - b_logp[idx])).mean()
                    clipfracs.append(((ratio - 1.0).abs() > clip).float().mean().item())
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), p.max_grad_norm)
                opt.step()
        logged.append((float(approx_kl), float(np.mean(clipfracs)), float(np.mean(returns[-20:])) if returns else 0.0))
    sps = step / (clock() - t0)
    envs.close()
    return sps


class NoOpHook:
    """Implements all 16 events as no-ops (so every one is dispatched)."""


for _event in EVENTS:
    setattr(NoOpHook, _event, lambda self, payload=None: None)


def _engine_sps(cfg: TrainConfig, hooks: list[Any], builtin: bool, cpu: bool = True) -> float:
    """Training steps per CPU second of the engine's loop (set-up excluded), or per wall second."""
    from engine.cli import train

    with tempfile.TemporaryDirectory() as tmp:
        c = dataclasses.replace(cfg, out_dir=tmp, builtin_hooks=builtin)
        summary = train(c, hooks=hooks)
        return float(summary["sps_cpu" if cpu else "sps"])


def _dispatch_cost_us(n_hooks: int, n: int = 20_000) -> float:
    """CPU µs to fire on_step_start and on_step_end through ``n_hooks`` no-op hooks, as the loop does."""
    from engine.events import HookBus

    bus = HookBus([NoOpHook() for _ in range(n_hooks)])
    r, info = torch.zeros(8), {}
    t0 = time.process_time()
    for step in range(n):
        if bus.has("on_step_start"):
            bus.fire("on_step_start", {"global_step": step, "observation": r})
        if bus.has("on_step_end"):
            bus.fire("on_step_end", {"global_step": step, "reward": r, "terminated": r, "truncated": r, "info": info})
    return 1e6 * (time.process_time() - t0) / n


def _median_ratios(contenders: dict[str, Any], rounds: int, base: str) -> dict[str, Any]:
    sps: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            sps[name].append(fn())
    out = {f"sps_{k}": statistics.median(v) for k, v in sps.items()}
    # ratio per round (same machine state), then median
    for k in contenders:
        if k != base:
            out[f"ratio_{k}_vs_{base}"] = statistics.median(a / b for a, b in zip(sps[k], sps[base]))
    out["raw_sps"] = sps
    return out


def bench_engine(args: BenchArgs) -> dict[str, Any]:
    # the CartPole preset as users run it (its default hooks included), on a shorter budget
    cfg = dataclasses.replace(get_preset("cartpole"), total_steps=args.steps, threads=args.threads)
    contenders = {
        "bare": lambda: bare_ppo(cfg),
        "engine": lambda: _engine_sps(cfg, [], builtin=False),
        "engine_16_noop_hooks": lambda: _engine_sps(cfg, [NoOpHook() for _ in range(16)], builtin=False),
        "engine_default_hooks": lambda: _engine_sps(cfg, [], builtin=True),
    }
    res = _median_ratios(contenders, args.rounds, base="bare")
    res["ratio_engine_vs_bare"] = res.pop("ratio_engine_vs_bare")
    res["noop_hooks_overhead"] = 1.0 - statistics.median(
        a / b for a, b in zip(res["raw_sps"]["engine_16_noop_hooks"], res["raw_sps"]["engine"]))
    # End-to-end ratios carry a few % of noise on a shared machine; the dispatch cost itself is
    # measured directly too: 16 no-op hooks on the two per-step events, per vector step.
    res["hook_dispatch_us_per_vector_step"] = _dispatch_cost_us(16)
    engine_us_per_vector_step = 1e6 * cfg.num_envs / res["sps_engine"]
    res["noop_hooks_overhead_from_dispatch"] = res["hook_dispatch_us_per_vector_step"] / engine_us_per_vector_step
    res["default_hooks_ratio_vs_no_hooks"] = statistics.median(
        a / b for a, b in zip(res["raw_sps"]["engine_default_hooks"], res["raw_sps"]["engine"]))
    res["setup"] = {"env": cfg.env, "num_envs": cfg.num_envs, "rollout_steps": cfg.rollout_steps,
                    "steps": args.steps, "rounds": args.rounds, "threads": args.threads}
    return res


def bench_policy(args: BenchArgs) -> dict[str, Any]:
    """Training SPS of the fx preset's multi-branch transformer vs the MLP policy, same run."""
    from hooks.config import HooksConfig

    fx = get_preset("fx")
    base = dataclasses.replace(
        fx, total_steps=max(args.steps // 4, 2048), threads=args.threads,
        fx=dataclasses.replace(fx.fx, report_split="none"),
        hooks=HooksConfig(progress=False, loggers=(), eval_every=0, monitor="episode/return_mean",
                          checkpoint_every=0, save_top_k=0))
    contenders = {
        "mlp": lambda: _engine_sps(dataclasses.replace(base, policy="mlp"), [], builtin=False),
        "transformer": lambda: _engine_sps(dataclasses.replace(base, policy="transformer"), [], builtin=False),
        "transformer_bf16": lambda: _engine_sps(dataclasses.replace(base, policy="transformer",
                                                                    precision="bf16-mixed"), [], builtin=False),
    }
    res = _median_ratios(contenders, args.rounds, base="mlp")
    res["setup"] = {"preset": "fx", "num_envs": base.num_envs, "rollout_steps": base.rollout_steps,
                    "steps": base.total_steps, "model": dataclasses.asdict(base.model)}
    return res


def bench_scaling(args: BenchArgs) -> dict[str, Any]:
    """Weak scaling: the same per-process work with 1 and 2 gloo processes (subprocesses)."""
    res: dict[str, Any] = {}
    per_proc = max(args.steps // 2, 4096)
    for procs in (1, 2):
        sps = []
        for _ in range(max(1, args.rounds - 1)):
            with tempfile.TemporaryDirectory() as tmp:
                # CleanRL's default PPO shape (128-step rollouts, 4 epochs x 4 minibatches): 16 gradient
                # all-reduces per 1024 env steps per process
                cmd = [sys.executable, "-m", "engine.ppo", "cartpole", "--accelerator", "cpu",
                       "--devices", str(procs), "--total-steps", str(per_proc * procs), "--out-dir", tmp,
                       "--rollout-steps", "128", "--ppo.update-epochs", "4", "--ppo.num-minibatches", "4",
                       "--hooks.no-progress", "--no-builtin-hooks"]
                subprocess.run(cmd, check=True, capture_output=True, timeout=600)
                sps.append(json.loads((Path(tmp) / "summary.json").read_text())["sps"])
        res[f"total_sps_{procs}proc"] = statistics.median(sps)
        res[f"per_process_sps_{procs}proc"] = statistics.median(sps) / procs
    res["weak_scaling_efficiency"] = res["per_process_sps_2proc"] / res["per_process_sps_1proc"]
    res["note"] = ("wall-clock SPS; each process runs one torch thread, so 2 processes need 2 free cores "
                   "(this machine has 2, shared)")
    return res


OLD_FX_PRESET = {"num_envs": 16, "rollout_steps": 128, "update_epochs": 4, "num_minibatches": 4,
                 "learning_rate": 3e-4, "model": "SMALL_TRANSFORMER"}
"""The FX presets' training shape before issue 15 (16 envs, 128-step rollouts, 4 epochs of 4 minibatches, the
small transformer): ``ttq``'s reference."""


def old_fx_preset() -> TrainConfig:
    """Today's default job with the training shape of :data:`OLD_FX_PRESET` (same market, costs, reward)."""
    from configs.fx import SMALL_TRANSFORMER

    cfg = get_preset("fx")
    o = OLD_FX_PRESET
    ppo = dataclasses.replace(cfg.ppo, update_epochs=o["update_epochs"], num_minibatches=o["num_minibatches"],
                              learning_rate=o["learning_rate"])
    return dataclasses.replace(cfg, num_envs=o["num_envs"], rollout_steps=o["rollout_steps"], ppo=ppo,
                               model=SMALL_TRANSFORMER)


class TimeToQuality:
    """Stops training once the validation Sharpe ratio reaches ``target``; counts the training's CPU seconds
    (the validation backtests every ``every`` env steps excluded)."""

    def __init__(self, target: float, every: int, max_steps: int) -> None:
        self.target, self.every, self.max_steps = target, every, max_steps
        self.curve: list[tuple[int, float, float]] = []  # (env steps, training CPU s, val Sharpe)
        self.reached: tuple[int, float, float] | None = None

    def on_training_start(self, run: Any) -> None:
        self.run, self._cpu0, self._eval_cpu, self._next = run, time.process_time(), 0.0, self.every

    def on_cycle_complete(self, info: dict) -> bool | None:
        step = self.run.global_step
        if step < self._next and step < self.max_steps:
            return None
        self._next = step + self.every
        train_cpu = time.process_time() - self._cpu0 - self._eval_cpu
        t0 = time.process_time()
        sharpe = float(self.run.evaluate(1).get("sharpe", float("nan")))
        self._eval_cpu += time.process_time() - t0
        self.curve.append((step, round(train_cpu, 2), round(sharpe, 3)))
        if sharpe >= self.target:
            self.reached = self.curve[-1]
            return False
        return None


def _test_sharpe(run: Any) -> float:
    from envs.fx.market import make_fx_eval_env
    from envs.fx.research.backtest import run_backtest
    from envs.fx.research.metrics import compute_metrics, infer_periods_per_year

    env = make_fx_eval_env(run.cfg.fx, split="test", seed=run.cfg.seed)
    policy = run.policy_fn()
    traj = run_backtest(lambda obs, info: policy(obs), env)
    return float(compute_metrics(traj, infer_periods_per_year(traj.curve_time))["sharpe"])


def time_to_quality(cfg: TrainConfig, target: float, every: int, threads: int = 1) -> dict[str, Any]:
    """One run of ``cfg`` until the validation Sharpe reaches ``target`` (or ``cfg.total_steps``)."""
    from engine.cli import train
    from hooks.config import HooksConfig

    hook = TimeToQuality(target, every, cfg.total_steps)
    keep: dict[str, Any] = {}

    class Grab:
        def on_training_end(self, summary: dict) -> None:
            keep["test_sharpe"] = _test_sharpe(hook.run)

    from envs.fx.bench import peak_rss_mb, peak_rss_reset

    with tempfile.TemporaryDirectory() as tmp:
        c = dataclasses.replace(cfg, out_dir=tmp, builtin_hooks=False, threads=threads,
                                fx=dataclasses.replace(cfg.fx, report_split="none"),
                                hooks=HooksConfig(progress=False, loggers=(), eval_every=0, checkpoint_every=0,
                                                  save_top_k=0, monitor="episode/return_mean"))
        peak_rss_reset()
        train(c, hooks=[hook, Grab()])
    reached = hook.reached
    return {"reached": reached is not None, "steps": reached[0] if reached else None,
            "cpu_s": reached[1] if reached else None, "curve": hook.curve, "test_sharpe": keep.get("test_sharpe"),
            "peak_rss_mb": peak_rss_mb()}


def bench_ttq(args: BenchArgs) -> dict[str, Any]:
    """CPU time until the validation Sharpe reaches a common target: the pre-issue-15 training shape
    (:data:`OLD_FX_PRESET`) vs today's ``fx`` preset, same market and seeds, interleaved."""
    old, new = old_fx_preset(), get_preset("fx")
    res: dict[str, Any] = {"target_val_sharpe": args.ttq_target, "seeds": list(args.ttq_seeds), "runs": {}}
    ratios = []
    for seed in args.ttq_seeds:
        pair = {}
        for name, cfg in (("old", old), ("new", new)):
            r = time_to_quality(dataclasses.replace(cfg, seed=seed), args.ttq_target, args.ttq_eval_steps,
                                args.threads)
            pair[name] = r
            print(f"  seed {seed} {name}: reached={r['reached']} steps={r['steps']} cpu_s={r['cpu_s']} "
                  f"test_sharpe={r['test_sharpe']:.2f} peak_rss_mb={r['peak_rss_mb']:.0f}", flush=True)
        res["runs"][seed] = pair
        if pair["old"]["reached"] and pair["new"]["reached"]:
            ratios.append(pair["new"]["cpu_s"] / pair["old"]["cpu_s"])
    res["ratio_new_vs_old_cpu_s"] = ratios
    res["ratio_median"] = statistics.median(ratios) if ratios else None
    res["setup"] = {"old": OLD_FX_PRESET, "new": {"num_envs": new.num_envs, "rollout_steps": new.rollout_steps,
                                                  "update_epochs": new.ppo.update_epochs,
                                                  "num_minibatches": new.ppo.num_minibatches,
                                                  "learning_rate": new.ppo.learning_rate,
                                                  "model": dataclasses.asdict(new.model)}}
    return res


def bench_latency(args: BenchArgs) -> dict[str, Any]:
    """Per-decision latency of the preset transformer with the fx (15-minute) and fx-h1 windows, one thread."""
    from envs.fx.live.latency import run_latency_bench

    res = run_latency_bench({name: get_preset(name) for name in ("fx", "fx-h1")}, n=max(args.steps // 8, 200))
    flat: dict[str, Any] = {"calls": res.pop("calls")}
    for preset, figures in res.items():
        for name, value in figures.items():
            if isinstance(value, dict):
                flat.update({f"{preset}.{name}.{k}": v for k, v in value.items()})
            else:
                flat[f"{preset}.{name}"] = value
    return flat


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run_command(lambda: run(tyro.cli(BenchArgs, args=argv, prog="python -m engine.bench")))


def run(args: BenchArgs) -> dict[str, Any]:
    """Check the flags and that ``--out`` can be written (before minutes of measuring), then benchmark."""
    check_numbers(args)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: the directory {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ValueError(f"--out {out}: not writable")
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "torch": torch.__version__,
                               "cuda": torch.cuda.is_available()}
    todo = ["engine", "env", "policy", "scaling", "latency"] if args.what == "all" else [args.what]
    for what in todo:
        print(f"== {what} ==", flush=True)
        if what == "engine":
            r = bench_engine(args)
        elif what == "env":
            from envs.fx.bench import run_env_bench

            r = run_env_bench()
        elif what == "policy":
            r = bench_policy(args)
        elif what == "latency":
            r = bench_latency(args)
        elif what == "ttq":
            r = bench_ttq(args)
        else:
            r = bench_scaling(args)
        results[what] = r
        for k, v in r.items():
            if k != "raw_sps":
                print(f"  {k}: {v:.3f}" if isinstance(v, float) else f"  {k}: {v}", flush=True)
    write_atomic(out, json.dumps(results, indent=2, default=str))
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
