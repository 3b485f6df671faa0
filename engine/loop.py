"""The training loop: rollout -> GAE -> update, on Lightning Fabric, firing the hook bus.

Read :meth:`Run.train` top to bottom; it is the algorithm:

    for each cycle until ``total_steps`` env steps:
        collect ``rollout_steps`` vector steps into a [time, env] TensorDict
        bootstrap V(s_T) and compute GAE along ``time`` (truncation bootstraps, termination does not)
        algo.update(buffer flattened to [time*env])
        compute, reduce across ranks, and log metrics

Fabric owns devices, DDP, precision and checkpoint I/O; the :class:`Run` owns the clock
(env steps), the hooks, the RNGs and the resumable state.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from lightning.fabric import Fabric
from tensordict import TensorDict

from algos import ALGORITHMS, Algorithm
from algos.policies import MLPActorCritic
from engine import keys as K
from engine.checkpoint import CheckpointError, read_checkpoint, save_atomic
from engine.config import TrainConfig, config_from_dict, config_to_dict
from engine.events import HookBus
from engine.gae import gae
from engine.normalize import ObsNormalizer
from engine.state import rng_state, set_rng_state, to_cpu, to_device
from engine.vec import make_gym_vector_env

RECENT_EPISODES = 20
CHECKPOINT_FORMAT = 1


# ----------------------------------------------------------------------------------------------
# construction helpers
# ----------------------------------------------------------------------------------------------
def build_policy(cfg: TrainConfig, observation_space: gym.Space, action_space: gym.Space) -> torch.nn.Module:
    """The policy network named by ``cfg.policy`` (``mlp`` works for any env)."""
    if cfg.policy == "transformer":
        if not isinstance(observation_space, gym.spaces.Dict):
            raise ValueError(f"--policy transformer needs a Dict observation space (env {cfg.env!r} has "
                             f"{type(observation_space).__name__}); use --policy mlp")
        from algos.transformer import MultiBranchTransformer

        return MultiBranchTransformer(observation_space, action_space, cfg.model)
    return MLPActorCritic(observation_space, action_space, tuple(cfg.mlp.hidden), cfg.mlp.activation)


def make_train_env(cfg: TrainConfig, num_envs: int, seed: int, device: torch.device) -> Any:
    if cfg.env == "fx":
        from envs import make_fx_vector_env

        return make_fx_vector_env(cfg.fx, num_envs=num_envs, seed=seed, device=device, split="train")
    return make_gym_vector_env(cfg.env, num_envs, cfg.vector_mode, device)


def _clone(obs: Any) -> Any:
    return {k: v.clone() for k, v in obs.items()} if isinstance(obs, dict) else obs.clone()


def _alloc_obs(example: Any, T: int) -> Any:
    if isinstance(example, dict):
        return {k: _alloc_obs(v, T) for k, v in example.items()}
    return torch.zeros((T, *example.shape), dtype=example.dtype, device=example.device)


def _write_obs(store: Any, t: int, obs: Any) -> None:
    if isinstance(store, dict):
        for k, v in store.items():
            v[t] = obs[k]
    else:
        store[t] = obs


def _to_float(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.item() if x.numel() == 1 else x.tolist()
    return x


# ----------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------
class Run:
    """One training run on one rank. Hooks receive it in ``on_training_start``."""

    def __init__(self, cfg: TrainConfig, fabric: Fabric, hooks: Sequence[Any]) -> None:
        self.cfg = cfg
        self.fabric = fabric
        self.out_dir = Path(cfg.out_dir)
        self.bus = HookBus(hooks)
        self.is_global_zero = fabric.is_global_zero
        self.world_size = fabric.world_size
        self.rank = fabric.global_rank
        self.global_step = 0
        self.cycle = 0
        self.episodes = 0
        self.stop_reason: str | None = None
        self.resumed_from: dict[str, Any] | None = None
        self.recent_returns: deque[float] = deque(maxlen=RECENT_EPISODES)
        self.recent_lengths: deque[int] = deque(maxlen=RECENT_EPISODES)
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
        policy = build_policy(cfg, self.obs_space, self.action_space)
        self.algo: Algorithm = ALGORITHMS[cfg.algo](cfg.algo_cfg, policy, self.action_space, fabric,
                                                    num_updates=num_updates,
                                                    max_nonfinite=cfg.max_nonfinite_updates)
        self.next_obs, _ = self.envs.reset(seed=cfg.seed + 1000 * self.rank)
        self.normalizer = ObsNormalizer(self.next_obs) if cfg.norm_obs else None
        self.ep_return = torch.zeros(self.num_envs, dtype=torch.float64, device=self.device)
        # episode lengths as "vector steps since the episode began": no per-step tensor op
        self._vstep = 0
        self.ep_start = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self._fresh_start = True

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

    def policy_fn(self) -> Any:
        """Deterministic actions of the current policy (normalisation applied): obs -> action."""
        return lambda obs: self.algo.act_deterministic(self._norm(obs))

    def _norm(self, obs: Any) -> Any:
        return self.normalizer.normalize(obs) if self.normalizer is not None else obs

    # -- state ------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """What must match for a checkpoint to fit this run."""
        net = config_to_dict(self.cfg.model) if self.cfg.policy == "transformer" else config_to_dict(self.cfg.mlp)
        return {
            "format": CHECKPOINT_FORMAT,
            "env": self.cfg.env,
            "observation_space": repr(self.obs_space),
            "action_space": repr(self.action_space),
            "algo": self.cfg.algo,
            "policy": self.cfg.policy,
            "network": json.dumps(net, sort_keys=True),
            "norm_obs": bool(self.cfg.norm_obs),
        }

    def _rank_state(self) -> dict[str, Any]:
        env_state = self.envs.state_dict() if callable(getattr(self.envs, "state_dict", None)) else None
        return {
            "rng": rng_state(),
            "envs": env_state,
            "next_obs": _clone(self.next_obs),
            "ep_return": self.ep_return.clone().cpu(),
            "ep_length": (self._vstep - self.ep_start).cpu(),
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (modules/optimizer/stateful objects are converted by Fabric)."""
        local = to_cpu(self._rank_state())
        ranks: list[Any] = [local]
        if self.world_size > 1:
            ranks = [None] * self.world_size
            torch.distributed.all_gather_object(ranks, local)
        return {
            "policy": self.algo.policy,
            "optimizer": self.algo.optimizer,
            "algo": self.algo,
            "obs_norm": self.normalizer.state_dict() if self.normalizer is not None else None,
            "hooks": self.bus.state_dict(),
            "ranks": ranks,
            "global_step": self.global_step,
            "cycle": self.cycle,
            "episodes": self.episodes,
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
            "config": config_to_dict(self.cfg),
            "meta": self.meta(),
            "world_size": self.world_size,
        }

    def save_checkpoint(self, path: str | os.PathLike) -> Path | None:
        """Atomic ``fabric.save`` of the full state; refuses (warns, returns None) a non-finite model."""
        finite = all(torch.isfinite(p).all() for p in self.algo.policy.parameters())
        if not finite:
            warnings.warn(f"not writing checkpoint {path}: the model has NaN/Inf parameters", stacklevel=2)
            return None
        path = save_atomic(self.fabric, path, self.state_dict())
        self.fire("on_checkpoint_saved", {"path": str(path), "global_step": self.global_step})
        return path

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore a run exactly: model, optimizer, scheduler, normaliser, hooks, envs, RNGs, clock."""
        ckpt = read_checkpoint(path)
        theirs, ours = ckpt.get("meta", {}), self.meta()
        diffs = [f"{k}: checkpoint {theirs.get(k)!r} vs this run {v!r}" for k, v in ours.items() if theirs.get(k) != v]
        if diffs:
            raise CheckpointError(f"checkpoint {path} does not fit this run:\n  " + "\n  ".join(diffs))
        state = {"policy": self.algo.policy, "optimizer": self.algo.optimizer, "algo": self.algo}
        rest = self.fabric.load(path, state, strict=False)
        if self.normalizer is not None and rest.get("obs_norm") is not None:
            self.normalizer.load_state_dict(rest["obs_norm"])
        self.bus.load_state_dict(rest.get("hooks", {}))
        self.global_step, self.cycle, self.episodes = rest["global_step"], rest["cycle"], rest["episodes"]
        self.recent_returns.extend(rest["recent_returns"])
        self.recent_lengths.extend(rest["recent_lengths"])
        ranks = rest["ranks"]
        if len(ranks) == self.world_size:
            mine = ranks[self.rank]
            set_rng_state(mine["rng"])
            if mine["envs"] is not None and callable(getattr(self.envs, "load_state_dict", None)):
                self.envs.load_state_dict(mine["envs"])
                self.next_obs = to_device(mine["next_obs"], self.device)
                self.ep_return = mine["ep_return"].to(self.device)
                self.ep_start = self._vstep - mine["ep_length"].to(self.device)
            else:  # the env cannot restore its episode: start fresh episodes, reproducibly
                self.next_obs, _ = self.envs.reset(seed=self.cfg.seed + 1000 * self.rank + self.global_step)
        else:
            warnings.warn(f"checkpoint {path} was written by {len(ranks)} ranks, this run has "
                          f"{self.world_size}: envs and RNGs start fresh", stacklevel=2)
            self.next_obs, _ = self.envs.reset(seed=self.cfg.seed + 1000 * self.rank + self.global_step)
        self._fresh_start = False
        self.resumed_from = {"path": str(path), "global_step": self.global_step}
        self.fire("on_checkpoint_loaded", {"path": str(path), "global_step": self.global_step})

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, num_episodes: int | None = None) -> dict[str, float]:
        """Deterministic policy on the validation split (FX) or a separate eval env (gymnasium)."""
        from engine.evaluate import evaluate_policy

        if self._eval_env is None:
            self._eval_env = _make_eval_env(self.cfg, self.device)
        return evaluate_policy(self.policy_fn(), self._eval_env, self.cfg,
                               num_episodes or self.cfg.eval_episodes)

    # -- the loop ---------------------------------------------------------------------------
    def train(self) -> dict[str, Any]:
        cfg, fabric, algo, envs, bus = self.cfg, self.fabric, self.algo, self.envs, self.bus
        T, N = cfg.rollout_steps, self.num_envs
        steps_per_vector_step = N * self.world_size
        torch.autograd.set_detect_anomaly(cfg.detect_anomaly)

        self.fire("on_training_start", self)
        if self._fresh_start and bus.has("on_episode_start"):
            for i in range(N):
                self.fire("on_episode_start", {"env_index": i, "global_step": self.global_step})

        start_step, t0, cpu0 = self.global_step, time.perf_counter(), time.process_time()
        losses: dict[str, float] = {}
        while self.global_step < self.total_steps and self.stop_reason is None:
            self.cycle += 1
            cycle_t0 = time.perf_counter()
            self.fire("on_rollout_start", {"cycle": self.cycle, "global_step": self.global_step})

            # 1. rollout: T vector steps into preallocated [time, env] storage
            obs_store = _alloc_obs(self._norm(self.next_obs), T)
            action_store = log_prob_store = value_store = None
            rewards = torch.zeros((T, N), device=self.device)
            terminated = torch.zeros((T, N), dtype=torch.bool, device=self.device)
            truncated = torch.zeros((T, N), dtype=torch.bool, device=self.device)
            trunc_values = torch.zeros((T, N), device=self.device)
            for t in range(T):
                if bus.has("on_step_start"):
                    self.fire("on_step_start", {"global_step": self.global_step, "observation": self.next_obs})
                if self.normalizer is not None:
                    self.normalizer.update(self.next_obs, self._reduce_sum)
                obs = self._norm(self.next_obs)
                action, log_prob, value = algo.act(obs)
                if action_store is None:
                    action_store = torch.zeros((T, *action.shape), dtype=action.dtype, device=self.device)
                    log_prob_store = torch.zeros((T, N), device=self.device)
                    value_store = torch.zeros((T, N), device=self.device)
                self.next_obs, reward, term, trunc, info = envs.step(action)
                self.global_step += steps_per_vector_step

                _write_obs(obs_store, t, obs)
                action_store[t], log_prob_store[t], value_store[t] = action, log_prob, value
                rewards[t], terminated[t], truncated[t] = reward, term, trunc
                if trunc.any():  # bootstrap time-limited episodes from their real last observation
                    only_trunc = trunc & ~term
                    final_v = algo.value(self._norm(info["final_obs"]))
                    trunc_values[t] = torch.where(only_trunc, final_v, torch.zeros_like(final_v))
                self.ep_return.add_(reward)
                self._vstep += 1
                done = term | trunc
                if bus.has("on_step_end"):
                    self.fire("on_step_end", {"global_step": self.global_step, "reward": reward,
                                              "terminated": term, "truncated": trunc, "info": info})
                if done.any():
                    self._finish_episodes(done, term, info)

            # 2. GAE along time, per env; bootstrap from V(s_T)
            next_value = algo.value(self._norm(self.next_obs))
            advantages, value_targets = gae(rewards, value_store, terminated | truncated, next_value,
                                            trunc_values, algo.gamma, algo.gae_lambda)
            buffer = TensorDict(
                {
                    K.OBS: obs_store, K.ACTION: action_store, K.LOG_PROB: log_prob_store, K.VALUE: value_store,
                    "next": {"reward": rewards, "terminated": terminated, "truncated": truncated,
                             "truncated_value": trunc_values},
                    K.ADVANTAGE: advantages, K.VALUE_TARGET: value_targets,
                },
                batch_size=[T, N], device=self.device, names=list(K.BATCH_DIMS),
            )
            self.fire("on_rollout_end", {"cycle": self.cycle, "global_step": self.global_step, "buffer": buffer})
            rollout_s = time.perf_counter() - cycle_t0

            # 3. update
            self.fire("on_update_start", {"cycle": self.cycle, "global_step": self.global_step})
            update_t0 = time.perf_counter()
            losses = algo.update(buffer.reshape(-1))
            update_s = time.perf_counter() - update_t0
            self.fire("on_update_end", {"cycle": self.cycle, "global_step": self.global_step, "losses": losses})

            # 4. metrics (reduced across ranks), hooks may add to them, then log
            elapsed = time.perf_counter() - t0
            metrics = self._cycle_metrics(losses, rollout_s, update_s, (self.global_step - start_step) / elapsed)
            self.fire("on_metrics_computed", metrics)
            if self.is_global_zero:
                self.log(metrics)
            self.fire("on_cycle_complete", {"cycle": self.cycle, "global_step": self.global_step,
                                            "metrics": metrics})
            if self.world_size > 1:
                stop = fabric.strategy.reduce_boolean_decision(self.stop_reason is not None, all=False)
                if stop and self.stop_reason is None:
                    self.request_stop("another rank asked to stop")

        wall = time.perf_counter() - self._start_time
        steps = self.global_step - start_step
        summary = self._summary(wall, steps / max(time.perf_counter() - t0, 1e-9))
        summary["sps_cpu"] = round(steps / max(time.process_time() - cpu0, 1e-9), 2)
        self.save_checkpoint(self.out_dir / "checkpoints" / "last.ckpt")
        self.fire("on_training_end", summary)
        if self.is_global_zero:
            _write_json_atomic(self.out_dir / "summary.json", summary)
        for lg in fabric.loggers:
            lg.finalize("success")
        return summary

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
        """Mean return and length of the last finished episodes, averaged over ranks."""
        return self._mean_over_ranks({
            "episode/return_mean": float(np.mean(self.recent_returns)) if self.recent_returns else float("nan"),
            "episode/length_mean": float(np.mean(self.recent_lengths)) if self.recent_lengths else float("nan"),
        })

    def _cycle_metrics(self, losses: dict[str, float], rollout_s: float, update_s: float,
                       sps: float) -> dict[str, float]:
        local = {f"train/{k}": float(v) for k, v in losses.items()}
        local["train/lr"] = self.algo.optimizer.param_groups[0]["lr"]
        metrics = {**self._mean_over_ranks(local), **self._recent_means()}
        metrics.update({
            "episode/count": float(self._episodes_over_ranks()),
            "perf/sps": sps,
            "perf/rollout_s": rollout_s,
            "perf/update_s": update_s,
            "global_step": float(self.global_step),
            "cycle": float(self.cycle),
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
            "seed": self.cfg.seed,
            "world_size": self.world_size,
            "precision": self.cfg.precision,
            "resumed_from": self.resumed_from,
            "stopped_early": self.stop_reason,
            "nonfinite_updates": self.algo.nonfinite_total,
            "out_dir": str(self.out_dir),
        }


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def _make_eval_env(cfg: TrainConfig, device: torch.device) -> Any:
    if cfg.env == "fx":
        from envs import make_fx_eval_env

        return make_fx_eval_env(cfg.fx, split="val", seed=cfg.seed, device=device)
    return make_gym_vector_env(cfg.env, 1, "sync", device)


def load_policy(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[TrainConfig, Any]:
    """(cfg, policy_fn) from a checkpoint; ``policy_fn(obs)`` returns deterministic actions."""
    from algos.distributions import deterministic_action

    ckpt = read_checkpoint(path)
    cfg = config_from_dict(ckpt["config"])
    env = make_train_env(cfg, 1, cfg.seed, torch.device(device))
    obs_space, act_space = env.single_observation_space, env.single_action_space
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
