"""Running a case and sorting what happened into the battery's outcomes (see the package docstring)."""

from __future__ import annotations

import re
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.adversarial.fixtures import Ctx, Result, changed, read_summary, snapshot

OUTCOMES = ("handled", "unclear", "traceback", "hang", "silent-wrong", "data-loss")

Verdict = tuple[str, str]
"""(outcome, one line of detail)."""


@dataclass
class Case:
    """One hostile input. A plain case runs ``python -m <module> <args>`` once: placeholders ``{out}`` (a
    fresh, not yet existing out dir), ``{run}`` (a copy of the trained CartPole run, which must come out
    unchanged), ``{fxckpt}`` (an FX checkpoint), ``{data:KIND}`` (a bar file with a planted fault) and
    ``{old}`` (an earlier checkpoint of the run), ``{fxcopy}`` (a copy of the FX
    checkpoint in the case's directory) are filled in. ``expect="error"``: it must exit with one of
    ``codes``, one ``error:`` line containing ``needle``, nothing saved changed; ``expect="ok"``: exit 0.
    ``prepare(ctx, case_dir, values)`` may change the files first; ``verify(ctx, case_dir, values, result)``
    may judge the result itself. A ``custom(ctx, case_dir)`` case does everything itself."""

    name: str
    module: str = "engine.ppo"
    args: list[str] = field(default_factory=list)
    expect: str = "error"
    codes: tuple[int, ...] = (2,)
    needle: str | None = None
    timeout: float = 120.0
    prepare: Callable[[Ctx, Path, dict[str, str]], None] | None = None
    verify: Callable[[Ctx, Path, dict[str, str], Result], Verdict | None] | None = None
    custom: Callable[[Ctx, Path], Verdict] | None = None
    fast: bool = False
    """Part of the representative subset the default test suite runs."""


_PLACEHOLDER = re.compile(r"\{(out|case|file|run|fxckpt|fxcopy|old|data:[a-z]+)\}")


def _fill(ctx: Ctx, case_dir: Path, args: list[str]) -> tuple[list[str], dict[str, str]]:
    values: dict[str, str] = {}

    def value(key: str) -> str:
        if key not in values:
            if key == "out":
                values[key] = str(case_dir / "out")
            elif key == "case":
                values[key] = str(case_dir)
            elif key == "file":
                (case_dir / "a_file").write_text("not a directory")
                values[key] = str(case_dir / "a_file")
            elif key == "run":
                values[key] = str(ctx.copy_run(case_dir / "run"))
            elif key == "fxckpt":
                values[key] = str(ctx.fx_checkpoint())
            elif key == "fxcopy":
                values[key] = str(shutil.copy2(ctx.fx_checkpoint(), case_dir / "fx-copy.ckpt"))
            elif key == "old":
                values[key] = str(ctx.cartpole_run().parent / "old-64.ckpt")
            else:
                values[key] = str(ctx.bars_file(key.split(":", 1)[1]))
        return values[key]

    filled = [_PLACEHOLDER.sub(lambda m: value(m.group(1)), a) for a in args]
    return filled, values


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def judge_error(case: Case, res: Result) -> Verdict:
    """An expected-error case: the documented code, one error line naming what is wrong, no traceback."""
    if res.timed_out:
        return "hang", f"no exit after {case.timeout:.0f}s"
    if "Traceback (most recent call last)" in res.stderr:
        last = [line for line in res.stderr.strip().splitlines() if line.strip()][-1:]
        return "traceback", (last[0] if last else "")[:200]
    if res.rc == 0:
        return "silent-wrong", "exit 0: the bad input was accepted"
    lines = error_lines(res.stderr)
    tail = (lines[-1] if lines else res.stderr.strip().splitlines()[-1:] or [""])
    tail = tail if isinstance(tail, str) else tail[0]
    if res.rc not in case.codes:
        return "unclear", f"exit {res.rc} (want {case.codes}): {tail[:160]}"
    if case.needle is not None and case.needle.lower() not in res.stderr.lower():
        return "unclear", f"message does not name {case.needle!r}: {tail[:160]}"
    return "handled", f"exit {res.rc}: {tail[:160]}"


def run_case(ctx: Ctx, case: Case, case_dir: Path) -> Verdict:
    """Run one case in ``case_dir`` and judge it (a failure of the battery itself is reported, not raised)."""
    case_dir.mkdir(parents=True, exist_ok=True)
    try:
        if case.custom is not None:
            return case.custom(ctx, case_dir)
        args, values = _fill(ctx, case_dir, case.args)
        if case.prepare is not None:
            case.prepare(ctx, case_dir, values)
        protected = Path(values["run"]) if "run" in values else None
        before = snapshot(protected) if protected is not None else {}
        res = ctx.run(case.module, args, timeout=case.timeout)
        if case.verify is not None:
            verdict = case.verify(ctx, case_dir, values, res)
            if verdict is not None:
                return verdict
        if case.expect == "ok":
            if res.timed_out:
                return "hang", f"no exit after {case.timeout:.0f}s"
            if "Traceback (most recent call last)" in res.stderr:
                return "traceback", res.stderr.strip().splitlines()[-1][:200]
            if res.rc != 0:
                return "unclear", f"exit {res.rc}: {res.stderr.strip().splitlines()[-1:]}"
            return "handled", "exit 0"
        verdict = judge_error(case, res)
        if protected is not None:
            lost = changed(before, snapshot(protected))
            if lost:
                return "data-loss", f"changed or removed: {', '.join(lost[:4])}"
        if "out" in values and verdict[0] != "silent-wrong" and read_summary(Path(values["out"])) is not None:
            return "silent-wrong", "it trained (summary.json written) before failing"
        return verdict
    except Exception as exc:  # noqa: BLE001  (the battery reports its own failures per case)
        return "battery-error", f"{type(exc).__name__}: {exc} | {traceback.format_exc().splitlines()[-3:]}"
