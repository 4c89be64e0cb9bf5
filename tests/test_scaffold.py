"""`make notebook NAME=<section>` scaffolds a stage that make runs, records and
reruns, in a scratch copy of the project, without editing any test or the Makefile."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_project, make


def ran(out: str) -> list[str]:
    return re.findall(r"\] (\S+) done in", out)


@pytest.mark.notebook
@pytest.mark.slow
def test_make_notebook_scaffolds_a_working_stage(built: Path):
    root = built
    before = sorted(p.stem for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    before_files = {f: (root / f).read_bytes() for f in ("params.yaml", "src/analysis/schema.py")}
    r = make(root, "notebook", "NAME=fixture_stage")
    assert r.returncode == 0, r.stdout + r.stderr
    stem = f"{int(before[-1][:2]) + 1:02d}_fixture_stage"  # the next free number
    assert (root / "notebooks" / f"{stem}.ipynb").is_file()
    assert "\nfixture_stage:" in (root / "params.yaml").read_text()
    assert '@section("fixture_stage")' in (root / "src/analysis/schema.py").read_text()

    r = make(root, "report")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ran(r.stdout) == [stem], r.stdout  # the other stages are up to date
    res = json.loads((root / "reports/results.json").read_text())
    with open(root / "data/raw/ngo_counts.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rec = res["fixture_stage_rows"]
    assert rec["value"] == len(rows) and rec["notebook"] == stem
    assert rec["sources"] == ["data/raw/ngo_counts.csv"]
    assert rec["source_ids"] == sorted({r["source_id"] for r in rows})
    assert (root / "reports/figures/fig_fixture_stage_rows.svg").is_file()
    deps = (root / ".build/deps" / f"{stem}.mk").read_text()
    assert "data/processed/ngo_counts.csv" in deps  # what it read, recorded by the runner

    # its params section changes: only it reruns
    p = root / "params.yaml"
    p.write_text(p.read_text().replace("  by: year", "  by: status"))
    r = make(root, "report")
    assert r.returncode == 0, r.stderr
    assert ran(r.stdout) == [stem], r.stdout

    # the same name again: one line, nothing written
    snapshot = {f: (root / f).read_bytes() for f in ("params.yaml", "src/analysis/schema.py")}
    r = make(root, "notebook", "NAME=fixture_stage")
    assert r.returncode != 0 and "exists already" in r.stderr and "Traceback" not in r.stderr
    assert all((root / f).read_bytes() == b for f, b in snapshot.items())
    r = make(root, "notebook", "NAME=Bad-Name")
    assert r.returncode != 0 and "NAME='Bad-Name'" in r.stderr

    # the stage removed again: the next build drops what it made, paper and reports too
    for f, b in before_files.items():
        (root / f).write_bytes(b)
    (root / "notebooks" / f"{stem}.ipynb").unlink()
    r = make(root, "report")
    assert r.returncode == 0, r.stdout + r.stderr
    left = [p for p in (root / "reports").rglob("*") if stem in p.name or "fixture_stage" in p.name]
    assert left == [], left
    assert stem not in (root / "reports/paper.html").read_text()
    assert "fixture_stage" not in (root / "reports/paper.html").read_text()
    assert "fixture_stage_rows" not in json.loads((root / "reports/results.json").read_text())


@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM"])
def test_make_notebook_interrupted_writes_nothing(tmp_path: Path, how: str):
    """A Ctrl-C or a SIGTERM between its writes (notebook, schema, params.yaml) puts
    back what it had written: with a schema section but no params entry every build
    stopped, and the name was refused as existing. The interruption comes at its third
    write, after the notebook and the schema."""
    interrupt = {
        "Ctrl-C": "raise KeyboardInterrupt",
        "SIGTERM": "os.kill(os.getpid(), signal.SIGTERM)",
    }[how]
    root = copy_project(tmp_path / "project")
    files = ("params.yaml", "src/analysis/schema.py")
    before = {f: ((root / f).read_bytes(), (root / f).stat().st_mtime_ns) for f in files}
    notebooks = sorted((root / "notebooks").iterdir())
    code = (
        "import os, signal, sys\nfrom pipeline import scaffold\n"
        "real, calls = scaffold.write_atomic, []\n"
        f"def write(*a):\n    calls.append(a)\n    if len(calls) == 3: {interrupt}\n    real(*a)\n"
        "scaffold.write_atomic = write\nsys.exit(scaffold.main(['media']))\n"
    )
    env = {**os.environ, "KZ_COMPENDIUM_ROOT": str(root), "PYTHONPATH": str(root / "src")}
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
    )
    code = 128 + (signal.SIGINT if how == "Ctrl-C" else signal.SIGTERM)
    assert r.returncode == code and r.stderr.endswith("interrupted: nothing published\n"), r
    # (and their dates: a new one made the next build run the snapshot and the paper)
    assert {f: ((root / f).read_bytes(), (root / f).stat().st_mtime_ns) for f in files} == before
    assert sorted((root / "notebooks").iterdir()) == notebooks
    r = make(root, "notebook", "NAME=media")  # the name is free
    assert r.returncode == 0, r.stdout + r.stderr
