"""Benchmark of the build (`make bench`): medians of repeated runs, same machine, one run.

Measured in a scratch copy of the project (sharing this checkout's .venv), so the
working tree is never touched:

- clean build with the project's pipeline (`make clean && make report`, outputs
  removed, environment present), and beside it the plain baseline: `jupyter
  nbconvert --execute --to notebook` on each notebook in order, then `jupyter
  nbconvert --to html` of each executed notebook; the ratio of the two;
- a no-op `make report` (nothing changed);
- the rebuild after changing one raw file (a note in ngo_state_funding.csv, with
  its checksum recorded) and after changing one params section (survey): which
  notebooks ran and how long it took;
- the floor: one bare kernel start plus the analysis imports, times the number
  of notebooks.

    python bench/bench.py [--reps 3] [--out bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.scratch import copy_project

ROOT = Path(__file__).resolve().parents[1]
PY = ROOT / ".venv" / "bin" / "python"
JUPYTER = ROOT / ".venv" / "bin" / "jupyter"


def run(cmd: list[str], root: Path, check: bool = True) -> tuple[float, str]:
    env = {**os.environ, "KZ_COMPENDIUM_ROOT": str(root)}
    env.pop("MAKEFLAGS", None)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if check and r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return secs, r.stdout + r.stderr


def ran(out: str) -> list[str]:
    return re.findall(r"\] (\S+) done in", out)


def clean_outputs(root: Path) -> None:
    run(["make", "clean"], root)


def pipeline_clean(root: Path) -> float:
    clean_outputs(root)
    secs, out = run(["make", "report"], root)
    assert len(ran(out)) == len(notebooks(root)), out
    return secs


def notebooks(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def baseline(root: Path) -> float:
    clean_outputs(root)
    # the params stamps and .venv exist; everything else is plain nbconvert
    out = Path(tempfile.mkdtemp(prefix="kz-baseline-"))
    t0 = time.perf_counter()
    for nb in notebooks(root):
        run(
            [
                str(JUPYTER),
                "nbconvert",
                "--execute",
                "--to",
                "notebook",
                "--output-dir",
                str(out),
                str(nb),
            ],
            root,
        )
    for nb in sorted(out.glob("*.ipynb")):
        run([str(JUPYTER), "nbconvert", "--to", "html", "--output-dir", str(out), str(nb)], root)
    secs = time.perf_counter() - t0
    shutil.rmtree(out)
    return secs


FLOOR_CODE = """
import time
from jupyter_client.manager import start_new_kernel
t0 = time.perf_counter()
km, kc = start_new_kernel(kernel_name="kz-civil-society")
kc.execute_interactive("import pandas, numpy, seaborn, matplotlib.pyplot, statsmodels.api; "
                       "import analysis.data, analysis.plots, analysis.processed", timeout=120)
km.shutdown_kernel(now=True)
print("FLOOR", time.perf_counter() - t0)
"""


def floor_one(root: Path) -> float:
    _, out = run([str(PY), "-c", FLOOR_CODE], root)
    return float(re.search(r"^FLOOR ([0-9.]+)$", out, re.M).group(1))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/bench.py")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    a = ap.parse_args(argv)
    med = statistics.median
    with tempfile.TemporaryDirectory(prefix="kz-bench-") as tmp:
        root = copy_project(Path(tmp) / "project")
        n_nb = len(notebooks(root))
        print(f"[bench] {n_nb} notebooks, {os.cpu_count()} cores, {a.reps} repetitions", flush=True)
        clean = [pipeline_clean(root) for _ in range(a.reps)]
        print(f"[bench] clean build (pipeline): {med(clean):.1f}s", flush=True)
        base = [baseline(root) for _ in range(a.reps)]
        print(f"[bench] clean build (plain nbconvert): {med(base):.1f}s", flush=True)
        run(["make", "report"], root)
        noop = []
        for _ in range(max(5, a.reps)):
            secs, out = run(["make", "report"], root)
            assert ran(out) == [], out
            noop.append(secs)
        print(f"[bench] no-op make report: {med(noop):.2f}s", flush=True)

        raw = root / "data" / "raw" / "ngo_state_funding.csv"
        raw_runs, raw_ran = [], []
        for i in range(a.reps):
            original = raw.read_text()
            edit(raw, "(subset, do not add)", f"(subset, do not add; bench edit {i})")
            run([str(PY), "-m", "pipeline.checksums", "--update"], root)
            secs, out = run(["make", "report"], root)
            raw_runs.append(secs)
            raw_ran = ran(out)
            raw.write_text(original)
            run([str(PY), "-m", "pipeline.checksums", "--update"], root)
            run(["make", "report"], root)
        print(f"[bench] one raw file changed: {med(raw_runs):.1f}s, ran {raw_ran}", flush=True)

        params = root / "params.yaml"
        par_runs, par_ran = [], []
        for _ in range(a.reps):
            original = params.read_text()
            edit(params, "granularity_n_max: 1000", "granularity_n_max: 999")
            secs, out = run(["make", "report"], root)
            par_runs.append(secs)
            par_ran = ran(out)
            params.write_text(original)
            run(["make", "report"], root)
        print(
            f"[bench] one params section changed: {med(par_runs):.1f}s, ran {par_ran}", flush=True
        )

        floors = [floor_one(root) for _ in range(a.reps)]
        print(f"[bench] floor: kernel start + imports {med(floors):.2f}s x {n_nb}", flush=True)

    results = {
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "repetitions": a.reps,
        "notebooks": n_nb,
        "clean_build_pipeline_s": round(med(clean), 2),
        "clean_build_baseline_s": round(med(base), 2),
        "clean_build_ratio": round(med(clean) / med(base), 3),
        "noop_build_s": round(med(noop), 3),
        "raw_change_rebuild_s": round(med(raw_runs), 2),
        "raw_change_ran": raw_ran,
        "params_change_rebuild_s": round(med(par_runs), 2),
        "params_change_ran": par_ran,
        "floor_kernel_plus_imports_s": round(med(floors), 2),
        "floor_total_s": round(med(floors) * n_nb, 2),
        "runs": {
            "clean_pipeline": [round(x, 2) for x in clean],
            "clean_baseline": [round(x, 2) for x in base],
            "noop": [round(x, 3) for x in noop],
        },
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=1))
    print(f"[bench] written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
