"""``python -m engine.bench [engine|env|policy|scaling|ttq|cartpole|adam|compile|latency|all]``: side-by-side
speed, as ratios.

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
* ``cartpole``: the CartPole-v1 claim of issue 15: for seeds 1, 2, 3 the ``cartpole`` preset (100k steps, the
  engine as users run it) vs stable-baselines3 PPO with RL-Zoo's CartPole-v1 hyper-parameters, interleaved;
  CPU and wall seconds of each whole training (set-up included, evaluation excluded), the final policy's
  mean return (deterministic, the same 10 seeded episodes for both), the ratio SB3 CPU s / ours; and the
  preset on its natively vectorised CartPole (``vector_entry_point``, its default) vs gymnasium's SyncVectorEnv.
* ``adam``: Adam's implementations (default per-tensor loop, ``foreach``, ``fused``): CPU µs per optimizer step of
  the CartPole MLP and the fx preset's transformer, and the cartpole preset's training SPS with each.
* ``compile``: ``--compile`` (``torch.compile`` of the policy's forward) vs eager on the fx and cartpole presets:
  CPU s per training cycle once compiled, the compile cost and the break-even run length.
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
from unittest import mock

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
                                        "ttq_eval_steps": "[1, 1e9]",
                                        "ttq_shape": "(0, 1e9]", "cartpole_seeds": "[0, 4294967295]",
                                        "cartpole_steps": "[1024, 1e9]", "cartpole_eval_episodes": "[1, 10000]"}
    """Allowed values (:mod:`engine.ranges`; a measurement needs a few cycles)."""

    what: tyro.conf.Positional[Literal["engine", "env", "policy", "scaling", "latency", "ttq", "cartpole", "adam",
                                         "compile", "all"]] = "engine"
    """Which benchmark to run."""
    steps: int = 16_384
    """Env steps per engine/bare-loop/policy measurement."""
    rounds: int = 3
    """Interleaved repetitions; the median is reported."""
    threads: int = 1
    """torch threads for the in-process measurements."""
    out: str = "bench.json"
    """Where to write the results (JSON)."""
    ttq_target: float = 6.0
    """ttq: the validation Sharpe ratio both configurations must reach (at 4 a wide, short-rollout shape can cross
    on one lucky early evaluation while its test Sharpe is still ~1-2; at 6 both reach test Sharpes of 6-7)."""
    ttq_seeds: tuple[int, ...] = (1, 2)
    """ttq: the seeds each configuration trains with (the same for both)."""
    ttq_eval_steps: int = 8192
    """ttq: env steps between validation backtests (their time is not counted)."""
    ttq_shape: tuple[int, int, int, int, float] | None = None
    """ttq: the new configuration as NUM_ENVS ROLLOUT_STEPS UPDATE_EPOCHS NUM_MINIBATCHES LEARNING_RATE on the fx
    preset (default: the fx preset itself), e.g. 128 16 2 2 1e-3: a candidate shape measured before it becomes one."""
    cartpole_seeds: tuple[int, ...] = (1, 2, 3)
    """cartpole: the seeds both trainings run with."""
    cartpole_steps: int = 100_000
    """cartpole: env steps of each training."""
    cartpole_eval_episodes: int = 10
    """cartpole: deterministic evaluation episodes of each final policy."""


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


def _cycle_clock(cfg: TrainConfig) -> list[tuple[float, float]]:
    """(CPU s, wall s) at the start of training and at the end of each training cycle of ``cfg``."""
    from engine.cli import train

    marks: list[tuple[float, float]] = []

    class Clock:
        def on_training_start(self, run: Any) -> None:
            marks.append(_clocks())

        def on_cycle_complete(self, info: dict) -> None:
            marks.append(_clocks())

    with tempfile.TemporaryDirectory() as tmp:
        train(dataclasses.replace(cfg, out_dir=tmp), hooks=[Clock()])
    return marks


def bench_compile(args: BenchArgs) -> dict[str, Any]:
    """``--compile`` vs eager on the fx preset (transformer) and the cartpole preset (MLP): the CPU seconds of a
    cycle once compiled (median of the later cycles), what compiling cost (the first three cycles' excess, CPU s
    of this process and wall s: inductor compiles in worker processes too) and after how many env steps
    compiling has paid for itself (by wall time). Each compile starts cold: an empty inductor cache directory."""
    from hooks.config import HooksConfig

    quiet = HooksConfig(progress=False, loggers=(), eval_every=0, monitor="episode/return_mean", checkpoint_every=0,
                        save_top_k=0)
    fx = get_preset("fx")
    cycles = max(8, args.steps // (fx.num_envs * fx.rollout_steps))
    res: dict[str, Any] = {}
    for name, base in (("fx", dataclasses.replace(fx, fx=dataclasses.replace(fx.fx, report_split="none"))),
                       ("cartpole", get_preset("cartpole"))):
        steps_per_cycle = base.num_envs * base.rollout_steps
        base = dataclasses.replace(base, hooks=quiet, builtin_hooks=False, threads=args.threads,
                                   total_steps=cycles * steps_per_cycle)
        row: dict[str, Any] = {}
        for mode in ("eager", "compile"):
            if mode == "eager":
                marks = _cycle_clock(base)
            else:  # cold: inductor's on-disk cache would hide the compile cost of a first run
                torch._dynamo.reset()
                with (tempfile.TemporaryDirectory(prefix="fxai-inductor-") as cache,
                      mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": cache})):
                    marks = _cycle_clock(dataclasses.replace(base, compile=True))
            cpu = [b[0] - a[0] for a, b in zip(marks, marks[1:])]
            wall = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
            row[mode] = {"cycle_cpu_s": statistics.median(cpu[3:]), "cycle_wall_s": statistics.median(wall[3:]),
                         "first_cpu_s": sum(cpu[:3]), "first_wall_s": sum(wall[:3])}
        eager, comp = row["eager"], row["compile"]
        for clock in ("cpu", "wall"):
            extra = (comp[f"first_{clock}_s"] - 3 * comp[f"cycle_{clock}_s"]
                     - (eager[f"first_{clock}_s"] - 3 * eager[f"cycle_{clock}_s"]))
            res[f"{name}.compile_{clock}_s"] = extra
        res[f"{name}.eager_sps"] = steps_per_cycle / eager["cycle_cpu_s"]
        res[f"{name}.compiled_sps"] = steps_per_cycle / comp["cycle_cpu_s"]
        res[f"{name}.speedup_compiled_vs_eager"] = eager["cycle_cpu_s"] / comp["cycle_cpu_s"]
        saved = (eager["cycle_wall_s"] - comp["cycle_wall_s"]) / steps_per_cycle
        res[f"{name}.break_even_steps"] = res[f"{name}.compile_wall_s"] / saved if saved > 0 else float("inf")
    res["setup"] = {"cycles": cycles, "threads": args.threads, "torch": torch.__version__,
                    "timed": "per training cycle (rollout + GAE + update), hooks off"}
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
                       "--num-envs", "8", "--rollout-steps", "128", "--ppo.update-epochs", "4",
                       "--ppo.num-minibatches", "4",
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
    if args.ttq_shape is not None:
        n, r, e, m, lr = args.ttq_shape
        new = dataclasses.replace(new, num_envs=n, rollout_steps=r, ppo=dataclasses.replace(
            new.ppo, update_epochs=e, num_minibatches=m, learning_rate=lr))
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


# ----------------------------------------------------------------------------------------------
# CartPole-v1: the engine's preset vs stable-baselines3 with RL-Zoo's settings
# ----------------------------------------------------------------------------------------------
RL_ZOO_CARTPOLE = {"n_envs": 8, "n_timesteps": 100_000, "policy": "MlpPolicy", "n_steps": 32, "batch_size": 256,
                   "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20, "ent_coef": 0.0, "learning_rate": "lin_0.001",
                   "clip_range": "lin_0.2"}
"""rl-baselines3-zoo's ``hyperparams/ppo.yml`` entry for CartPole-v1 (everything else SB3's defaults)."""


def eval_cartpole(act: Any, episodes: int, seed: int = 10_000) -> float:
    """Mean return of ``act(obs) -> int`` on CartPole-v1 (single env, reset seeds ``seed + i``)."""
    env = gym.make("CartPole-v1")
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs))
            total += float(r)
            done = term or trunc
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def _clocks() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def train_engine_cartpole(seed: int, steps: int, episodes: int, vector_mode: str | None = None) -> dict[str, Any]:
    """The ``cartpole`` preset as a user runs it (``python -m engine.ppo cartpole --seed S``, progress bar off),
    into a temp dir; CPU and wall seconds of the whole ``train`` call, the final policy's deterministic return."""
    from engine.cli import train
    from engine.ppo import parse_args

    keep: dict[str, Any] = {}

    class Grab:
        def on_training_start(self, run: Any) -> None:
            keep["run"] = run

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["cartpole", "--seed", str(seed), "--total-steps", str(steps), "--threads", "1", "--out-dir", tmp,
                "--hooks.no-progress"] + (["--vector-mode", vector_mode] if vector_mode else [])
        cfg = parse_args(argv)
        (c0, w0) = _clocks()
        summary = train(cfg, hooks=[Grab()])
        (c1, w1) = _clocks()
    policy = keep["run"].policy_fn()

    def act(obs: np.ndarray) -> int:
        with torch.no_grad():
            return int(policy(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))[0])

    return {"cpu_s": c1 - c0, "wall_s": w1 - w0, "return": eval_cartpole(act, episodes),
            "train_return_mean": summary["episode_return_mean"], "vector_mode": cfg.vector_mode,
            "steps": summary["global_step"]}


def train_sb3_cartpole(seed: int, steps: int, episodes: int) -> dict[str, Any]:
    """stable-baselines3 PPO with :data:`RL_ZOO_CARTPOLE` (DummyVecEnv of 8, as the zoo builds it), on the CPU."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import Logger

    def linear(v: float) -> Any:
        return lambda progress_remaining: progress_remaining * v

    z = RL_ZOO_CARTPOLE
    (c0, w0) = _clocks()
    env = make_vec_env("CartPole-v1", n_envs=z["n_envs"], seed=seed)
    model = PPO(z["policy"], env, n_steps=z["n_steps"], batch_size=z["batch_size"], gae_lambda=z["gae_lambda"],
                gamma=z["gamma"], n_epochs=z["n_epochs"], ent_coef=z["ent_coef"], learning_rate=linear(1e-3),
                clip_range=linear(0.2), seed=seed, device="cpu", verbose=0)
    model.set_logger(Logger(None, []))  # SB3's default logger makes an SB3-<date> directory in /tmp per run
    model.learn(total_timesteps=steps)
    (c1, w1) = _clocks()
    env.close()
    ret = eval_cartpole(lambda obs: int(model.predict(obs, deterministic=True)[0]), episodes)
    return {"cpu_s": c1 - c0, "wall_s": w1 - w0, "return": ret, "steps": int(model.num_timesteps)}


def bench_cartpole(args: BenchArgs) -> dict[str, Any]:
    """Issue 15's CartPole claim, side by side: the engine's preset vs SB3 + RL-Zoo settings, per seed."""
    import stable_baselines3

    torch.set_num_threads(1)
    res: dict[str, Any] = {"runs": {}}
    for seed in args.cartpole_seeds:
        row = {"ours": train_engine_cartpole(seed, args.cartpole_steps, args.cartpole_eval_episodes,
                                             "vector_entry_point"),
               "sb3": train_sb3_cartpole(seed, args.cartpole_steps, args.cartpole_eval_episodes),
               "ours_sync": train_engine_cartpole(seed, args.cartpole_steps, args.cartpole_eval_episodes, "sync")}
        row["ratio_sb3_cpu_vs_ours"] = row["sb3"]["cpu_s"] / row["ours"]["cpu_s"]
        row["ratio_sb3_wall_vs_ours"] = row["sb3"]["wall_s"] / row["ours"]["wall_s"]
        row["ratio_sync_cpu_vs_vector_entry_point"] = row["ours_sync"]["cpu_s"] / row["ours"]["cpu_s"]
        res["runs"][seed] = row
        print(f"  seed {seed}: ours ({row['ours']['vector_mode']}) cpu {row['ours']['cpu_s']:.1f}s wall "
              f"{row['ours']['wall_s']:.1f}s return {row['ours']['return']:.1f} | sb3 cpu {row['sb3']['cpu_s']:.1f}s "
              f"wall {row['sb3']['wall_s']:.1f}s return {row['sb3']['return']:.1f} | ours sync cpu "
              f"{row['ours_sync']['cpu_s']:.1f}s return {row['ours_sync']['return']:.1f} | "
              f"sb3/ours cpu {row['ratio_sb3_cpu_vs_ours']:.2f}x", flush=True)
    runs = res["runs"].values()
    res["ratio_sb3_cpu_vs_ours_median"] = statistics.median(r["ratio_sb3_cpu_vs_ours"] for r in runs)
    res["ratio_sb3_wall_vs_ours_median"] = statistics.median(r["ratio_sb3_wall_vs_ours"] for r in runs)
    res["ratio_sync_cpu_vs_vector_entry_point_median"] = statistics.median(
        r["ratio_sync_cpu_vs_vector_entry_point"] for r in runs)
    res["returns_ours"] = [r["ours"]["return"] for r in runs]
    res["returns_sb3"] = [r["sb3"]["return"] for r in runs]
    res["returns_ours_sync"] = [r["ours_sync"]["return"] for r in runs]
    res["setup"] = {"steps": args.cartpole_steps, "seeds": list(args.cartpole_seeds),
                    "eval_episodes": args.cartpole_eval_episodes, "rl_zoo": RL_ZOO_CARTPOLE,
                    "sb3": stable_baselines3.__version__, "threads": 1,
                    "timed": "the whole training call (set-up included), evaluation excluded"}
    return res


# ----------------------------------------------------------------------------------------------
# Adam: default per-tensor loop vs foreach vs fused
# ----------------------------------------------------------------------------------------------
def _adam_step_us(params: list[torch.Tensor], impl: str, n: int) -> float:
    from algos.ppo import adam_kwargs

    params = [p.detach().clone().requires_grad_(True) for p in params]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.Adam(params, lr=1e-3, eps=1e-5, **adam_kwargs(impl))
    for _ in range(50):
        opt.step()
    t0 = time.process_time()
    for _ in range(n):
        opt.step()
    return 1e6 * (time.process_time() - t0) / n


def bench_adam(args: BenchArgs) -> dict[str, Any]:
    """CPU µs per Adam step (CartPole MLP, fx transformer) and cartpole training SPS, per implementation."""
    import algos.ppo as ppo_mod
    from envs.fx.windows import action_space, observation_space
    from engine.loop import build_policy

    torch.set_num_threads(args.threads)
    impls = ("default", "foreach", "fused")
    cart = get_preset("cartpole")
    env = gym.make("CartPole-v1")
    fx = get_preset("fx")
    models = {"cartpole_mlp": build_policy(cart, env.observation_space, env.action_space),
              "fx_transformer": build_policy(fx, observation_space(fx.fx), action_space(fx.fx))}
    res: dict[str, Any] = {}
    for name, model in models.items():
        params = list(model.parameters())
        res[f"{name}.n_params"] = sum(p.numel() for p in params)
        us: dict[str, list[float]] = {k: [] for k in impls}
        for _ in range(args.rounds):
            for impl in impls:
                us[impl].append(_adam_step_us(params, impl, 2000 if name == "cartpole_mlp" else 300))
        for impl in impls:
            res[f"{name}.us_per_step.{impl}"] = statistics.median(us[impl])
    # end to end: the cartpole preset's training SPS (no hooks) with each implementation
    cfg = dataclasses.replace(cart, total_steps=args.steps, threads=args.threads)
    was = ppo_mod.ADAM_IMPL

    def with_impl(impl: str) -> Any:
        def f() -> float:
            ppo_mod.ADAM_IMPL = impl
            try:
                return _engine_sps(cfg, [], builtin=False)
            finally:
                ppo_mod.ADAM_IMPL = was
        return f

    e2e = _median_ratios({impl: with_impl(impl) for impl in impls}, args.rounds, base="default")
    res.update({f"cartpole_train.{k}": v for k, v in e2e.items() if k != "raw_sps"})
    res["in_use"] = was
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
    todo = (["engine", "env", "policy", "scaling", "latency", "cartpole", "adam", "compile"] if args.what == "all"
            else [args.what])
    for what in todo:
        print(f"== {what} ==", flush=True)
        if what == "engine":
            r = bench_engine(args)
        elif what == "env":
            from envs.fx.bench import run_env_bench

            r = run_env_bench(rounds=args.rounds)
        elif what == "policy":
            r = bench_policy(args)
        elif what == "latency":
            r = bench_latency(args)
        elif what == "ttq":
            r = bench_ttq(args)
        elif what == "cartpole":
            r = bench_cartpole(args)
        elif what == "adam":
            r = bench_adam(args)
        elif what == "compile":
            r = bench_compile(args)
        else:
            r = bench_scaling(args)
        results[what] = r
        for k, v in r.items():
            if k not in ("raw_sps", "runs"):
                print(f"  {k}: {v:.3f}" if isinstance(v, float) else f"  {k}: {v}", flush=True)
    write_atomic(out, json.dumps(results, indent=2, default=str))
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
