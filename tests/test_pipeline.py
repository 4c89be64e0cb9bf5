"""The Makefile DAG and the interim report, in a scratch copy of the project
(sharing this checkout's .venv): a build, a no-op rebuild, and reruns only
where a stage's inputs really changed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def make(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KZ_COMPENDIUM_ROOT": str(root)}
    env.pop("MAKEFLAGS", None)
    return subprocess.run(["make", "--no-print-directory", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scratch") / "project"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, root / f)  # keep mtimes: the env stamp stays valid
    (root / ".venv").symlink_to(ROOT / ".venv")
    return root


def ran(out: str) -> list[str]:
    return re.findall(r"\[run\] (\S+) done", out)


def test_help_lists_every_target():
    r = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True)
    for target in ("help", "env", "data", "analyses", "report", "test", "lab", "clean"):
        assert re.search(rf"make {target}\s+\S", r.stdout), target


@pytest.mark.notebook
def test_build_noop_and_incremental(scratch: Path):
    r = make(scratch, "report")
    assert r.returncode == 0, r.stdout + r.stderr
    paper = scratch / "reports" / "paper.html"
    html = paper.read_text()
    assert "01 · Data" in html
    # self-contained: nothing is loaded from elsewhere
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=\"?(https?:)?//", html)
    assert "<script" not in html

    r = make(scratch, "report")
    assert r.returncode == 0 and ran(r.stdout) == [] and "Nothing to be done" in r.stdout

    # a comment in params.yaml changes no section: nothing reruns
    p = scratch / "params.yaml"
    p.write_text(p.read_text() + "\n# a comment\n")
    r = make(scratch, "report")
    assert ran(r.stdout) == [], r.stdout

    # the data section changes: the data stage reruns
    p.write_text(p.read_text().replace("per_capita_denominator: 10000",
                                       "per_capita_denominator: 1000"))
    r = make(scratch, "report")
    assert ran(r.stdout) == ["01_data.ipynb"], r.stdout
    assert "per_1000" in (scratch / "data/processed/ngo_counts.csv").read_text()


@pytest.mark.notebook
def test_bad_raw_data_keeps_the_previous_report(scratch: Path):
    assert make(scratch, "report").returncode == 0
    paper = scratch / "reports" / "paper.html"
    before = paper.read_bytes()
    raw = scratch / "data" / "raw" / "population.csv"
    raw.write_text(raw.read_text().replace("2023,20330104", "2023,20330105"))
    r = make(scratch, "report")
    assert r.returncode != 0
    assert "population.csv: breaks rule 'sha256 matches datapackage.json" in r.stderr
    assert paper.read_bytes() == before
    assert (scratch / "reports/notebooks/01_data.ipynb").exists()


def test_report_with_another_params_file(scratch: Path):
    other = scratch / "other.yaml"
    other.write_text((scratch / "params.yaml").read_text().replace("dpi: 150", "dpi: x"))
    r = make(scratch, "report", "PARAMS=other.yaml")
    assert r.returncode != 0 and "other.yaml: key 'shared.figure.dpi'" in r.stderr
