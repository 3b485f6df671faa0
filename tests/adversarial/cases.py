"""The battery's cases: bad flags, NaN/inf values, bad files, corrupted checkpoints, signals, concurrent
runs and Optuna studies, across every command. ``CASES`` is the whole list (see :class:`runner.Case`)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.adversarial.fixtures import (CP, FX, H1, Ctx, Result, changed, ckpt_step, flip_tensor_byte, kill_group,
                                        metrics_steps, read_summary, snapshot, wait_for)
from tests.adversarial.runner import Case, Verdict, error_lines, judge_error

OUT = ["--out-dir", "{out}"]
CP_OUT = [*CP, "--total-steps", "64", *OUT]
FX_OUT = [*FX, "--total-steps", "64", *OUT]
SIGNAL_EXIT = {signal.SIGTERM: 143, signal.SIGINT: 130}


def bad(name: str, flags: list[str], needle: str, base: list[str] = CP_OUT, module: str = "engine.ppo",
        codes: tuple[int, ...] = (2,), fast: bool = False) -> Case:
    return Case(name, module, [*base, *flags], needle=needle, codes=codes, fast=fast)


# ---------------------------------------------------------------------------------------------
# flags of the training commands
# ---------------------------------------------------------------------------------------------
TRAIN_FLAGS = [
    bad("total-steps-zero", ["--total-steps", "0"], "--total-steps", fast=True),
    bad("total-steps-negative", ["--total-steps", "-5"], "--total-steps"),
    bad("num-envs-zero", ["--num-envs", "0"], "--num-envs"),
    bad("num-envs-huge", ["--num-envs", "100000000"], "--num-envs", fast=True),
    bad("rollout-steps-zero", ["--rollout-steps", "0"], "--rollout-steps"),
    bad("rollout-steps-huge", ["--rollout-steps", "1000000000"], "--rollout-steps"),
    bad("threads-negative", ["--threads", "-1"], "--threads"),
    bad("threads-huge", ["--threads", "100000"], "--threads", fast=True),
    bad("devices-zero", ["--devices", "0"], "--devices"),
    bad("num-nodes-without-launcher", ["--num-nodes", "2"], "--num-nodes", fast=True),
    bad("accelerator-cuda-without-cuda", ["--accelerator", "cuda"], "--accelerator", fast=True),
    bad("accelerator-unknown", ["--accelerator", "quantum"], "--accelerator"),
    bad("strategy-unknown", ["--strategy", "bogus"], "--strategy"),
    bad("precision-unknown", ["--precision", "bf17"], "--precision"),
    bad("metrics-window-zero", ["--metrics-window", "0"], "--metrics-window"),
    bad("max-nonfinite-zero", ["--max-nonfinite-updates", "0"], "--max-nonfinite-updates"),
    bad("out-dir-empty", [*CP, "--total-steps", "64", "--out-dir", ""], "--out-dir", base=[], fast=True),
    bad("seed-negative", ["--seed", "-1"], "--seed"),
    bad("seed-huge", ["--seed", "99999999999"], "--seed"),
    bad("env-unknown", ["--env", "CartPole-v9"], "CartPole-v9"),
    bad("ppo-gamma-above-one", ["--ppo.gamma", "1.5"], "--ppo.gamma"),
    bad("ppo-gamma-nan", ["--ppo.gamma", "nan"], "--ppo.gamma", fast=True),
    bad("ppo-gae-lambda-negative", ["--ppo.gae-lambda", "-0.1"], "--ppo.gae-lambda"),
    bad("ppo-gae-lambda-nan", ["--ppo.gae-lambda", "nan"], "--ppo.gae-lambda"),
    bad("ppo-lr-zero", ["--ppo.learning-rate", "0"], "--ppo.learning-rate"),
    bad("ppo-lr-nan", ["--ppo.learning-rate", "nan"], "--ppo.learning-rate"),
    bad("ppo-lr-inf", ["--ppo.learning-rate", "inf"], "--ppo.learning-rate"),
    bad("ppo-lr-absurd", ["--ppo.learning-rate", "1e6"], "--ppo.learning-rate"),
    bad("ppo-max-grad-norm-negative", ["--ppo.max-grad-norm", "-1"], "--ppo.max-grad-norm", fast=True),
    bad("ppo-max-grad-norm-zero", ["--ppo.max-grad-norm", "0"], "--ppo.max-grad-norm"),
    bad("ppo-max-grad-norm-nan", ["--ppo.max-grad-norm", "nan"], "--ppo.max-grad-norm"),
    bad("ppo-clip-zero", ["--ppo.clip-coef", "0"], "--ppo.clip-coef"),
    bad("ppo-clip-nan", ["--ppo.clip-coef", "nan"], "--ppo.clip-coef"),
    bad("ppo-ent-negative", ["--ppo.ent-coef", "-1"], "--ppo.ent-coef"),
    bad("ppo-ent-nan", ["--ppo.ent-coef", "nan"], "--ppo.ent-coef"),
    bad("ppo-vf-negative", ["--ppo.vf-coef", "-1"], "--ppo.vf-coef"),
    bad("ppo-vf-nan", ["--ppo.vf-coef", "nan"], "--ppo.vf-coef"),
    bad("ppo-target-kl-nan", ["--ppo.target-kl", "nan"], "--ppo.target-kl"),
    bad("ppo-target-kl-negative", ["--ppo.target-kl", "-1"], "--ppo.target-kl"),
    bad("ppo-minibatches-not-dividing", ["--ppo.num-minibatches", "3"], "--ppo.num-minibatches"),
    bad("ppo-update-epochs-zero", ["--ppo.update-epochs", "0"], "--ppo.update-epochs"),
    bad("ppo-lr-warmup-above-one", ["--ppo.lr-warmup", "1.5"], "--ppo.lr-warmup"),
    bad("ppo-lr-final-nan", ["--ppo.lr-final", "nan"], "--ppo.lr-final"),
    bad("ppo-ent-final-inf", ["--ppo.ent-coef-final", "inf"], "--ppo.ent-coef-final"),
    bad("ppo-accumulate-not-dividing", ["--ppo.accumulate-grad-batches", "3"], "--ppo.accumulate-grad-batches"),
    bad("mlp-hidden-zero", ["--mlp.hidden", "0"], "--mlp.hidden"),
    bad("hooks-eval-every-negative", ["--hooks.eval-every", "-1"], "--hooks.eval-every"),
    bad("hooks-ckpt-minutes-nan", ["--hooks.checkpoint-every-minutes", "nan"], "--hooks.checkpoint-every-minutes"),
    bad("hooks-ckpt-minutes-inf", ["--hooks.checkpoint-every-minutes", "inf"], "--hooks.checkpoint-every-minutes"),
    bad("hooks-min-delta-nan", ["--hooks.min-delta", "nan"], "--hooks.min-delta"),
    bad("hooks-top-k-below", ["--hooks.save-top-k", "-2"], "--hooks.save-top-k"),
    bad("hooks-eval-episodes-zero", ["--hooks.eval-episodes", "0"], "--hooks.eval-episodes"),
    bad("hooks-unknown-logger", ["--hooks.loggers", "neptune"], "--hooks.loggers"),
    bad("out-dir-is-a-file", [], "--out-dir", base=[*CP, "--total-steps", "64", "--out-dir", "{file}/run"]),
    bad("a2c-lr-nan", ["--a2c.learning-rate", "nan"], "--a2c.learning-rate", module="engine.a2c"),
    bad("a2c-max-grad-norm-negative", ["--a2c.max-grad-norm", "-1"], "--a2c.max-grad-norm", module="engine.a2c"),
    bad("a2c-rmsprop-eps-zero", ["--a2c.rmsprop-eps", "0"], "--a2c.rmsprop-eps", module="engine.a2c"),
    bad("a2c-rmsprop-alpha-two", ["--a2c.rmsprop-alpha", "2"], "--a2c.rmsprop-alpha", module="engine.a2c"),
    bad("a2c-gamma-nan", ["--a2c.gamma", "nan"], "--a2c.gamma", module="engine.a2c"),
]

FX_FLAGS = [
    bad(f"fx-{flag}-{tag}", [f"--fx.{flag}", value], f"--fx.{flag}", base=FX_OUT, fast=fast)
    for flag, value, tag, fast in [
        ("spread-pips", "nan", "nan", True), ("spread-pips", "-1", "negative", False),
        ("commission-per-million", "nan", "nan", False), ("swap-long", "nan", "nan", False),
        ("swap-short", "inf", "inf", False), ("initial-margin", "nan", "nan", False),
        ("maintenance-margin", "nan", "nan", False), ("dsr-eta", "nan", "nan", False),
        ("w-pnl", "nan", "nan", False), ("w-differential-sharpe", "inf", "inf", False),
        ("reward-scale", "0", "zero", False), ("reward-scale", "1e300", "absurd", False),
        ("latency-bars", "100000", "huge", True), ("latency-bars", "0", "zero", False),
        ("max-leverage", "0", "zero", False), ("obs-clip", "inf", "inf", False), ("episode-bars", "0", "zero", False),
        ("pip-size", "nan", "nan", False), ("conversion-rate", "nan", "nan", False),
        ("max-position", "inf", "inf", False), ("synthetic-annual-vol", "nan", "nan", False),
        ("cost-scale", "-1", "negative", False), ("initial-equity", "1e309", "overflow", False),
        ("position-levels", "nan", "nan", False), ("slippage-pips", "nan", "nan", False),
        ("synthetic-n-bars", "10", "too-few", False), ("lot-size", "nan", "nan", False),
    ]
] + [
    bad("fx-val-frac-zero-with-evaluation", ["--fx.train-frac", "0.85", "--fx.val-frac", "0", "--fx.test-frac",
                                             "0.15", "--hooks.eval-every", "1"], "--fx.val-frac", base=FX_OUT),
    bad("fx-test-frac-zero-with-report", ["--fx.train-frac", "0.85", "--fx.val-frac", "0.15", "--fx.test-frac", "0",
                                          "--report-split", "test"], "--fx.test-frac", base=FX_OUT),
    bad("fx-fracs-nan", ["--fx.train-frac", "nan"], "--fx.train-frac", base=FX_OUT),
]


# ---------------------------------------------------------------------------------------------
# bar files
# ---------------------------------------------------------------------------------------------
def data_case(kind: str, needle: str, fast: bool = False) -> Case:
    return Case(f"data-{kind}", "engine.ppo", ["--data", f"{{data:{kind}}}", *H1, "--total-steps", "64", *OUT],
                needle=needle, fast=fast)


DATA = [
    data_case("spike", "row", fast=True), data_case("huge", "row"), data_case("hole", "row"),
    data_case("mixedtz", "row", fast=True), data_case("nan", "row"), data_case("backwards", "row"),
    data_case("highlow", "row"), data_case("negative", "row"), data_case("dupe", "row"),
    data_case("nocolumn", "close"), data_case("empty", "empty"), data_case("binary", "EURUSD_H1_binary"),
    Case("data-missing-file", "engine.ppo", ["--data", "/nonexistent/bars.csv", *H1, *OUT], needle="bars.csv"),
    Case("data-is-a-directory", "engine.ppo", ["--data", "/tmp", *H1, *OUT], needle="/tmp"),
]


def _accepted(ctx: Ctx, case_dir: Path, values: dict[str, str], res: Result) -> Verdict | None:
    if res.rc == 0 and "anomal" not in res.stderr.lower():
        return "unclear", "accepted, but no warning counting the anomalies"
    return None


DATA.append(Case("data-spike-accepted-knowingly", "engine.ppo",
                 ["--data", "{data:spike}", *H1, "--total-steps", "64", "--fx.accept-anomalies", *OUT], expect="ok",
                 verify=_accepted, timeout=240))


# ---------------------------------------------------------------------------------------------
# checkpoints and resume
# ---------------------------------------------------------------------------------------------
def _flip_last(ctx: Ctx, case_dir: Path, values: dict[str, str]) -> None:
    flip_tensor_byte(Path(values["run"]) / "checkpoints" / "last.ckpt")


def _flip_copy(ctx: Ctx, case_dir: Path, values: dict[str, str]) -> None:
    shutil.copy2(ctx.cartpole_run() / "checkpoints" / "last.ckpt", case_dir / "flipped.ckpt")
    flip_tensor_byte(case_dir / "flipped.ckpt")


def _garbage(ctx: Ctx, case_dir: Path, values: dict[str, str]) -> None:
    (case_dir / "garbage.ckpt").write_bytes(b"PK\x03\x04 not a checkpoint at all")


def _truncated(ctx: Ctx, case_dir: Path, values: dict[str, str]) -> None:
    data = (ctx.cartpole_run() / "checkpoints" / "last.ckpt").read_bytes()
    (case_dir / "truncated.ckpt").write_bytes(data[: len(data) // 2])


def _pickle_bomb(ctx: Ctx, case_dir: Path, values: dict[str, str]) -> None:
    import torch

    class Bomb:
        def __reduce__(self):
            return (os.system, (f"touch {case_dir / 'PWNED'}",))

    torch.save({"global_step": 1, "payload": Bomb()}, case_dir / "bomb.ckpt")


def _no_bomb(ctx: Ctx, case_dir: Path, values: dict[str, str], res: Result) -> Verdict | None:
    if (case_dir / "PWNED").exists():
        return "silent-wrong", "the pickled payload ran"
    return None


def _mtime_trap(ctx: Ctx, case_dir: Path, values: dict[str, str]) -> None:
    backup = Path(values["run"]) / "checkpoints" / "backup-copy.ckpt"
    shutil.copy2(ctx.cartpole_run().parent / "old-64.ckpt", backup)
    later = time.time() + 60
    os.utime(backup, (later, later))


def _resumed_newest(ctx: Ctx, case_dir: Path, values: dict[str, str], res: Result) -> Verdict | None:
    summary = read_summary(Path(values["run"]))
    if res.rc != 0 or summary is None:
        return None
    got = (summary.get("resumed_from") or {}).get("global_step")
    if got != 128:
        return "data-loss", f"--resume auto continued step {got}, not the newest (128), and overwrote last.ckpt"
    return "handled", "continued the newest checkpoint (step 128)"


def _skipped_corrupt(ctx: Ctx, case_dir: Path, values: dict[str, str], res: Result) -> Verdict | None:
    if res.rc == 0:
        summary = read_summary(Path(values["run"])) or {}
        return "silent-wrong", f"trained on from a corrupted checkpoint ({summary.get('resumed_from')})"
    return None


def _tmp_litter(ctx: Ctx, case_dir: Path, values: dict[str, str]) -> None:
    ck = Path(values["run"]) / "checkpoints"
    (ck / "last.ckpt.tmp").write_bytes(b"x" * 1_000_000)
    (ck / "last.ckpt.99999999.deadbeef.tmp").write_bytes(b"x" * 1_000_000)


def _tmp_cleaned(ctx: Ctx, case_dir: Path, values: dict[str, str], res: Result) -> Verdict | None:
    if res.rc != 0:
        return None
    left = [p.name for p in (Path(values["run"]) / "checkpoints").glob("*.tmp")]
    return ("unclear", f"left-over temp files remain: {left}") if left else ("handled", "temp files cleaned")


def _resume_total(steps: int) -> list[str]:
    return [*CP, "--hooks.checkpoint-every", "1", "--hooks.save-top-k", "0", "--total-steps", str(steps),
            "--out-dir", "{run}"]


CHECKPOINTS = [
    Case("resume-missing-file", args=[*CP_OUT, "--resume", "/nonexistent/x.ckpt"], needle="x.ckpt"),
    Case("resume-garbage-file", args=[*CP_OUT, "--resume", "{case}/garbage.ckpt"], needle="garbage.ckpt",
         prepare=_garbage),
    Case("resume-truncated-file", args=[*CP, "--total-steps", "192", "--out-dir", "{out}", "--resume",
                                        "{case}/truncated.ckpt"], needle="truncated.ckpt", prepare=_truncated),
    Case("resume-explicit-flipped-byte", args=[*CP, "--total-steps", "192", *OUT, "--resume", "{case}/flipped.ckpt"],
         needle="flipped.ckpt", prepare=_flip_copy, verify=lambda c, d, v, r: _skipped_corrupt(c, d, {"run": v["out"]}, r),
         fast=True),
    Case("resume-auto-only-checkpoint-flipped", args=[*_resume_total(192), "--resume", "auto"], needle="checkpoint",
         prepare=_flip_last, verify=_skipped_corrupt),
    Case("resume-pickle-payload", args=[*CP_OUT, "--resume", "{case}/bomb.ckpt"], needle="bomb.ckpt",
         prepare=_pickle_bomb, verify=_no_bomb),
    Case("resume-auto-mtime-trap", args=[*_resume_total(192), "--resume", "auto"], expect="ok",
         prepare=_mtime_trap, verify=_resumed_newest, fast=True),
    Case("resume-best-without-best", args=[*_resume_total(192), "--resume", "best"], needle="--resume best"),
    Case("resume-other-runs-checkpoint", args=[*_resume_total(192), "--resume", "{fxckpt}"], needle="--resume"),
    Case("resume-directory-as-checkpoint", args=[*_resume_total(192), "--resume", "/tmp"], needle="/tmp"),
    Case("continue-with-other-settings", args=[*_resume_total(192), "--ppo.clip-coef", "0.3"], needle="--resume auto"),
    Case("overwrite-with-resume-auto", args=[*_resume_total(192), "--resume", "auto", "--overwrite"],
         needle="--overwrite"),
    Case("leftover-temp-files", args=[*_resume_total(192), "--resume", "auto"], expect="ok", prepare=_tmp_litter,
         verify=_tmp_cleaned),
]


# ---------------------------------------------------------------------------------------------
# signals
# ---------------------------------------------------------------------------------------------
def _long_run(out: Path, base: list[str] = CP) -> list[str]:
    return [*base, "--total-steps", "100000000", "--hooks.checkpoint-every", "1000000",
            "--hooks.checkpoint-every-minutes", "0", "--out-dir", str(out)]


def _started(out: Path) -> bool:
    return any(out.glob("logs/csv/**/hparams.json"))


def _signal_once(ctx: Ctx, case_dir: Path, sig: int, base: list[str] = CP, delay: tuple[float, float] = (0.5, 3.0),
                 resume_flags: list[str] | None = None) -> Verdict:
    """Signal a running job at a random moment; then it must have saved the step it stopped at, flushed its
    metrics, said why in summary.json, exited with 128 + signal, and ``--resume auto`` must continue there."""
    out = case_dir / "out"
    proc = ctx.popen("engine.ppo", _long_run(out, base))
    try:
        if not wait_for(lambda: _started(out), 240, proc):
            return "unclear", f"the job did not start: {proc.communicate()[1][-300:]}"
        time.sleep(random.uniform(*delay))
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=120)
        except Exception:  # noqa: BLE001  (subprocess.TimeoutExpired)
            kill_group(proc)
            return "hang", f"no exit within 120 s of {signal.Signals(sig).name}"
    finally:
        kill_group(proc)
    if "Traceback (most recent call last)" in err:
        return "traceback", err.strip().splitlines()[-1][:200]
    last = out / "checkpoints" / "last.ckpt"
    step = ckpt_step(last) if last.exists() else None
    if step is None:
        return "data-loss", f"{signal.Signals(sig).name}: no checkpoint written (rc {proc.returncode})"
    summary = read_summary(out)
    if summary is None or summary.get("global_step") != step or not summary.get("stopped_early"):
        return "data-loss", f"summary.json missing or not at the saved step {step}: {summary and summary.get('global_step')}"
    rows = metrics_steps(out)
    if not rows or max(rows) != step:
        return "data-loss", f"metrics.csv rows end at {max(rows) if rows else None}, the checkpoint is at {step}"
    res = ctx.run("engine.ppo", [*base, "--total-steps", str(step + 64), "--out-dir", str(out), "--resume", "auto",
                                 *(resume_flags or [])], timeout=240)
    resumed = (read_summary(out) or {}).get("resumed_from") or {}
    if res.rc != 0 or resumed.get("global_step") != step:
        return "data-loss", f"--resume auto did not continue step {step}: rc {res.rc}, {resumed}"
    if proc.returncode != SIGNAL_EXIT[sig]:
        return "unclear", f"saved step {step} but exit code {proc.returncode} (want {SIGNAL_EXIT[sig]})"
    return "handled", f"stopped at step {step}, exit {proc.returncode}, resumed there"


def _double_signal(ctx: Ctx, case_dir: Path) -> Verdict:
    out = case_dir / "out"
    proc = ctx.popen("engine.ppo", _long_run(out))
    try:
        if not wait_for(lambda: _started(out), 240, proc):
            return "unclear", "the job did not start"
        time.sleep(random.uniform(0.3, 2.0))
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        except Exception:  # noqa: BLE001
            return "hang", "a second SIGTERM did not end it within 20 s"
    finally:
        kill_group(proc)
    if "Traceback (most recent call last)" in err:
        return "traceback", err.strip().splitlines()[-1][:200]
    for ck in (out / "checkpoints").glob("*.ckpt"):
        if ckpt_step(ck) is None:
            return "data-loss", f"{ck.name} is corrupt after the second signal"
    return "handled", f"exit {proc.returncode} at once"


def _signal_at_start(ctx: Ctx, case_dir: Path, sig: int) -> Verdict:
    out = case_dir / "out"
    proc = ctx.popen("engine.ppo", _long_run(out))
    time.sleep(random.uniform(0.2, 1.5))
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except Exception:  # noqa: BLE001
        kill_group(proc)
        return "hang", "no exit within 60 s"
    if "Traceback (most recent call last)" in err:
        return "traceback", err.strip().splitlines()[-1][:200]
    if proc.returncode not in (SIGNAL_EXIT[sig], -sig):
        return "unclear", f"exit {proc.returncode}"
    return "handled", f"exit {proc.returncode}"


SIGNALS = [
    Case("signal-sigterm-cartpole", custom=lambda c, d: _signal_once(c, d, signal.SIGTERM), fast=True),
    Case("signal-sigint-cartpole", custom=lambda c, d: _signal_once(c, d, signal.SIGINT), fast=True),
    Case("signal-sigterm-cartpole-again", custom=lambda c, d: _signal_once(c, d, signal.SIGTERM, delay=(2, 5))),
    Case("signal-sigint-cartpole-again", custom=lambda c, d: _signal_once(c, d, signal.SIGINT, delay=(2, 5))),
    Case("signal-sigterm-fx", custom=lambda c, d: _signal_once(c, d, signal.SIGTERM, base=FX)),
    Case("signal-sigint-fx-evaluating", custom=lambda c, d: _signal_once(
        c, d, signal.SIGINT, base=[*FX, "--hooks.eval-every", "1"])),
    Case("signal-double-sigterm", custom=_double_signal),
    Case("signal-sigterm-at-start", custom=lambda c, d: _signal_at_start(c, d, signal.SIGTERM)),
    Case("signal-sigint-at-start", custom=lambda c, d: _signal_at_start(c, d, signal.SIGINT)),
]


# ---------------------------------------------------------------------------------------------
# neighbours: two runs on one directory
# ---------------------------------------------------------------------------------------------
def _concurrent(ctx: Ctx, case_dir: Path, second: list[str], codes: tuple[int, ...] = (3,)) -> Verdict:
    out = case_dir / "out"
    first = ctx.popen("engine.ppo", [*CP, "--total-steps", "100000000", "--hooks.checkpoint-every", "2",
                                     "--out-dir", str(out)])
    try:
        if not wait_for(lambda: (out / "checkpoints" / "last.ckpt").exists(), 240, first):
            return "unclear", "the first run did not start"
        res = ctx.run("engine.ppo", [*CP, *second, "--out-dir", str(out)], timeout=120)
        alive = first.poll() is None
        time.sleep(1.0)
        alive = alive and first.poll() is None
        kill_group(first, signal.SIGTERM)
        first.communicate(timeout=120)
    finally:
        kill_group(first)
    if not alive:
        return "data-loss", "the first run died while the second one ran"
    if ckpt_step(out / "checkpoints" / "last.ckpt") is None:
        return "data-loss", "the first run's last.ckpt is gone or corrupt"
    verdict = judge_error(Case("x", codes=codes, needle="pid"), res)
    if verdict[0] == "handled" and len(error_lines(res.stderr)) != 1:
        return "unclear", f"{len(error_lines(res.stderr))} error lines"
    return verdict


def _stale_lock(ctx: Ctx, case_dir: Path) -> Verdict:
    out = case_dir / "out"
    out.mkdir(parents=True)
    (out / ".fxai.lock").write_text(json.dumps({"pid": 999_999_999, "host": os.uname().nodename}))
    res = ctx.run("engine.ppo", [*CP, "--total-steps", "64", "--out-dir", str(out)])
    if res.rc != 0:
        return "unclear", f"a stale lock (dead pid) was not taken over: {res.stderr.strip()[-200:]}"
    return "handled", "stale lock taken over"


NEIGHBOURS = [
    Case("concurrent-same-settings", custom=lambda c, d: _concurrent(c, d, ["--total-steps", "100000000"]),
         fast=True),
    Case("concurrent-resume-auto", custom=lambda c, d: _concurrent(c, d, ["--total-steps", "100000000", "--resume",
                                                                         "auto"])),
    Case("concurrent-overwrite", custom=lambda c, d: _concurrent(c, d, ["--total-steps", "64", "--overwrite"])),
    Case("stale-lock-of-a-dead-process", custom=_stale_lock),
]


# ---------------------------------------------------------------------------------------------
# engine.tune
# ---------------------------------------------------------------------------------------------
TUNE = ["--n-trials", "1"]
TRAINER = [*CP, "--total-steps", "64", "--out-dir", "{out}"]


def _no_study(ctx: Ctx, case_dir: Path, values: dict[str, str], res: Result) -> Verdict | None:
    if (Path(values["out"]) / "study.db").exists():
        verdict = judge_error(Case("x"), res)
        if verdict[0] == "handled":
            return "unclear", "the study was created before the bad flag was found"
    return None


def tune_bad(name: str, tune_flags: list[str], trainer_flags: list[str], needle: str, fast: bool = False) -> Case:
    return Case(f"tune-{name}", "engine.tune", [*TUNE, *tune_flags, *TRAINER, *trainer_flags], needle=needle,
                verify=_no_study, fast=fast)


def _failed_trial_reason(ctx: Ctx, case_dir: Path, values: dict[str, str], res: Result) -> Verdict | None:
    db = Path(values["out"]) / "study.db"
    if not db.exists():
        return "unclear", "no study"
    con = sqlite3.connect(db)
    states = [r[0] for r in con.execute("select state from trials")]
    reasons = [r[0] for r in con.execute("select value_json from trial_user_attributes where key='fail_reason'")]
    con.close()
    if "FAIL" not in states:
        return "silent-wrong", f"trial states {states}"
    if not reasons:
        return "unclear", "the failed trial records no reason"
    return judge_error(Case("x", needle="metric"), res)


def _stale_trial(ctx: Ctx, case_dir: Path) -> Verdict:
    out = case_dir / "out"
    args = ["--n-trials", "1", "--heartbeat-interval", "1"]
    proc = ctx.popen("engine.tune", [*args, *CP, "--out-dir", str(out), "--total-steps", "100000000"])
    try:
        if not wait_for(lambda: any(out.glob("trial_0/logs/csv/**/hparams.json")), 240, proc):
            return "unclear", f"the first study did not start: {proc.communicate()[1][-300:]}"
    finally:
        kill_group(proc)
        proc.communicate()
    time.sleep(5)
    res = ctx.run("engine.tune", [*args, *CP, "--out-dir", str(out), "--total-steps", "64"], timeout=240)
    con = sqlite3.connect(out / "study.db")
    states = [r[0] for r in con.execute("select state from trials order by number")]
    con.close()
    if states[:1] != ["FAIL"]:
        return "silent-wrong", f"the killed trial is still {states[:1]} (trials: {states}); rc {res.rc}"
    if res.rc != 0:
        return "unclear", f"exit {res.rc}: {res.stderr.strip()[-200:]}"
    return "handled", f"stale trial failed, study went on: {states}"


def _tune_sigterm(ctx: Ctx, case_dir: Path) -> Verdict:
    out = case_dir / "out"
    proc = ctx.popen("engine.tune", ["--n-trials", "3", *CP, "--out-dir", str(out), "--total-steps", "100000000"])
    try:
        if not wait_for(lambda: any(out.glob("trial_0/logs/csv/**/hparams.json")), 240, proc):
            return "unclear", "the study did not start"
        time.sleep(random.uniform(0.5, 2.0))
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=120)
        except Exception:  # noqa: BLE001
            return "hang", "no exit within 120 s of SIGTERM"
    finally:
        kill_group(proc)
    if "Traceback (most recent call last)" in err:
        return "traceback", err.strip().splitlines()[-1][:200]
    con = sqlite3.connect(out / "study.db")
    states = [r[0] for r in con.execute("select state from trials order by number")]
    con.close()
    if "RUNNING" in states:
        return "data-loss", f"a trial is left RUNNING: {states}"
    if ckpt_step(out / "trial_0" / "checkpoints" / "last.ckpt") is None:
        return "data-loss", "the interrupted trial saved no checkpoint"
    if proc.returncode != 143:
        return "unclear", f"exit {proc.returncode}, trials {states}"
    return "handled", f"exit 143, trials {states}"


TUNE_CASES = [
    tune_bad("typo-trainer-flag", [], ["--ppo.learnig-rate", "0.1"], "learnig", fast=True),
    tune_bad("max-grad-norm-negative", [], ["--ppo.max-grad-norm", "-1"], "--ppo.max-grad-norm"),
    tune_bad("n-trials-zero", ["--n-trials", "0"], [], "--n-trials"),
    tune_bad("space-low-nan", ["--space.learning-rate.low", "nan"], [], "--space.learning-rate"),
    tune_bad("warmup-nan", ["--warmup-fraction", "nan"], [], "--warmup-fraction"),
    tune_bad("space-choice-not-dividing", ["--space.num-minibatches.values", "3"], [], "num-minibatches", fast=True),
    tune_bad("storage-bogus", ["--storage", "bogus://nowhere"], [], "--storage"),
    Case("tune-trainer-out-dir-empty", "engine.tune", [*TUNE, *CP, "--total-steps", "64", "--out-dir", ""],
         needle="--out-dir"),
    Case("tune-metric-never-logged", "engine.tune", ["--metric", "no/such", *TUNE, *TRAINER], needle="no/such",
         verify=_failed_trial_reason),
    Case("tune-stale-running-trial", custom=_stale_trial, fast=True),
    Case("tune-sigterm", custom=_tune_sigterm),
]


# ---------------------------------------------------------------------------------------------
# engine.backtest, engine.walkforward, engine.bench, engine.convert
# ---------------------------------------------------------------------------------------------
def _flip_fx(ctx: Ctx, case_dir: Path, values: dict[str, str]) -> None:
    shutil.copy2(ctx.fx_checkpoint(), case_dir / "flipped.ckpt")
    flip_tensor_byte(case_dir / "flipped.ckpt")


BT = ["--ckpt", "{fxckpt}", "--out-dir", "{out}"]
BACKTEST = [
    Case("backtest-missing-ckpt", "engine.backtest", ["--ckpt", "/nonexistent/x.ckpt", *OUT], needle="x.ckpt"),
    Case("backtest-garbage-ckpt", "engine.backtest", ["--ckpt", "{case}/garbage.ckpt", *OUT], needle="garbage",
         prepare=_garbage),
    Case("backtest-flipped-ckpt", "engine.backtest", ["--ckpt", "{case}/flipped.ckpt", *OUT], needle="flipped",
         prepare=_flip_fx, fast=True),
    Case("backtest-cartpole-ckpt", "engine.backtest", ["--ckpt", "{old}", *OUT], needle="fx"),
    Case("backtest-missing-data", "engine.backtest", [*BT, "--data", "/nonexistent/b.csv"], needle="b.csv"),
    Case("backtest-nan-data", "engine.backtest", [*BT, "--data", "{data:nan}"], needle="row"),
    Case("backtest-spike-data", "engine.backtest", [*BT, "--data", "{data:spike}"], needle="row"),
    Case("backtest-binary-data", "engine.backtest", [*BT, "--data", "{data:binary}"], needle="binary"),
    Case("backtest-split-unknown", "engine.backtest", [*BT, "--split", "bogus"], needle="--split"),
    Case("backtest-periods-nan", "engine.backtest", [*BT, "--periods-per-year", "nan"], needle="--periods-per-year"),
    Case("backtest-n-trials-zero", "engine.backtest", [*BT, "--n-trials", "0"], needle="--n-trials"),
    Case("backtest-zscore-entry-nan", "engine.backtest", [*BT, "--zscore-entry", "nan"], needle="--zscore-entry"),
    Case("backtest-momentum-zero", "engine.backtest", [*BT, "--momentum-lookback", "0"], needle="--momentum-lookback"),
    Case("backtest-device-cuda", "engine.backtest", [*BT, "--device", "cuda"], needle="--device"),
    Case("backtest-out-dir-is-a-file", "engine.backtest", ["--ckpt", "{fxckpt}", "--out-dir", "{file}/x"],
         needle="a_file"),
]

WF = ["--folds", "2", "--seeds", "1"]
WALKFORWARD = [
    Case("walkforward-folds-zero", "engine.walkforward", [*WF, "--folds", "0", *FX, *OUT], needle="--folds"),
    Case("walkforward-seeds-zero", "engine.walkforward", [*WF, "--seeds", "0", *FX, *OUT], needle="--seeds"),
    Case("walkforward-test-frac-nan", "engine.walkforward", [*WF, "--test-frac", "nan", *FX, *OUT],
         needle="--test-frac"),
    Case("walkforward-eval-every-zero", "engine.walkforward", [*WF, "--eval-every", "0", *FX, *OUT],
         needle="--eval-every"),
    Case("walkforward-cartpole", "engine.walkforward", [*WF, "cartpole", *OUT], needle="cartpole"),
    Case("walkforward-bad-data", "engine.walkforward", [*WF, "--data", "{data:nan}", *H1, *OUT], needle="row"),
    Case("walkforward-spread-nan", "engine.walkforward", [*WF, *FX, *OUT, "--fx.spread-pips", "nan"],
         needle="--fx.spread-pips"),
    Case("walkforward-max-grad-norm-zero", "engine.walkforward", [*WF, *FX, *OUT, "--ppo.max-grad-norm", "0"],
         needle="--ppo.max-grad-norm", timeout=60),
]

BENCH = [
    Case("bench-steps-zero", "engine.bench", ["engine", "--steps", "0", "--out", "{out}/b.json"], needle="--steps",
         timeout=90),
    Case("bench-rounds-zero", "engine.bench", ["engine", "--rounds", "0", "--out", "{out}/b.json"], needle="--rounds",
         timeout=90),
    Case("bench-threads-huge", "engine.bench", ["engine", "--threads", "100000", "--out", "{out}/b.json"],
         needle="--threads", timeout=90),
    Case("bench-threads-negative", "engine.bench", ["engine", "--threads", "-1", "--out", "{out}/b.json"],
         needle="--threads", timeout=90),
    Case("bench-what-unknown", "engine.bench", ["bogus"], needle="bogus", timeout=90),
    Case("bench-out-unwritable", "engine.bench", ["engine", "--out", "{file}/b.json"], needle="--out",
         timeout=90),
]

CONVERT = [
    Case("convert-missing-old", "engine.convert", ["/nonexistent/a.ckpt", "{out}/b.ckpt"], needle="a.ckpt"),
    Case("convert-garbage-old", "engine.convert", ["{case}/garbage.ckpt", "{out}/b.ckpt"], needle="garbage",
         prepare=_garbage),
    Case("convert-flipped-old", "engine.convert", ["{case}/flipped.ckpt", "{out}/b.ckpt"], needle="flipped",
         prepare=_flip_fx),
    Case("convert-new-exists", "engine.convert", ["{fxckpt}", "{run}/checkpoints/last.ckpt"], needle="exists"),
    Case("convert-new-is-old", "engine.convert", ["{fxcopy}", "{fxcopy}", "--overwrite"], needle="NEW"),
    Case("convert-new-unwritable", "engine.convert", ["{fxckpt}", "{file}/b.ckpt"], needle="a_file"),
]


# ---------------------------------------------------------------------------------------------
# engine.export, engine.paper
# ---------------------------------------------------------------------------------------------
EX = ["--ckpt", "{fxckpt}", "--format", "onnx"]
EXPORT = [
    Case("export-check-negative", "engine.export", [*EX, "--out", "{out}/p.onnx", "--check", "-1"], needle="--check",
         fast=True),
    Case("export-check-huge", "engine.export", [*EX, "--out", "{out}/p.onnx", "--check", "1000000000"],
         needle="--check"),
    Case("export-missing-ckpt", "engine.export", ["--ckpt", "/nonexistent/x.ckpt", "--format", "onnx", "--out",
                                                  "{out}/p.onnx"], needle="x.ckpt"),
    Case("export-flipped-ckpt", "engine.export", ["--ckpt", "{case}/flipped.ckpt", "--format", "onnx", "--out",
                                                  "{out}/p.onnx"], needle="flipped", prepare=_flip_fx),
    Case("export-wrong-suffix", "engine.export", [*EX, "--out", "{out}/p.pt2"], needle=".onnx"),
    Case("export-out-unwritable", "engine.export", [*EX, "--out", "{file}/p.onnx"], needle="a_file"),
]

PA = ["--ckpt", "{fxckpt}", "--feed", "{data:good}", "--out-dir", "{out}"]


def _paper_concurrent(ctx: Ctx, case_dir: Path) -> Verdict:
    """A paper trader waiting on its stdin feed holds --out-dir; a second one on it is refused (exit 3)."""
    out = case_dir / "out"
    args = ["--ckpt", str(ctx.fx_checkpoint()), "--feed", "-", "--out-dir", str(out)]
    first = subprocess.Popen([sys.executable, "-m", "engine.paper", *args], cwd=ctx.root, env=ctx.env(),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        if not wait_for(lambda: (out / ".fxai.lock").exists(), 240, first):
            return "unclear", f"the first paper trader did not start: {first.communicate()[1][-300:]}"
        res = ctx.run("engine.paper", args, timeout=120)
        alive = first.poll() is None
        _, err = first.communicate(input="", timeout=120)  # end of its feed: it writes its summary and exits
    finally:
        kill_group(first)
    if not alive:
        return "data-loss", "the first paper trader died while the second one ran"
    if first.returncode != 0 or read_summary(out) is None:
        return "data-loss", f"the first paper trader did not finish cleanly (exit {first.returncode}): {err[-200:]}"
    return judge_error(Case("x", codes=(3,), needle="in use by another run"), res)


PAPER = [
    Case("paper-threads-huge", "engine.paper", [*PA, "--threads", "100000"], needle="--threads", fast=True),
    Case("paper-threads-zero", "engine.paper", [*PA, "--threads", "0"], needle="--threads"),
    Case("paper-progress-every-negative", "engine.paper", [*PA, "--progress-every", "-1"], needle="--progress-every"),
    Case("paper-missing-feed", "engine.paper", ["--ckpt", "{fxckpt}", "--feed", "/nonexistent/f.csv", "--out-dir",
                                                "{out}"], needle="f.csv"),
    Case("paper-flipped-ckpt", "engine.paper", ["--ckpt", "{case}/flipped.ckpt", "--feed", "{data:good}",
                                                "--out-dir", "{out}"], needle="flipped", prepare=_flip_fx),
    Case("paper-out-dir-is-a-file", "engine.paper", ["--ckpt", "{fxckpt}", "--feed", "{data:good}", "--out-dir",
                                                     "{file}"], needle="a_file"),
    Case("paper-timezone-bogus", "engine.paper", [*PA, "--timezone", "Mars/Olympus"], needle="--timezone"),
    Case("paper-concurrent-out-dir", custom=_paper_concurrent, fast=True),
]


CASES: list[Case] = [*TRAIN_FLAGS, *FX_FLAGS, *DATA, *CHECKPOINTS, *SIGNALS, *NEIGHBOURS, *TUNE_CASES, *BACKTEST,
                     *WALKFORWARD, *BENCH, *CONVERT, *EXPORT, *PAPER]

__all__ = ["CASES", "changed", "snapshot"]
