"""Exported policies (ONNX through onnxruntime, torch.export's .pt2) act as the eager policy on a whole
backtest split: the same actions and targets, outputs within 1e-5, at any batch size; the command
writes one self-describing file and refuses bad flags before any work; an agent streams from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import configs  # noqa: F401  (registers the policies and the FX family)
from engine import loop
from engine.checkpoint import read_checkpoint
from engine.export import main
from envs.fx import market
from envs.fx.live import Agent
from envs.fx.live.artifact import SPEC_KEY, load_artifact
from envs.fx.live.export import export_agent
from envs.fx.research.backtest import run_backtest
from envs.fx.research.spec import norm_from_spec
from envs.fx.windows import raw_windows
from tests.live_helpers import positions_changed, trained_checkpoint

pytest.importorskip("onnxruntime")


def eager_backtest(ckpt: Path, split: str = "test") -> dict:
    """The backtest of the eager policy, recording per step the bar, the raw account and the eager outputs."""
    raw = read_checkpoint(ckpt)
    cfg = loop.load_config(raw, ckpt)
    env = market.make_fx_eval_env(cfg.fx, split=split, norm=norm_from_spec(raw["env_spec"]))
    agent = Agent.load(ckpt)
    _, policy = loop.load_policy(ckpt, env=env)
    rows: dict[str, list] = {"t": [], "account": [], "params": []}

    def policy_fn(obs, info):
        row = env.row
        close = env.market["close"][row]
        acc = env.accounts
        unrealised = acc.unrealised_pnl(close, env._rate(close, env.market["rate_close"][row]))
        rows["t"].append(int(env.t[0]))
        rows["account"].append([float(acc.position[0]), float(unrealised[0]), float(acc.time_in_position[0]),
                                float(env.last_target[0])])
        obs_n = agent.obs_normalizer.normalize(obs) if agent.obs_normalizer is not None else obs
        rows["params"].append(agent.policy(obs_n)[0][0].numpy())
        return policy(obs)

    traj = run_backtest(policy_fn, env)
    bars = market.load_market(cfg.fx).bars
    windows = raw_windows(bars, agent.fx, agent.bar_ns, at=np.array(rows["t"]))
    return {"traj": traj, "cfg": cfg, "agent": agent, "windows": windows, "account": np.array(rows["account"]),
            "start": rows["t"][0],
            "params": np.stack(rows["params"]), "action": traj.action.reshape(len(traj), -1)[:, 0]}


def assert_parity(art, bt: dict) -> None:
    out = art(bt["windows"], bt["account"])  # the whole split as one batch
    n = len(bt["traj"])
    assert out["target"].shape == (n,) and out["params"].shape == bt["params"].shape
    cfg = bt["cfg"].fx
    if cfg.action_mode == "discrete":
        np.testing.assert_array_equal(out["action"], bt["action"].astype(np.int64))
        np.testing.assert_array_equal(out["target"], np.asarray(cfg.position_levels)[bt["action"].astype(int)])
    else:
        np.testing.assert_allclose(out["action"], bt["action"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(out["target"], np.clip(bt["action"], -1, 1), rtol=0, atol=1e-5)
    np.testing.assert_allclose(out["target_units"], out["target"] * cfg.max_position, rtol=1e-15)
    np.testing.assert_allclose(out["params"], bt["params"], rtol=0, atol=1e-5)
    for i in (0, n // 2, n - 1):  # batch 1 as well
        one = art({k: v[i:i + 1] for k, v in bt["windows"].items()}, bt["account"][i:i + 1])
        np.testing.assert_allclose(one["params"][0], bt["params"][i], rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def transformer_backtest() -> dict:
    bt = eager_backtest(trained_checkpoint("transformer"))
    assert positions_changed(bt["traj"].position) >= 20
    return bt


@pytest.fixture(scope="module")
def artifacts(transformer_backtest: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The transformer exported once per format, each in a directory of its own."""
    return {fmt: export_agent(transformer_backtest["agent"], fmt, tmp_path_factory.mktemp(fmt) / f"policy.{fmt}")
            for fmt in ("onnx", "pt2")}


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_an_artifact_acts_as_the_eager_policy_on_a_whole_backtest_split(fmt: str, transformer_backtest: dict,
                                                                        artifacts: dict[str, Path]) -> None:
    path = artifacts[fmt]
    assert sorted(p.name for p in path.parent.iterdir()) == [f"policy.{fmt}"]  # one file, no temp or weight files
    art = load_artifact(path)
    assert art.spec["format"] == "fxai-policy/1" and art.spec["position_levels"] == [-1.0, 0.0, 1.0]
    assert art.bar_ns == transformer_backtest["agent"].bar_ns and art.fx == transformer_backtest["agent"].fx
    assert_parity(art, transformer_backtest)


@pytest.mark.parametrize("setup", [("--norm-obs",), ("--fx.action-mode", "continuous")])
def test_the_observation_normaliser_and_continuous_actions_are_baked_in_too(setup: tuple[str, ...],
                                                                          tmp_path: Path) -> None:
    ckpt = trained_checkpoint("mlp", setup)
    bt = eager_backtest(ckpt)
    if setup == ("--norm-obs",):
        assert bt["agent"].obs_normalizer is not None
    art = load_artifact(export_agent(bt["agent"], "onnx", tmp_path / "policy.onnx"))
    assert_parity(art, bt)


def test_an_agent_streams_from_the_onnx_artifact_as_the_backtest(transformer_backtest: dict,
                                                                 artifacts: dict[str, Path]) -> None:
    agent = Agent.load(artifacts["onnx"])
    assert agent.policy is None and agent.artifact is not None
    traj, cfg = transformer_backtest["traj"], transformer_backtest["cfg"]
    bars = market.load_market(cfg.fx).bars
    start = transformer_backtest["start"]
    live = agent.stream(history=bars.slice(0, start))
    decisions = [live.on_bar(bars.slice(start + i, start + i + 1)) for i in range(len(traj) + 1)]
    levels = np.asarray(cfg.fx.position_levels)
    np.testing.assert_array_equal([d.target for d in decisions[:-1]], levels[traj.action.reshape(-1).astype(int)])
    np.testing.assert_array_equal(np.array([d.equity for d in decisions[1:]]), traj.equity)


def test_the_export_command_writes_a_self_describing_file_and_refuses_bad_flags_before_work(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = trained_checkpoint("mlp")
    result = main(["--ckpt", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "a" / "policy.onnx")])
    assert result["check"]["actions_equal"] == 256 and max(result["check"]["max_abs_diff"].values()) < 1e-5
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith(f"wrote {tmp_path / 'a' / 'policy.onnx'}")
    assert any(line.startswith("check on 256 random inputs: actions equal 256/256") for line in lines)
    import onnx

    model = onnx.load(tmp_path / "a" / "policy.onnx")
    spec = json.loads({p.key: p.value for p in model.metadata_props}[SPEC_KEY])
    assert [i.name for i in model.graph.input] == ["high_freq", "medium_freq", "low_freq", "account"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a named, dynamic batch dimension
    assert spec["inputs"]["high_freq"]["shape"] == ["B", 16, 9] and spec["history_bars"] == 216
    refused = tmp_path / "refused"
    for args, needle in [(("--format", "onnx", "--out", str(refused / "x.pt2")), "must end in .onnx"),
                         (("--format", "pt2", "--out", str(tmp_path)), "must end in .pt2"),
                         (("--format", "pt2", "--out", str(refused / "x.pt2"), "--check", "-1"),
                          "--check: must be an integer in [0, 1000000]"),
                         (("--format", "pt2", "--out", str(refused / "x.pt2")), None)]:
        with pytest.raises(SystemExit) as exit_:
            main(["--ckpt", str(ckpt if needle else tmp_path / "nope.ckpt"), *args])
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert exit_.value.code == 2 and len(err) == 1, err
        assert needle in err[0] if needle else ("--ckpt: checkpoint" in err[0] and "does not exist" in err[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # nothing written by the refused runs
