"""``python -m tests.adversarial``: run the battery and print the counts by outcome (see the package docstring)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.adversarial.cases import CASES
from tests.adversarial.fixtures import Ctx
from tests.adversarial.runner import OUTCOMES, run_case

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.adversarial", description=__doc__)
    parser.add_argument("-k", default="", help="run only the cases whose name contains this (several: a,b,c)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="cases run at once (default 2)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to run the commands of")
    parser.add_argument("--json", type=Path, default=None, help="write every verdict to this file")
    parser.add_argument("--fast", action="store_true", help="only the representative subset the test suite runs")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)

    patterns = [k for k in args.k.split(",")] or [""]
    cases = [c for c in CASES if any(k in c.name for k in patterns) and (c.fast or not args.fast)]
    scratch = Path(tempfile.mkdtemp(prefix="fxai-adversarial-"))
    ctx = Ctx(root=args.root.resolve(), scratch=scratch)
    # the shared fixtures first, so that parallel cases do not build them twice
    if any(("{run}" in " ".join(c.args)) or ("{old}" in " ".join(c.args)) or c.prepare is not None for c in cases):
        ctx.cartpole_run()
    if any("fx" in " ".join(c.args) and "ckpt" in " ".join(c.args) or "{fxcopy}" in " ".join(c.args) for c in cases):
        ctx.fx_checkpoint()
    print(f"{len(cases)} cases against {ctx.root} (scratch {scratch})", flush=True)
    t0 = time.monotonic()
    verdicts: dict[str, tuple[str, str]] = {}
    lock = threading.Lock()

    def one(case):  # noqa: ANN001, ANN202
        t = time.monotonic()
        verdict = run_case(ctx, case, scratch / "cases" / case.name)
        line = f"{verdict[0]:>13}  {case.name:<45} {time.monotonic() - t:5.1f}s  {verdict[1]}\n"
        with lock:
            sys.stdout.write(line)
            sys.stdout.flush()
        return case.name, verdict

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, verdict in pool.map(one, cases):
            verdicts[name] = verdict
    counts = Counter(v[0] for v in verdicts.values())
    print(f"\n{len(cases)} cases in {time.monotonic() - t0:.0f}s")
    for outcome in (*OUTCOMES, *sorted(set(counts) - set(OUTCOMES))):
        print(f"  {outcome:<13} {counts.get(outcome, 0)}")
    if args.json is not None:
        args.json.write_text(json.dumps({"root": str(ctx.root), "counts": counts, "verdicts": verdicts}, indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if all(v[0] == "handled" for v in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
