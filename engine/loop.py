"""The training loop: rollout -> GAE -> update, on Lightning Fabric, firing the hook bus.

:meth:`Run.train` is the algorithm, one cycle at a time::

    while global_step < total_steps:
        collect_rollout()       # rollout_steps vector steps into the [time, env] buffer
        compute_advantages()    # bootstrap V(s_T); GAE along time (truncation bootstraps, termination does not)
        update()                # algo.update(buffer flattened to [time * env])
        log_metrics()           # reduced across ranks, extended by hooks, logged

Fabric owns devices, DDP, precision and checkpoint I/O; the :class:`Run` owns the clock (env
steps), the hooks, the RNGs and the rollout buffer, which is allocated once. The algorithm,
the policy network and the env come from :mod:`engine.registry` by the names in the config.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from lightning.fabric import Fabric
from tensordict import TensorDict

from engine import keys as K
from engine import registry
from engine.checkpoint import Checkpoints, CheckpointError, read_checkpoint
from engine.config import config_from_dict, import_class
from engine.distributions import deterministic_action
from engine.errors import signal_name
from engine.evaluate import evaluate_episodes
from engine.events import LEGACY_METRIC_ALIASES, HookBus
from engine.files import write_json
from engine.gae import gae
from engine.normalize import ObsNormalizer
from engine.state import rng_state, set_rng_state, to_device
from engine.vec import make_gym_vector_env


# ----------------------------------------------------------------------------------------------
# what a run is built from
# ----------------------------------------------------------------------------------------------
def build_policy(cfg: Any, observation_space: gym.Space, action_space: gym.Space) -> torch.nn.Module:
    """The policy network registered as ``cfg.policy``, built from its config section."""
    entry = registry.policy(cfg.policy)
    return entry.build(observation_space, action_space, registry.section(cfg, entry.section))


def make_train_env(cfg: Any, num_envs: int, seed: int, device: torch.device) -> Any:
    """This rank's training envs: the registered family's, or gymnasium's vectorisation of ``cfg.env``."""
    family = registry.env_family(cfg.env)
    if family is not None:
        return family.make_train_env(cfg, num_envs, seed, device)
    return make_gym_vector_env(cfg.env, num_envs, cfg.vector_mode, device)


def make_eval_env(cfg: Any, device: torch.device) -> Any:
    family = registry.env_family(cfg.env)
    if family is not None:
        return family.make_eval_env(cfg, device)
    return make_gym_vector_env(cfg.env, 1, "sync", device)


def _alloc(example: Any, T: int) -> Any:
    """Zeros of shape [T, *example.shape] (a dict of them for dict observations)."""
    if isinstance(example, dict):
        return {k: _alloc(v, T) for k, v in example.items()}
    return torch.zeros((T, *example.shape), dtype=example.dtype, device=example.device)


def _action_store(space: gym.Space, T: int, N: int, device: torch.device) -> torch.Tensor:
    if isinstance(space, gym.spaces.Discrete):
        return torch.zeros((T, N), dtype=torch.int64, device=device)
    if isinstance(space, gym.spaces.Box):
        return torch.zeros((T, N, *space.shape), dtype=torch.float32, device=device)
    raise TypeError(f"unsupported action space {space!r}: use Discrete or Box")


def _write(store: Any, t: int, value: Any) -> None:
    if isinstance(store, dict):
        for k, v in store.items():
            v[t] = value[k]
    else:
        store[t] = value


def _to_float(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.item() if x.numel() == 1 else x.tolist()
    return x


# ----------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------
class Run:
    """One training run on one rank. Hooks receive it in ``on_training_start``."""

    def __init__(self, cfg: Any, fabric: Fabric, hooks: Sequence[Any], plan: Any = None) -> None:
        self.cfg = cfg
        self.fabric = fabric
        self.out_dir = Path(cfg.out_dir)
        self.bus = HookBus(hooks, run=self)
        self.is_global_zero = fabric.is_global_zero
        self.world_size = fabric.world_size
        self.rank = fabric.global_rank
        self.global_step = 0
        self.cycle = 0
        self.episodes = 0
        self.stop_reason: str | None = None
        self.stop_signal: int | None = None  # set by engine.signals when SIGTERM/SIGINT asked the run to stop
        self.resumed_from: dict[str, Any] | None = None
        # the run's identity across sessions (engine.rundir.RunPlan): id, log version, resume count
        self.run_id: str = getattr(plan, "run_id", None) or uuid.uuid4().hex[:12]
        self.version: int = int(getattr(plan, "version", 0))
        self.resumes: int = int(getattr(plan, "resumes", 0))
        self.recent_returns: deque[float] = deque(maxlen=cfg.metrics_window)
        self.recent_lengths: deque[int] = deque(maxlen=cfg.metrics_window)
        self._eval_env: Any = None
        self._start_time = time.perf_counter()

        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        fabric.seed_everything(cfg.seed + self.rank, verbose=False)
        self.device = fabric.device
        self.envs = make_train_env(cfg, cfg.num_envs, cfg.seed + 1000 * self.rank, self.device)
        self.num_envs = self.envs.num_envs
        self.obs_space = self.envs.single_observation_space
        self.action_space = self.envs.single_action_space
        self.steps_per_cycle = cfg.rollout_steps * self.num_envs * self.world_size
        self.total_steps = cfg.total_steps
        num_updates = -(-cfg.total_steps // self.steps_per_cycle)
        algo_entry = registry.algorithm(cfg.algo)
        self.policy_cfg = registry.section(cfg, registry.policy(cfg.policy).section)
        policy = build_policy(cfg, self.obs_space, self.action_space)
        self.algo = algo_entry.cls(registry.section(cfg, algo_entry.section), policy, self.action_space, fabric,
                                   num_updates=num_updates, max_nonfinite=cfg.max_nonfinite_updates)
        if cfg.compile:
            self.algo.compile()
        self.next_obs, _ = self.envs.reset(seed=cfg.seed + 1000 * self.rank)
        self.normalizer = ObsNormalizer(self.next_obs) if cfg.norm_obs else None
        self.ep_return = torch.zeros(self.num_envs, dtype=torch.float64, device=self.device)
        # episode lengths as "vector steps since the episode began": no per-step tensor op
        self._vstep = 0
        self.ep_start = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self._fresh_start = True
        self.buffer = self._allocate_buffer()
        # finished episodes' returns and lengths per [time, env], read once a rollout when no hook wants each one
        self._done_returns = torch.zeros((cfg.rollout_steps, self.num_envs), dtype=torch.float64, device=self.device)
        self._done_lengths = torch.zeros((cfg.rollout_steps, self.num_envs), dtype=torch.int64, device=self.device)
        self.host_checks = self.device.type == "cpu"
        """Whether a rollout step may read device values (free on the CPU, a synchronisation on a GPU)."""
        self.checkpoints = Checkpoints(self)

    def _allocate_buffer(self) -> TensorDict:
        """The [time, env] rollout storage, allocated once and rewritten every cycle."""
        T, N, dev = self.cfg.rollout_steps, self.num_envs, self.device
        zeros = lambda dtype=torch.float32: torch.zeros((T, N), dtype=dtype, device=dev)  # noqa: E731
        return TensorDict(
            {
                K.OBS: _alloc(self._norm(self.next_obs), T),
                K.ACTION: _action_store(self.action_space, T, N, dev),
                K.LOG_PROB: zeros(), K.VALUE: zeros(),
                K.REWARD: zeros(), K.TERMINATED: zeros(torch.bool), K.TRUNCATED: zeros(torch.bool),
                K.NEXT_VALUE_TRUNC: zeros(),
                K.ADVANTAGE: zeros(), K.VALUE_TARGET: zeros(),
            },
            batch_size=[T, N], device=dev, names=list(K.BATCH_DIMS),
        )

    # -- small API used by hooks -------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason

    def fire(self, event: str, payload: Any = None) -> bool:
        stop = self.bus.fire(event, payload)
        if stop:
            self.request_stop(f"a hook returned False from {event}")
        return stop

    def log(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.fabric.loggers:
            self.fabric.log_dict(metrics, step=self.global_step if step is None else step)

    @property
    def policy(self) -> torch.nn.Module:
        return self.algo.policy

    @property
    def model(self) -> torch.nn.Module:
        """The policy network (the name a legacy callback's ``trainer.model`` expects)."""
        return self.algo.policy

    def policy_fn(self) -> Callable[[Any], torch.Tensor]:
        """Deterministic actions of the current policy (normalisation applied): obs -> action."""
        return lambda obs: self.algo.act_deterministic(self._norm(obs))

    def _norm(self, obs: Any) -> Any:
        return self.normalizer.normalize(obs) if self.normalizer is not None else obs

    def save_checkpoint(self, path: str | os.PathLike, best: bool = False) -> Path | None:
        """Atomic save of the full state (see :class:`engine.checkpoint.Checkpoints`); None if refused.
        ``best=True`` records the file as the run's best checkpoint (``--resume best``)."""
        return self.checkpoints.save(path, best=best)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        self.checkpoints.load(path)
        self._fresh_start = False

    @property
    def resumed(self) -> bool:
        """Whether this session continued from a checkpoint."""
        return self.resumed_from is not None

    def run_record(self) -> dict[str, Any]:
        """The run's identity as checkpoints store it (see :mod:`engine.rundir`)."""
        loggers = {type(lg).__name__: str(lg.version) for lg in self.fabric.loggers} if self.is_global_zero else {}
        return {"id": self.run_id, "version": self.version, "resumes": self.resumes, "loggers": loggers}

    # -- per-rank state (the checkpoint holds one per rank) ---------------------------------
    def rank_state(self) -> dict[str, Any]:
        env_state = self.envs.state_dict() if callable(getattr(self.envs, "state_dict", None)) else None
        obs = self.next_obs
        return {
            "rng": rng_state(),
            "envs": env_state,
            "next_obs": {k: v.clone() for k, v in obs.items()} if isinstance(obs, dict) else obs.clone(),
            "ep_return": self.ep_return.clone().cpu(),
            "ep_length": (self._vstep - self.ep_start).cpu(),
        }

    def restore_rank_state(self, mine: dict[str, Any]) -> None:
        set_rng_state(mine["rng"])
        if mine["envs"] is not None and callable(getattr(self.envs, "load_state_dict", None)):
            self.envs.load_state_dict(mine["envs"])
            self.next_obs = to_device(mine["next_obs"], self.device)
            self.ep_return = mine["ep_return"].to(self.device)
            self.ep_start = self._vstep - mine["ep_length"].to(self.device)
        else:  # the env cannot restore its episode: start fresh episodes, reproducibly
            self.restart_episodes()

    def restart_episodes(self) -> None:
        self.next_obs, _ = self.envs.reset(seed=self.cfg.seed + 1000 * self.rank + self.global_step)

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, num_episodes: int) -> dict[str, float]:
        """The deterministic policy on the env family's evaluation env (or a separate gymnasium env)."""
        if self._eval_env is None:
            self._eval_env = make_eval_env(self.cfg, self.device)
        family = registry.env_family(self.cfg.env)
        if family is not None:
            return family.evaluate(self.policy_fn(), self._eval_env, self.cfg, num_episodes)
        return evaluate_episodes(self.policy_fn(), self._eval_env, num_episodes)

    # -- the loop ---------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        torch.autograd.set_detect_anomaly(self.cfg.detect_anomaly)
        self.fire("on_training_start", self)
        if self._fresh_start and self.bus.has("on_episode_start"):
            for i in range(self.num_envs):
                self.fire("on_episode_start", {"env_index": i, "global_step": self.global_step})

        self._t0, cpu0, start_step = time.perf_counter(), time.process_time(), self.global_step
        self._start_step = start_step
        while self.global_step < self.total_steps and self.stop_reason is None:
            self.cycle += 1
            cycle_t0 = time.perf_counter()
            self.collect_rollout()
            self.compute_advantages()
            rollout_s = time.perf_counter() - cycle_t0
            update_t0 = time.perf_counter()
            losses = self.update()
            self.log_metrics(losses, rollout_s, time.perf_counter() - update_t0)
            self._agree_on_stop()

        steps = self.global_step - start_step
        summary = self._summary(time.perf_counter() - self._start_time,
                                steps / max(time.perf_counter() - self._t0, 1e-9))
        summary["sps_cpu"] = round(steps / max(time.process_time() - cpu0, 1e-9), 2)
        last = self.checkpoints.save_last()
        summary["last_checkpoint"] = str(last) if last is not None else None
        if self.is_global_zero:  # already now: the end hooks (a report) may take long, or be cut short
            write_json(self.out_dir / "summary.json", summary, default=str)
        self.fire("on_training_end", summary)
        if self.is_global_zero:
            write_json(self.out_dir / "summary.json", summary, default=str)
        for lg in self.fabric.loggers:
            lg.finalize("success")
        return summary

    def record_failure(self, exc: BaseException, last_checkpoint: str | None) -> dict[str, Any]:
        """After ``exc`` ended training: close the loggers as failed (their rows are flushed) and write
        ``summary.json`` saying what failed and which checkpoint to continue (rank 0; no collective calls,
        another rank may be gone)."""
        summary = {"global_step": self.global_step, "cycles": self.cycle, **self._run_record(),
                   "status": "failed", "error": f"{type(exc).__name__}: {exc}", "last_checkpoint": last_checkpoint}
        for lg in self.fabric.loggers:
            try:
                lg.finalize("failed")
            except Exception:  # noqa: BLE001  (a logger's own failure must not hide the first one)
                pass
        if self.is_global_zero:
            write_json(self.out_dir / "summary.json", summary, default=str)
        return summary

    def collect_rollout(self) -> None:
        """``rollout_steps`` vector steps of the sampling policy into the buffer.

        Without a hook on ``on_episode_end``/``on_episode_start`` a step asks the device nothing: finished
        episodes' returns and lengths are kept as tensors and read once per rollout (:meth:`_episodes_of_rollout`),
        and a truncated episode's bootstrap value comes from the whole ``final_obs`` batch, masked. On the CPU
        (``host_checks``), where asking costs nothing, only the truncated rows go through the value network."""
        algo, envs, bus, buf = self.algo, self.envs, self.bus, self.buffer
        self.fire("on_rollout_start", {"cycle": self.cycle, "global_step": self.global_step})
        obs_store, action_store, log_prob_store, value_store = (buf.get(k) for k in (K.OBS, K.ACTION, K.LOG_PROB,
                                                                                     K.VALUE))
        rewards, terminated, truncated, trunc_values = (buf.get(k) for k in (K.REWARD, K.TERMINATED, K.TRUNCATED,
                                                                              K.NEXT_VALUE_TRUNC))
        obs_store = obs_store.to_dict() if isinstance(obs_store, TensorDict) else obs_store
        trunc_values.zero_()
        steps_per_vector_step = self.num_envs * self.world_size
        per_episode = bus.has("on_episode_end") or bus.has("on_episode_start")
        done_returns, done_lengths = self._done_returns, self._done_lengths
        host_checks = self.host_checks
        for t in range(self.cfg.rollout_steps):
            if bus.has("on_step_start"):
                self.fire("on_step_start", {"global_step": self.global_step, "observation": self.next_obs})
            if self.normalizer is not None:
                self.normalizer.update(self.next_obs, self._reduce_sum)
            obs = self._norm(self.next_obs)
            action, log_prob, value = algo.act(obs)
            self.next_obs, reward, term, trunc, info = envs.step(action)
            self.global_step += steps_per_vector_step

            _write(obs_store, t, obs)
            action_store[t], log_prob_store[t], value_store[t] = action, log_prob, value
            rewards[t], terminated[t], truncated[t] = reward, term, trunc
            if "final_obs" in info:  # some episode ended (a key, not a device read); bootstrap the time-limited ones
                self._bootstrap_truncated(trunc_values[t], trunc & ~term, info["final_obs"], host_checks)
            self.ep_return.add_(reward)
            self._vstep += 1
            done = term | trunc
            if bus.has("on_step_end"):
                self.fire("on_step_end", {"global_step": self.global_step, "reward": reward,
                                          "terminated": term, "truncated": trunc, "info": info})
            if per_episode:
                if done.any():
                    self._finish_episodes(done, term, info)
            else:  # no listener: record, reset the counters, read nothing back
                done_returns[t] = self.ep_return
                done_lengths[t] = self._vstep - self.ep_start
                self.ep_return.masked_fill_(done, 0.0)
                self.ep_start = torch.where(done, self._vstep, self.ep_start)
        if not per_episode:
            self._episodes_of_rollout(terminated | truncated)

    def _bootstrap_truncated(self, out: torch.Tensor, only_trunc: torch.Tensor, final_obs: Any,
                             host_checks: bool) -> None:
        """``out`` = V(final observation) where ``only_trunc`` (time limit, not termination), 0 elsewhere."""
        if host_checks:
            rows = only_trunc.nonzero().flatten()
            if rows.numel():
                final = ({k: v.index_select(0, rows) for k, v in final_obs.items()} if isinstance(final_obs, dict)
                         else final_obs.index_select(0, rows))
                out.index_copy_(0, rows, self.algo.value(self._norm(final)).to(out.dtype))
            return
        final_v = self.algo.value(self._norm(final_obs))
        out.copy_(torch.where(only_trunc, final_v, torch.zeros_like(final_v)))

    def _episodes_of_rollout(self, done: torch.Tensor) -> None:
        """The episodes that ended in this rollout (time order, then env), read back once."""
        mask = done.reshape(-1)
        rows = mask.nonzero().flatten()
        if rows.numel() == 0:
            return
        rets = self._done_returns.reshape(-1).index_select(0, rows).tolist()
        lens = self._done_lengths.reshape(-1).index_select(0, rows).tolist()
        self.episodes += len(rets)
        self.recent_returns.extend(rets)
        self.recent_lengths.extend(int(x) for x in lens)

    def compute_advantages(self) -> None:
        """GAE along ``time`` per env, bootstrapped from V(s_T); fires ``on_rollout_end`` with the buffer."""
        buf, algo = self.buffer, self.algo
        next_value = algo.value(self._norm(self.next_obs))
        advantages, value_targets = gae(buf.get(K.REWARD), buf.get(K.VALUE),
                                        buf.get(K.TERMINATED) | buf.get(K.TRUNCATED), next_value,
                                        buf.get(K.NEXT_VALUE_TRUNC), algo.gamma, algo.gae_lambda)
        buf.get(K.ADVANTAGE).copy_(advantages)
        buf.get(K.VALUE_TARGET).copy_(value_targets)
        self.fire("on_rollout_end", {"cycle": self.cycle, "global_step": self.global_step, "buffer": buf})

    def update(self) -> dict[str, float]:
        """The algorithm's update on the buffer flattened to [time * env]."""
        self.fire("on_update_start", {"cycle": self.cycle, "global_step": self.global_step})
        losses = self.algo.update(self.buffer.reshape(-1))
        self.fire("on_update_end", {"cycle": self.cycle, "global_step": self.global_step, "losses": losses})
        return losses

    def log_metrics(self, losses: dict[str, float], rollout_s: float, update_s: float) -> dict[str, float]:
        """The cycle's metrics, reduced across ranks; hooks may add to them; then logged (rank 0)."""
        sps = (self.global_step - self._start_step) / (time.perf_counter() - self._t0)
        metrics = self._cycle_metrics(losses, rollout_s, update_s, sps)
        for old, new in LEGACY_METRIC_ALIASES.items():  # the old system's names, for legacy hooks only
            if new in metrics:
                metrics[old] = metrics[new]
        self.fire("on_metrics_computed", metrics)
        if self.is_global_zero:
            self.log({k: v for k, v in metrics.items() if k not in LEGACY_METRIC_ALIASES})
        self.fire("on_cycle_complete", {"cycle": self.cycle, "global_step": self.global_step, "metrics": metrics})
        return metrics

    def _agree_on_stop(self) -> None:
        if self.world_size > 1:
            stop = self.fabric.strategy.reduce_boolean_decision(self.stop_reason is not None, all=False)
            if stop and self.stop_reason is None:
                self.request_stop("another rank asked to stop")

    # -- bookkeeping ------------------------------------------------------------------------
    def _reduce_sum(self, x: torch.Tensor) -> torch.Tensor:
        if self.world_size == 1:
            return x
        return self.fabric.all_reduce(x.to(self.device), reduce_op="sum").to(x.device)

    def _finish_episodes(self, done: torch.Tensor, term: torch.Tensor, info: dict) -> None:
        final_info = info.get("final_info")
        final_mask = info.get("_final_info")
        for i in done.nonzero().flatten().tolist():
            ret, length = float(self.ep_return[i]), self._vstep - int(self.ep_start[i])
            self.episodes += 1
            self.recent_returns.append(ret)
            self.recent_lengths.append(length)
            if self.bus.has("on_episode_end"):
                fi = None
                if final_info is not None and (final_mask is None or bool(final_mask[i])):
                    fi = {k: _to_float(v[i]) for k, v in final_info.items()
                          if not k.startswith("_") and hasattr(v, "__getitem__") and not isinstance(v, dict)}
                self.fire("on_episode_end", {
                    "env_index": i, "return": ret, "reward": ret, "length": length,
                    "terminated": bool(term[i]), "truncated": not bool(term[i]),
                    "final_info": fi, "global_step": self.global_step,
                })
            if self.bus.has("on_episode_start"):
                self.fire("on_episode_start", {"env_index": i, "global_step": self.global_step})
        self.ep_return[done] = 0.0
        self.ep_start[done] = self._vstep

    def _mean_over_ranks(self, values: dict[str, float]) -> dict[str, float]:
        """Each value averaged over the ranks that have it (NaN = no value yet on that rank)."""
        if self.world_size == 1:
            return values
        keys = sorted(values)
        vec = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        valid = (~torch.isnan(vec)).double()
        total = self.fabric.all_reduce(torch.nan_to_num(vec) * valid, reduce_op="sum")
        count = self.fabric.all_reduce(valid, reduce_op="sum")
        return {k: s / c if c > 0 else float("nan") for k, s, c in zip(keys, total.tolist(), count.tolist())}

    def _episodes_over_ranks(self) -> int:
        if self.world_size == 1:
            return self.episodes
        n = torch.tensor(float(self.episodes), dtype=torch.float64, device=self.device)
        return int(self.fabric.all_reduce(n, reduce_op="sum").item())

    def _recent_means(self) -> dict[str, float]:
        """Mean return and length of the last ``metrics_window`` finished episodes, averaged over ranks."""
        return self._mean_over_ranks({
            "episode/return_mean": float(np.mean(self.recent_returns)) if self.recent_returns else float("nan"),
            "episode/length_mean": float(np.mean(self.recent_lengths)) if self.recent_lengths else float("nan"),
        })

    def _cycle_metrics(self, losses: dict[str, float], rollout_s: float, update_s: float,
                       sps: float) -> dict[str, float]:
        local = {f"train/{k}": float(v) for k, v in losses.items()}
        local["reward/total"] = float(self.buffer.get(K.REWARD).mean())  # per env step, this cycle's rollout
        metrics = {**self._mean_over_ranks(local), **self._recent_means()}
        metrics.update({
            "episode/count": float(self._episodes_over_ranks()),
            "perf/sps": sps,
            "perf/rollout_s": rollout_s,
            "perf/update_s": update_s,
            "global_step": float(self.global_step),
            "cycle": float(self.cycle),
            "training/version": float(self.version),
            "training/resumes": float(self.resumes),
            "training/resumed": float(self.resumed),
        })
        return metrics

    def _summary(self, wall: float, sps: float) -> dict[str, Any]:
        recent = {k: (None if np.isnan(v) else v) for k, v in self._recent_means().items()}
        return {
            "global_step": self.global_step,
            "cycles": self.cycle,
            "wall_s": round(wall, 3),
            "sps": round(sps, 2),
            "episodes": self._episodes_over_ranks(),
            "episode_return_mean": recent["episode/return_mean"],
            "episode_length_mean": recent["episode/length_mean"],
            "algo": self.cfg.algo,
            "policy": self.cfg.policy,
            "env": self.cfg.env,
            "preset": self.cfg.preset,
            "seed": self.cfg.seed,
            "world_size": self.world_size,
            "precision": self.cfg.precision,
            **self._run_record(),
        }

    def _run_record(self) -> dict[str, Any]:
        """What every ``summary.json`` says about the run as a whole (needs no other rank)."""
        return {
            "run_id": self.run_id,
            "version": self.version,
            "resumes": self.resumes,
            "resumed_from": self.resumed_from,
            "status": "completed" if self.stop_reason is None else "stopped",
            "stopped_early": self.stop_reason,
            "signal": signal_name(self.stop_signal) if self.stop_signal else None,
            "nonfinite_updates": self.algo.nonfinite_total,
            "out_dir": str(self.out_dir),
        }


def load_config(ckpt: dict[str, Any], path: str | os.PathLike) -> Any:
    """The config a checkpoint was trained with, rebuilt as its own config class."""
    if "config_class" not in ckpt:
        raise CheckpointError(f"checkpoint {path} does not name its config class (written by an older FxAI); "
                              f"convert it or retrain")
    return config_from_dict(import_class(ckpt["config_class"]), ckpt["config"])


def load_policy(path: str | os.PathLike, device: str | torch.device = "cpu",
                env: Any = None) -> tuple[Any, Callable[[Any], torch.Tensor]]:
    """(cfg, policy_fn) from a checkpoint; ``policy_fn(obs)`` returns deterministic actions.

    ``env``: an env (torch vector protocol) the policy will act in, giving the spaces; by
    default the checkpoint's training env is rebuilt (which needs its data). The
    algorithm/policy/env registries must hold the checkpoint's names (importing ``configs``
    registers the built-in ones)."""
    ckpt = read_checkpoint(path)
    cfg = load_config(ckpt, path)
    if env is None:
        env = make_train_env(cfg, 1, cfg.seed, torch.device(device))
    obs_space, act_space = env.single_observation_space, env.single_action_space
    if ckpt.get("meta", {}).get("observation_space") not in (None, repr(obs_space)):
        raise CheckpointError(f"checkpoint {path} was trained on observations {ckpt['meta']['observation_space']}, "
                              f"but this env gives {obs_space!r}")
    example, _ = env.reset(seed=cfg.seed)
    policy = build_policy(cfg, obs_space, act_space).to(device)
    try:
        policy.load_state_dict(ckpt["policy"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: policy weights do not fit {cfg.policy}: {exc}") from exc
    policy.eval()
    normalizer = None
    if ckpt.get("obs_norm") is not None:
        normalizer = ObsNormalizer(example)
        normalizer.load_state_dict(ckpt["obs_norm"])

    @torch.no_grad()
    def policy_fn(obs: Any) -> torch.Tensor:
        if normalizer is not None:
            obs = normalizer.normalize(obs)
        params, _ = policy(obs)
        return deterministic_action(act_space, params)

    return cfg, policy_fn
