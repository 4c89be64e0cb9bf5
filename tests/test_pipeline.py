"""The Makefile DAG, the analyses and the interim report, in a scratch copy of
the project (sharing this checkout's .venv): one full build, then a no-op
rebuild, reruns only where inputs really changed, and the recorded results."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from conftest import copy_project, make, warm_server
from pipeline import fingerprint

ROOT = Path(__file__).resolve().parents[1]


def ran(out: str) -> list[str]:
    return [f"{n}.ipynb" for n in re.findall(r"\] (\S+) done in", out)]


def test_help_lists_every_target():
    r = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True)
    for target in ("help", "env", "data", "analyses", "report", "test", "lab", "clean"):
        assert re.search(rf"make {target}\s+\S", r.stdout), target


@pytest.mark.notebook
def test_report_is_self_contained(built: Path):
    html = (built / "reports" / "paper.html").read_text()
    for section in (
        "abstract",
        "introduction",
        "data-methods",
        "ngo",
        "women",
        "attitudes",
        "claims",
        "limitations",
        "reproducibility",
        "references",
    ):
        assert (
            f'<section id="{section}"' in html
            or f'<section class="abstract" id="{section}"' in html
        )
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=\"?(https?:)?//", html)
    assert "<script" not in html


@pytest.mark.notebook
def test_executed_notebooks_print_no_warnings(built: Path):
    """A warning in a delivered notebook (a library's deprecation, a regex with groups)
    is a defect the reader sees, and it names this checkout's path, which differs in
    make verify's re-execution: no executed notebook writes to stderr."""
    pages = sorted((built / "reports" / "notebooks").glob("*.ipynb"))
    assert len(pages) == len(list((built / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    for page in pages:
        cells = json.loads(page.read_text())["cells"]
        err = [
            "".join(o["text"])
            for c in cells
            for o in c.get("outputs", [])
            if o.get("output_type") == "stream" and o.get("name") == "stderr"
        ]
        assert err == [], f"{page.name}: {err[0][:300]}"


@pytest.mark.notebook
def test_recorded_results(built: Path):
    res = json.loads((built / "reports" / "results.json").read_text())
    for k, v in res.items():
        assert {"value", "unit", "description", "sources", "kind", "notebook"} <= v.keys(), k
        assert all((built / s).exists() for s in v["sources"]), k
        if "interval" in v:
            lo, hi = v["interval"]
            assert lo <= v["value"] <= hi, k
    assert res["ngo_registered_ref"]["value"] == 23335
    # no two exact register figures are certainly 6 years apart (one is dated 'c. 2024'):
    # no estimate of growth, only limits, and the pairs left out are named
    assert res["ngo_growth_exact_pairs"]["value"] == 0 and "ngo_growth_exact_low_pct" not in res
    assert 0 < res["ngo_growth_lower_limit_pct"]["value"] < 10
    assert len(res["ngo_growth_pairs_table"]["value"]) > res["ngo_growth_pairs"]["value"]
    assert "about 2024" in res["ngo_growth_short_list"]["value"]
    assert res["ngo_registered_per_capita_ref"]["value"] == pytest.approx(11.5)
    assert res["ngo_registered_per_capita_ref"]["decimals"] == 1
    assert res["ngo_flagged_implausible"]["value"] >= 1
    assert res["ccsi_low_value"]["value"] <= res["ccsi_last_value"]["value"]
    assert not [k for k in res if "spearman" in k]  # no correlation over a handful of years
    assert 0 < res["ngo_ccsi_lower_bound_years"]["value"] <= res["ngo_ccsi_n_years"]["value"]
    assert res["mazhilis_latest_women"]["value"] == 18
    assert res["mazhilis_2023_alternative_women"]["value"] == 19
    assert res["mazhilis_latest_smd_women"]["value"] == 0
    assert res["kior_no_trust_charities"]["qualifier"] == "almost"
    assert "interval" not in res["kior_trust_volunteers"]  # sampling not described
    assert "interval" not in res["demoscope_rallies_influence"]  # landline frame
    assert "interval" not in res["kaziss_trust_local_akims"]  # n is not the item's base
    assert "interval" not in res["kaziss_trust_president"]  # "representative", design unpublished
    assert res["claim_C01_verdict"]["value"] == "not contradicted"  # a lower bound only
    assert res["parl_focus_country"]["value"] == "Kazakhstan"
    assert res["osm_smallest_n"]["value"] == 81
    assert res["osm_n_count"]["value"] == 251 and res["osm_n_count_other_rounding"]["value"] == 252
    assert res["claim_C06_verdict"]["value"] == "consistent"  # both chambers, as stated
    assert res["claim_C07_verdict"]["value"] == "inconsistent"
    assert res["claim_C05_verdict"]["value"] == "cannot check"
    n_claims = len((built / "data/raw/claims.csv").read_text().strip().splitlines()) - 1
    assert res["claims_n_total"]["value"] == n_claims
    # the figures published are those the notebooks made (counted, never listed here)
    made = {p.stem for p in (built / ".build/out/figures").glob("*.json")}
    figs = {p.stem for p in (built / "reports" / "figures").glob("*.svg")}
    assert figs and figs == made
    stages = {p.stem for p in (built / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert {
        json.loads((built / f"reports/figures/{f}.json").read_text())["notebook"] for f in figs
    } <= stages
    for svg in (built / "reports" / "figures").glob("*.svg"):
        meta = json.loads(svg.with_suffix(".json").read_text())
        assert meta["alt"] and meta["caption"] and meta["source_ids"] and meta["raw_files"]


@pytest.mark.notebook
@pytest.mark.slow
def test_noop_and_incremental_rebuilds(built: Path):
    # (the shared build started every kernel the normal way: conftest.py; the
    # rebuilds below fork theirs from the warm server, ready before they start)
    assert not (built / ".build/kernels.log").exists()
    warm_server(built)
    r = make(built, "report")
    assert r.returncode == 0 and ran(r.stdout) == [] and "[build]" not in r.stdout

    # a comment in params.yaml changes no section: nothing reruns
    p = built / "params.yaml"
    p.write_text(p.read_text() + "\n# a comment\n")
    r = make(built, "report")
    assert ran(r.stdout) == [], r.stdout

    # one section changes: only its notebook reruns; of its figures, the one that
    # changed is drawn, the other is the build's drawing of it (.build/figure-cache)
    cache = built / ".build/figure-cache"
    cached = {e.name: e.stat().st_mtime_ns for e in cache.iterdir()}
    figures = {f.name: f.read_bytes() for f in (built / "reports/figures").iterdir()}
    p.write_text(p.read_text().replace("granularity_n_max: 1000", "granularity_n_max: 900"))
    r = make(built, "report")
    assert ran(r.stdout) == ["04_survey.ipynb"], r.stdout
    # its kernel forked by the warm server, and every step by one server (a step
    # whose environment differed from its caller's would ask for another address,
    # and start a second server)
    log = (built / ".build/kernels.log").read_text()
    assert "kernel forked" in log and "not forked" not in log
    assert log.count(") ready in") <= 1, log
    now = {e.name: e.stat().st_mtime_ns for e in cache.iterdir()}
    caf = [e for e in cached if e.startswith("fig_survey_caf.")]
    granularity = [e for e in cached if e.startswith("fig_survey_granularity.")]
    assert len(caf) == len(granularity) == 1 and len(cached) == len(figures) // 3  # all kept
    assert all(now.get(e) == cached[e] for e in caf)  # kept, not drawn again
    assert not set(granularity) & set(now)  # drawn, under its new key
    # back, with the cache switched off: every figure drawn afresh is byte for byte
    # the first build's (the cache gave the same bytes as drawing does)
    p.write_text(p.read_text().replace("granularity_n_max: 900", "granularity_n_max: 1000"))
    r = make(built, "report", env={"KZ_NO_FIGURE_CACHE": "1"})
    assert ran(r.stdout) == ["04_survey.ipynb"], r.stdout
    assert {f.name: f.read_bytes() for f in (built / "reports/figures").iterdir()} == figures
    assert {e.name: e.stat().st_mtime_ns for e in cache.iterdir()} == now  # not written

    # the data section changes: the data stage reruns; ngo_counts changes, so 02 and 05 rerun
    p.write_text(
        p.read_text().replace("per_capita_denominator: 10000", "per_capita_denominator: 1000")
    )
    r = make(built, "report")
    assert r.returncode == 0, r.stderr
    # the data stage, then exactly the notebooks that read ngo_counts (each stage's
    # tables are recorded by the runner in .build/deps/; 03_parliament reads none of it)
    readers = sorted(
        f"{d.stem}.ipynb"
        for d in (built / ".build/deps").glob("*.mk")
        if "data/processed/ngo_counts.csv" in d.read_text()
    )
    assert "02_ngo.ipynb" in readers and "03_parliament.ipynb" not in readers
    assert sorted(ran(r.stdout)) == sorted(["01_data.ipynb", *readers]), r.stdout
    assert "per_1000" in (built / "data/processed/ngo_counts.csv").read_text()


def compiled(src: Path) -> bool:
    """Whether src has a hash-checked .pyc of its current content (PEP 552)."""
    import importlib.util

    try:
        data = Path(importlib.util.cache_from_source(str(src))).read_bytes()
    except OSError:
        return False
    return (
        data[:4] == importlib.util.MAGIC_NUMBER
        and int.from_bytes(data[4:8], "little") == 0b11  # hash-based, checked at import
        and data[8:16] == importlib.util.source_hash(src.read_bytes())
    )


def uncompile(root: Path) -> None:
    """Remove the build's compiled modules and their stamp (as `make clean` would)."""
    for cache in (root / "src").glob("*/__pycache__"):
        shutil.rmtree(cache)
    (root / ".build/bytecode.ok").unlink()


@pytest.mark.notebook
def test_a_commit_makes_the_paper_name_it(built: Path):
    """The paper names the commit it was built from. A commit made after the build
    left it naming the old one (and `make verify`, which rebuilds at the current
    commit, failed on it); now the next `make report` makes it again."""

    def git(*args: str) -> str:
        r = subprocess.run(["git", *args], cwd=built, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    paper = built / "reports/paper.html"
    try:  # the scratch copy as a git checkout of its own
        git("init", "-q")
        git("config", "user.email", "ci@example.invalid")
        git("config", "user.name", "ci")
        git("add", "-A")
        for message in ("first", "second"):  # (the second: a branch ref that moved)
            git("commit", "-q", "--allow-empty", "-m", message)
            assert make(built, "report").returncode == 0
            assert f'commit {git("rev-parse", "HEAD")}"' in paper.read_text()
    finally:
        shutil.rmtree(built / ".git", ignore_errors=True)
        (built / "paper/paper.md").touch()  # (the paper made again, outside git)
        assert make(built, "report").returncode == 0
    assert "commit unknown" in paper.read_text()


def test_the_build_compiles_the_projects_code(built: Path):
    """Every module of src/analysis and src/pipeline has a hash-checked .pyc of its
    source (the steps and kernels import them afresh; PYTHONDONTWRITEBYTECODE would
    have each compile them); an edited module is compiled by the next build."""
    modules = sorted((built / "src").glob("*/*.py"))
    assert {m.parent.name for m in modules} == {"analysis", "pipeline"}
    assert [m.name for m in modules if not compiled(m)] == []
    schema = built / "src/analysis/schema.py"  # read by the paper stage only
    good = schema.read_text()
    schema.write_text(good + "\n# an edit\n")
    try:
        r = make(built, "report")
        assert r.returncode == 0 and ran(r.stdout) == [], r.stdout + r.stderr
        assert compiled(schema)
    finally:
        schema.write_text(good)
    assert make(built, "report").returncode == 0 and compiled(schema)
    # without PYTHONDONTWRITEBYTECODE the snapshot's imports write date-based .pyc
    # files before the build compiles: those are replaced too (steps run the normal way)
    uncompile(built)
    env = {"PYTHONDONTWRITEBYTECODE": "", "KZ_FORK_KERNELS": "0"}
    r = make(built, "report", env=env)
    assert r.returncode == 0 and ran(r.stdout) == [], r.stdout + r.stderr
    assert [m.name for m in modules if not compiled(m)] == []


@pytest.mark.slow
def test_a_noop_starts_no_python_until_a_snapshot_input_changes(built: Path, tmp_path: Path):
    """After a complete build, `make report` skips the snapshot (a python start) while
    none of its inputs is newer than it: sources count, their bytecode does not;
    site-packages counts by its own entries (the dist-info folders the environment
    snapshot reads), not by the files inside them. (SITE= stands in for the shared
    environment's site-packages, which other tests' builds use meanwhile.)"""
    import os

    started = built / ".build/snapshot.started"  # rewritten by every snapshot

    def snapshot_ran(*touched: Path, site: Path | None = None) -> bool:
        before = started.read_text()
        for p in touched:
            os.utime(p)
        r = make(built, "report", *([f"SITE={site}"] if site else []))
        assert r.returncode == 0, r.stdout + r.stderr
        return started.read_text() != before

    assert not snapshot_ran()
    # as after `make clean` or a fresh clone: the build compiles the modules after the
    # snapshot started, without dating src/analysis or src/pipeline after it
    uncompile(built)
    assert snapshot_ran() and compiled(built / "src/analysis/schema.py")
    assert not snapshot_ran()
    assert snapshot_ran(built / "src/analysis/schema.py")  # the paper is made again
    assert not snapshot_ran()  # although the build recompiled schema.py after the snapshot
    assert not snapshot_ran(*(built / "src/analysis/__pycache__").glob("*.pyc"))
    # SITE is this environment's site-packages (where its dist-info folders are)
    (tmp_path / "site.mk").write_text("$(info SITE=$(SITE))\n")  # read after the Makefile
    r = make(built, "-f", "Makefile", "-f", str(tmp_path / "site.mk"), "help")
    site_line = next(x for x in r.stdout.splitlines() if x.startswith("SITE="))
    assert (built / site_line.removeprefix("SITE=")).resolve() == Path(
        sysconfig.get_paths()["purelib"]
    ).resolve()
    site = tmp_path / "site-packages"
    (site / "pkg").mkdir(parents=True)
    os.utime(site / "pkg", (1, 1))
    os.utime(site, (1, 1))
    assert not snapshot_ran(site=site)
    assert not snapshot_ran(site / "pkg", site=site)  # a file inside a package
    (site / "new-1.0.dist-info").mkdir()  # a package installed
    assert snapshot_ran(site=site)
    # params.yaml replaced by an edited copy dated before the snapshot (`cp -p`): its
    # content counts (as the notebooks', each in .build/snapshot.sums), not its date
    params = built / "params.yaml"
    good = params.read_text()
    sums = (built / ".build/snapshot.sums").read_text()
    assert all(f"  notebooks/{p.name}\n" in sums for p in fingerprint.stages(built / "notebooks"))
    try:
        params.write_text(good.replace("granularity_n_max: 1000", "granularity_n_max: 900"))
        os.utime(params, (1, 1))
        r = make(built, "report")
        assert r.returncode == 0 and ran(r.stdout) == ["04_survey.ipynb"], r.stdout + r.stderr
    finally:
        params.write_text(good)
    assert ran(make(built, "report").stdout) == ["04_survey.ipynb"]
    # a broken one copied in so: refused at every make, never skipped after the first
    try:
        params.write_text(good.replace("granularity_n_max: 1000", "granularity_n_max: -5"))
        os.utime(params, (1, 1))
        for _ in range(2):
            r = make(built, "report")
            assert r.returncode != 0 and "granularity_n_max" in r.stderr, r.stdout + r.stderr
    finally:
        params.write_text(good)
    assert make(built, "report").returncode == 0
    # a notebooks/matplotlibrc (read by the kernels) is an input of every notebook's run
    rc = built / "notebooks" / "matplotlibrc"
    try:
        rc.write_text("axes.titlelocation: left\n")
        r = make(built, "-n", "report")
        runs = [x for x in r.stdout.splitlines() if "pipeline.run notebooks/" in x]
        assert len(runs) == len(fingerprint.stages(built / "notebooks")), r.stdout
    finally:
        rc.unlink()
    assert ran(make(built, "report").stdout) == []


@pytest.mark.notebook
def test_bad_raw_data_keeps_the_previous_report(built: Path):
    paper = built / "reports" / "paper.html"
    before = paper.read_bytes()
    raw = built / "data" / "raw" / "population.csv"
    good = raw.read_text()
    raw.write_text(good.replace("2023,20330104", "2023,20330105"))
    r = make(built, "report")
    raw.write_text(good)
    assert r.returncode != 0
    assert "population.csv: breaks rule 'sha256 matches datapackage.json" in r.stderr
    assert paper.read_bytes() == before


def test_report_with_a_bad_params_file(tmp_path: Path):
    root = copy_project(tmp_path / "p")
    other = root / "other.yaml"
    other.write_text((root / "params.yaml").read_text().replace("dpi: 150", "dpi: x"))
    r = make(root, "report", "PARAMS=other.yaml")
    line = other.read_text().splitlines().index("    dpi: x") + 1
    assert r.returncode != 0 and f"other.yaml: line {line}: key 'shared.figure.dpi'" in r.stderr
    assert not (root / "reports" / "paper.html").exists()
