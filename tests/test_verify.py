"""Reviewers: `make verify` passes on a clean build, names the results that depend
on a changed raw value (and only those), reports environment differences, and two
clean builds are byte-identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BUILT_ONCE_ENV, edit, run_module
from pipeline import verify

ROOT = Path(__file__).resolve().parents[1]


def run_verify(root: Path, path: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m pipeline.verify` in `root`; `path`: a reviewer's own PYTHONPATH entry
    before the project's."""
    given = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {"PYTHONPATH": os.pathsep.join([str(path), *given])} if path else None
    return run_module("pipeline.verify", root=root, env=env)


def test_nothing_delivered_is_named(tmp_path: Path):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("paper.html", "results.json", "provenance.json"):
        (fresh / name).write_text("made by the re-execution (fixture)")
    rows = verify.compare_delivered(tmp_path / "nothing", fresh)
    assert {(r.item, r.verdict) for r in rows} == {
        ("reports/paper.html", "MISSING"),
        ("reports/results.json", "MISSING"),
        ("reports/provenance.json", "MISSING"),
    }
    assert all("run `make report`" in r.note for r in rows)


@pytest.mark.notebook
@pytest.mark.slow
def test_verify_passes_then_names_every_difference(built: Path):
    """Two re-executions: a PASS on the copy's own build, then a FAIL naming a
    hand-edited delivered paper and results, and exactly the results that depend
    on a changed raw value.

    Also the speed-ups' check: the copy is of the run's shared build, made without
    the warm server (every step and kernel started the normal way: conftest.py), the
    re-execution with one (its own, ready before the first step: every step and
    kernel forked), and the PASS compares every delivered file byte for byte: the
    paper, results, figures, executed notebooks and their pages, and provenance.json,
    which holds the sha256 of every processed table."""
    assert BUILT_ONCE_ENV == {"KZ_FORK_KERNELS": "0"}
    assert not (built / ".build/kernels.log").exists()  # nothing forked
    # the record of this copy's own build (fixture parameters), as `make record` writes it
    # (from the delivered reports: `make record` would build the same a second time)
    code = "from analysis import paths; from pipeline import verify; verify.record(paths.REPORTS)"
    env = {**os.environ, "KZ_COMPENDIUM_ROOT": str(built)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    (built / "reports/verification.html").unlink(missing_ok=True)
    before = {p: p.read_bytes() for p in (built / "reports").rglob("*") if p.is_file()}
    # with a PYTHONPATH entry of the reviewer's own (an empty folder), which the
    # re-execution's steps do not get (the Makefile sets theirs)
    (own := built.parent / "reviewers-path").mkdir(exist_ok=True)
    r = run_verify(built, path=own)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "[verify] PASS" in r.stdout
    # the re-execution waited for its own warm server (never the build's): every
    # step and kernel forked by it, and it is stopped at the end
    assert "[verify] re-execution by a warm server of its own: ready in" in r.stdout
    n = len(list((built / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    assert f"[verify] {n} of {n} notebook kernels forked; its warm server stopped" in r.stdout
    delivered = verify.compare_delivered(built / "reports", built / "reports")
    assert {"reports/provenance.json", "reports/paper.html"} <= {x.item for x in delivered}
    assert len(delivered) > 30 and "Delivered reports: " in r.stdout
    assert f"Delivered reports: {len(delivered)}/{len(delivered)} ok" in r.stdout
    page = (built / "reports" / "verification.html").read_text()
    assert "Verification: PASS" in page and "ngo_registered_ref" in page
    after = {p: p.read_bytes() for p in (built / "reports").rglob("*") if p.is_file()}
    assert set(after) - set(before) == {built / "reports/verification.html"}
    assert all(after[p] == b for p, b in before.items())

    # a hand-edited delivered paper and results, and a changed raw value
    paper, res = built / "reports/paper.html", built / "reports/results.json"
    good_paper, good_res = paper.read_bytes(), res.read_bytes()
    paper.write_bytes(good_paper.replace(b"Kazakhstan", b"Kazakstan", 1))
    at = good_res.index(b'"ngo_registered_ref"')  # (other results may hold the same value)
    res.write_bytes(good_res[:at] + good_res[at:].replace(b'"value": 23335', b'"value": 23336', 1))
    edit(built / "data" / "raw", "population.csv", "2023,20330104", "2023,20000000")
    try:
        r = run_verify(built)
    finally:
        paper.write_bytes(good_paper)
        res.write_bytes(good_res)
    assert r.returncode == 1 and "[verify] FAIL" in r.stdout
    lines = r.stdout.splitlines()
    delivered = [x for x in lines if x.startswith("  mismatch (delivered")]
    assert any("reports/paper.html" in m and "Kazakstan" in m for m in delivered), delivered
    assert any("reports/results.json" in m and "ngo_registered_ref" in m for m in delivered)
    computed = [x for x in lines if x.startswith("  mismatch") and x not in delivered]
    keys = {line.split(": ")[1] for line in computed}
    assert {"ngo_registered_per_capita_ref", "ngo_active_per_capita_ref"} <= keys
    # only plausible ones: every mismatch was computed from population.csv
    assert all("computed from changed data/raw/population.csv" in m for m in computed), computed
    assert "UNEXPECTED" not in r.stdout
    assert "data/raw/population.csv" in r.stdout and "CHANGED" in r.stdout


def test_environment_difference_is_reported(tmp_path: Path):
    lock = (ROOT / "requirements.lock").read_text()
    old = next(line for line in lock.splitlines() if line.startswith("pandas=="))
    bad = tmp_path / "requirements.lock"
    bad.write_text(lock.replace(old, "pandas==1.0.0 \\"))
    rows = verify.check_environment(bad)
    assert [(r.item, r.expected, r.verdict) for r in rows] == [
        ("package pandas", "1.0.0", "MISMATCH")
    ]
    assert verify.check_environment()[0].verdict == "ok"


def test_tolerances():
    e = {"value": 1.0, "kind": "estimate", "sources": ["data/raw/x.csv"]}
    rows = verify.compare_results(
        {"a": e, "b": {**e, "kind": "count", "value": 5}},
        {"a": {**e, "value": 1.0 + 1e-9}, "b": {**e, "kind": "count", "value": 6}},
        set(),
    )
    assert [r.verdict for r in rows] == ["ok", "MISMATCH"]
    assert "UNEXPECTED" in rows[1].note
    # the same value from other sources is another result
    e["source_ids"] = ["s1"]
    rows = verify.compare_results({"a": e}, {"a": {**e, "source_ids": ["s1", "s2"]}}, set())
    assert rows[0].verdict == "MISMATCH" and "source_ids: expected ['s1']" in rows[0].note


def test_pixel_comparison(tmp_path: Path):
    import numpy as np
    from PIL import Image

    a = np.full((100, 100, 3), 255, np.uint8)
    b = a.copy()
    b[0, 0] = 0  # one pixel of 10,000 differs: 0.01%
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    assert verify.pixel_share(tmp_path / "a.png", tmp_path / "b.png") == pytest.approx(1e-4)


def test_record_is_committed_and_complete():
    rec = json.loads((ROOT / "reports" / "expected-results.json").read_text())
    assert rec["results"] and rec["figures"]
    references = {p.stem for p in (ROOT / "reports" / "expected-figures").glob("*.png")}
    assert set(rec["figures"]) == references  # one reference image per recorded figure
