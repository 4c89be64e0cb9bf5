"""Build-wide progress: position in the build, why a notebook runs, time left.

The first notebook that runs in a build asks for a plan (`ensure_plan`; a no-op
build runs no python for it): the notebooks that `make -n` would execute, in
order. The runner then prints one line when a notebook starts and one when it ends:

    [2/4] 03_parliament started: params section 'parliament' changed (~5s; ~11s left)
    [2/4] 03_parliament done in 4.9s

Why it ran comes from comparing the sha256 of the notebook's inputs (the
prerequisites make passes it) with those of its last successful run, stored in
.build/runs/<notebook>.json; durations of previous runs give the estimates.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from analysis import paths
from analysis.io import write_atomic
from pipeline.fingerprint import hashes

BUILD = paths.BUILD
PLAN = BUILD / "plan.json"
RUNS = BUILD / "runs"


def say(line: str) -> None:
    """One progress line in one write (parallel notebooks' lines never interleave,
    also when PYTHONUNBUFFERED makes print write the line and its newline apart)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def plan(make_args: list[str]) -> list[str]:
    """Notebooks this build will run, in order; written to .build/plan.json.

    `make -n` lists every notebook that could run, but it assumes that a stage
    rewrites all its outputs, while the data stage rewrites only tables whose
    content changes. So: a notebook is planned when its executed copy is missing
    or one of its inputs is already newer; a notebook reading data/processed is
    planned too when the data stage is. The count is therefore an upper bound
    only when the data stage runs without changing a table.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["KZ_NO_STAMPS"] = "1"  # the outer make already wrote them
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", *make_args],
        cwd=paths.ROOT,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    certain, readers, order = set(), set(), []
    for m in re.finditer(
        r"pipeline\.run notebooks/(\S+)\.ipynb .*?--out (\S+) --inputs ([^\n]*)", out
    ):
        name, target, inputs = m.group(1), paths.ROOT / m.group(2), m.group(3).split()
        order.append(name)
        if not target.exists() or any(
            (paths.ROOT / f).exists()
            and (paths.ROOT / f).stat().st_mtime_ns > target.stat().st_mtime_ns
            for f in inputs
        ):
            certain.add(name)
        if any(f.startswith("data/processed/") for f in inputs):
            readers.add(name)
    if any(n.startswith("01_") for n in certain):
        certain |= readers
    nbs = [n for n in dict.fromkeys(order) if n in certain]
    BUILD.mkdir(exist_ok=True)
    write_atomic(PLAN, json.dumps({"notebooks": nbs, "jobs": _jobs()}).encode())
    if nbs:
        left = sum(_last(n).get("seconds", 0) for n in nbs) / max(1, min(_jobs(), len(nbs)))
        est = f", about {left:.0f}s from previous runs" if left else ""
        say(f"[build] {len(nbs)} notebook(s) to run: {', '.join(nbs)}{est}")
    return nbs


def ensure_plan(make_args: list[str]) -> None:
    """Make the plan of this build unless another of its notebooks already did."""
    import fcntl

    from pipeline import lock

    holder = lock.holder()
    if holder is None:
        return  # not a build (a run by hand)
    BUILD.mkdir(exist_ok=True)
    with open(BUILD / "plan.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # two notebooks starting together: one plan
        if PLAN.exists() and PLAN.stat().st_mtime >= float(holder.get("time", 0)):
            return
        plan(make_args)


def _jobs() -> int:
    m = re.search(r"(?:^|\s)-j\s*(\d+)|--jobs=(\d+)", os.environ.get("MAKEFLAGS", ""))
    return int(next(g for g in m.groups() if g)) if m else 1


def _last(name: str) -> dict:
    p = RUNS / f"{name}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def reason(name: str, now: dict[str, str]) -> str:
    before = _last(name).get("inputs")
    if before is None:
        return "first run (no record of a previous run)"
    # what it reads now and differs (an input it no longer reads is no reason to run)
    changed = sorted(k for k in now if now[k] != before.get(k))
    if not changed:
        return "forced (inputs unchanged since the last run)"
    words = []
    for c in changed:
        if c.startswith(".build/params/"):
            words.append(f"params section '{Path(c).stem}' changed")
        elif c.startswith(("notebooks/", ".build/notebooks/")):
            words.append("notebook changed")
        elif c == ".build/env.json":
            words.append("installed packages changed")
        elif c.startswith("src/"):
            words.append(f"{Path(c).name} changed")
        else:
            words.append(f"{c} changed")
    return ", ".join(dict.fromkeys(words))


class Progress:
    """Start/end lines for one notebook run."""

    def __init__(self, notebook: Path, inputs: list[str]):
        self.name = Path(notebook).stem
        self.inputs = hashes(inputs) if inputs else {}
        self.plan: list[str] = []
        self.jobs = 1
        self.pos = "[run]"
        self.t0 = time.perf_counter()

    def start(self) -> None:
        """The start line, with the notebook's place in the build's plan (read now:
        the runner makes the plan while the kernel starts)."""
        try:  # (a run by hand, without make's inputs, is in no build's plan)
            p = json.loads(PLAN.read_text()) if self.inputs else {"notebooks": []}
            self.plan, self.jobs = p["notebooks"], max(1, p.get("jobs", 1))
        except (OSError, json.JSONDecodeError, KeyError):
            self.plan, self.jobs = [], 1
        if self.name in self.plan:
            self.pos = f"[{self.plan.index(self.name) + 1}/{len(self.plan)}]"
        why = reason(self.name, self.inputs) if self.inputs else "run by hand"
        expect = _last(self.name).get("seconds")
        est = ""
        if expect and self.name in self.plan:
            i = self.plan.index(self.name) if self.name in self.plan else 0
            todo = self.plan[i:]
            rest = sum(_last(n).get("seconds", 0) for n in todo) / min(self.jobs, len(todo))
            est = f" (~{expect:.0f}s; ~{rest:.0f}s left in the build)"
        say(f"{self.pos} {self.name} started: {why}{est}")

    def done(self) -> float:
        secs = time.perf_counter() - self.t0
        say(f"{self.pos} {self.name} done in {secs:.1f}s")
        if self.inputs:
            RUNS.mkdir(parents=True, exist_ok=True)
            write_atomic(
                RUNS / f"{self.name}.json",
                json.dumps(
                    {"seconds": round(secs, 2), "inputs": self.inputs}, indent=1, sort_keys=True
                ).encode(),
            )
        return secs

    def failed(self) -> None:
        secs = time.perf_counter() - self.t0
        print(f"{self.pos} {self.name} FAILED after {secs:.1f}s", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["plan"]:
        plan(args[1:])
        return 0
    print("usage: python -m pipeline.progress plan [make arguments]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
