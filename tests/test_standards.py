"""The ecosystem's own tools are the judges, run as a maintainer would run them:
frictionless on the data package, mypy on the typed package, the pre-commit
hooks and the nbstripout git filter on a scratch repository, the Nu HTML checker
and axe-core on a built paper, and the Makefile with an existing interpreter
(Binder). In CI (CI=true) a missing tool fails; elsewhere it skips with a message.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import make
from pipeline.scratch import copy_project

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def need(ok: bool, what: str) -> None:
    """Fail in CI, skip elsewhere, when a tool the check needs is absent."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} (.ci/run installs it)")
    pytest.skip(f"{what}; CI installs it")


def run(*cmd: str, cwd: Path = ROOT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, **kw)


def scratch_repo(dst: Path) -> Path:
    """A scratch copy of the project as a git repository of its own, all files committed."""
    root = copy_project(dst)
    for args in (
        ("init", "-q"),
        ("config", "user.email", "ci@example.invalid"),
        ("config", "user.name", "ci"),
        ("add", "-A"),
        ("commit", "-qm", "scratch"),
    ):
        r = run("git", *args, cwd=root)
        assert r.returncode == 0, r.stderr
    return root


# ---------------------------------------------------------------- data package
def test_frictionless_validates_every_table_of_the_data_package():
    r = run(PY, "-m", "frictionless", "validate", "--json", "data/raw/datapackage.json")
    report = json.loads(r.stdout)
    errors = [e["message"] for e in report["errors"]] + [
        f"{t['name']}: {e['message']}" for t in report["tasks"] for e in t["errors"]
    ]
    assert report["valid"] and r.returncode == 0, "\n".join(errors[:20])
    pkg = json.loads((ROOT / "data/raw/datapackage.json").read_text())
    assert sorted(t["name"] for t in report["tasks"]) == sorted(
        res["name"] for res in pkg["resources"]
    )
    assert all(t["valid"] and t["stats"]["rows"] > 0 for t in report["tasks"])


def test_frictionless_catches_a_broken_table(tmp_path: Path):
    """The check can fail: a value of the wrong type is an error of frictionless."""
    raw = tmp_path / "raw"
    shutil.copytree(ROOT / "data" / "raw", raw)
    pop = raw / "population.csv"
    lines = pop.read_text().splitlines(keepends=True)
    head = lines[0].rstrip("\n").split(",")
    cells = lines[1].rstrip("\n").split(",")
    cells[head.index("population")] = "many"
    lines[1] = ",".join(cells) + "\n"
    pop.write_text("".join(lines))
    r = run(PY, "-m", "frictionless", "validate", "--json", str(raw / "datapackage.json"))
    report = json.loads(r.stdout)
    assert r.returncode != 0 and not report["valid"]
    types = {e["type"] for t in report["tasks"] for e in t["errors"]}
    assert {"type-error", "hash-count"} & types, types


# ---------------------------------------------------------------- types
@pytest.mark.slow  # (~10 CPU-s with mypy's cache cold: a fresh clone)
def test_mypy_passes_on_the_typed_package():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert cfg["files"] and (ROOT / "src/analysis/py.typed").exists()
    r = run(PY, "-m", "mypy")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
    assert "Success: no issues found" in r.stdout


def test_mypy_skips_only_libraries_the_project_never_imports():
    """The overrides with follow_imports = "skip" (pyproject.toml) name libraries that
    src/ reaches only through others: an import of one in src/ would go unchecked."""
    import ast

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    skipped = {
        m.removesuffix(".*")
        for o in cfg["overrides"]
        if o.get("follow_imports") == "skip"
        for m in o["module"]
    }
    assert "scipy" in skipped
    imported = set()
    for f in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    assert {"pandas", "matplotlib", "IPython"} <= imported  # (the walk finds imports)
    assert not imported & skipped, sorted(imported & skipped)


# ---------------------------------------------------------------- hooks and git filter
@pytest.mark.slow
def test_pre_commit_hooks_are_local_and_pass_on_the_committed_tree(tmp_path: Path):
    cfg = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [r["repo"] for r in cfg["repos"]] == ["local"], "hooks must run offline from .venv"
    ids = {h["id"] for r in cfg["repos"] for h in r["hooks"]}
    assert {"nbstripout", "ruff"} <= ids
    root = scratch_repo(tmp_path / "repo")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    r = run(
        PY, "-m", "pre_commit", "run", "--all-files", "--show-diff-on-failure", cwd=root, env=env
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
    changed = run("git", "status", "--porcelain", cwd=root).stdout
    assert changed == "", f"the hooks modified the committed tree:\n{changed}"


def test_nbstripout_git_filter_keeps_outputs_out_of_git(tmp_path: Path):
    root = scratch_repo(tmp_path / "repo")
    r = make(root, "git-filter")
    assert r.returncode == 0 and "filter installed" in r.stdout, r.stdout + r.stderr
    assert "filter=nbstripout" in (root / ".gitattributes").read_text()
    # the filter strips what the pre-commit hook strips
    args = re.search(r"^NBSTRIPOUT_ARGS := (.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert args and args[1] in (ROOT / ".pre-commit-config.yaml").read_text()
    # a researcher runs a notebook in JupyterLab and saves it with outputs
    path = root / "notebooks" / "04_survey.ipynb"
    nb = nbformat.read(path, as_version=4)
    ids = [c.get("id") for c in nb.cells]
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.execution_count = 7
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    code.metadata["execution"] = {"iopub.status.busy": "2026-11-23T10:00:00Z"}
    nb.metadata["language_info"] = {  # what JupyterLab (and nbconvert) write on saving
        "name": "python",
        "version": "3.11.7",
        "codemirror_mode": {"name": "ipython", "version": 3},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
    }
    nbformat.write(nb, path)
    assert "hello" in path.read_text()
    run("git", "add", "-A", cwd=root)
    status = run("git", "status", "--porcelain", cwd=root).stdout
    assert status == "", f"a notebook saved with outputs shows as changed:\n{status}"
    staged = nbformat.reads(run("git", "show", ":notebooks/04_survey.ipynb", cwd=root).stdout, 4)
    assert [c.get("id") for c in staged.cells] == ids, "cell ids must stay stable"
    # and a real edit still reaches git
    code.source += "\n# edited"
    nbformat.write(nb, path)
    assert "04_survey.ipynb" in run("git", "status", "--porcelain", cwd=root).stdout


def test_readme_describes_every_raw_table():
    """The README's table of data/raw lists every table of the data package."""
    pkg = json.loads((ROOT / "data/raw/datapackage.json").read_text())
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    named = set(re.findall(r"`([a-z0-9_]+)`", " ".join(r.split("|")[1] for r in rows)))
    missing = [r["name"] for r in pkg["resources"] if r["name"] not in named]
    assert missing == [], f"README's data table lacks {missing}"


def test_make_help_and_the_readme_name_the_same_targets():
    """`make help` lists each target the README names, and the README mentions each
    target `make help` lists."""
    shown = run("make", "help").stdout
    listed = set(re.findall(r"^  make ([a-z_-]+)", shown, re.M))
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`make ([a-z][a-z_-]+)", readme))  # (in code spans)
    assert named and named <= listed, named - listed
    assert [t for t in sorted(listed) if not re.search(rf"make {t}\b", readme)] == []


def test_lint_covers_notebooks():
    r = run("make", "-n", "lint")
    assert "notebooks" in r.stdout, r.stdout


# ---------------------------------------------------------------- HTML
@pytest.mark.notebook
@pytest.mark.slow
def test_paper_and_notebook_pages_pass_the_nu_checker_and_axe(built: Path, tmp_path: Path):
    """The paper and every notebook page pass both checkers; in the same run, a page
    with the paper's old faults is rejected by both (the checkers can fail), and a
    page that fails axe at the phone width only is rejected at that width only."""
    need(shutil.which("java") is not None, "java is not installed")
    need((ROOT / "node_modules/vnu-jar").is_dir(), "node_modules missing (make node_modules)")
    need(
        shutil.which("chromium") is not None or shutil.which("chromium-browser") is not None,
        "chromium is not installed",
    )
    pages = [built / "reports/paper.html", *sorted((built / "reports/notebooks").glob("*.html"))]
    n = len(pages)  # the paper and one page per executed notebook
    assert n == 1 + len(list((built / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    bad = tmp_path / "bad.html"  # a fixture page
    bad.write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>t</title>'
        "<style>a{color:#0b5cad;text-decoration:none}body{color:#1d1d1f}</style></head>"
        '<body><main><figure><img src="data:," alt="x"><figcaption>c</figcaption><p>p</p>'
        '</figure><p>Text <a href="#r">[1]</a> more text around the link.</p>'
        '<p id="r">ref</p></main></body></html>'
    )
    narrow = tmp_path / "narrow.html"  # a fixture page: a region that scrolls on a phone only
    narrow.write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>t</title>'
        '</head><body><main><h1>x</h1><div style="overflow:auto;max-width:100%">'
        '<p style="width:800px">wide text that needs to scroll on a phone but not on a desktop'
        "</p></div></main></body></html>"
    )
    r = run(PY, "-m", "pipeline.check_html", *map(str, pages), str(bad), str(narrow))
    assert r.returncode == 1, r.stdout[-4000:] + r.stderr[-1000:]
    assert f"[vnu] {n + 2} page(s): " in r.stdout
    assert f"[axe] {2 * (n + 2)} page x width run(s) (desktop, phone): " in r.stdout
    found = [x for x in r.stdout.splitlines() if x.startswith(("vnu: ", "axe: "))]
    assert all(x.startswith(("vnu: bad.html", "axe: bad.html")) for x in found[:-1]), found
    # each width is checked as laid out at that width (one load, then resized)
    assert found[-1].startswith("axe: narrow.html (phone): serious: scrollable-region-focusable")
    assert any(x.startswith("vnu: ") and "not allowed as child of element" in x for x in found)
    assert any(x.startswith("axe: ") and "serious: link-in-text-block" in x for x in found)


# ---------------------------------------------------------------- Binder and citation
def test_binder_pins_do_not_conflict():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(p.startswith("notebook==") for p in pins), "Binder's base notebook must be pinned"
    # the installed packages' requirements hold: uv's check where uv is at hand (on PATH or
    # the one make env bootstrapped; the same check as pip's, 0.03 instead of 1.5 CPU
    # seconds), pip's otherwise
    uv = shutil.which("uv") or ROOT / ".tools/uv/bin/uv"
    check = (
        [str(uv), "pip", "check", "--python", PY]
        if Path(uv).exists()
        else [PY, "-m", "pip", "check"]
    )
    r = run(*check)
    assert r.returncode == 0, r.stdout + r.stderr
    post = (ROOT / "postBuild").read_text()
    assert "make data PY=python" in post and os.access(ROOT / "postBuild", os.X_OK)


@pytest.mark.notebook
def test_make_runs_with_an_existing_interpreter(tmp_path: Path):
    """`make data PY=python`, as postBuild runs it on Binder: the interpreter found on
    PATH (here this environment's), no .venv."""
    root = copy_project(tmp_path / "project")
    (root / ".venv").unlink()
    path = f"{Path(PY).parent}{os.pathsep}{os.environ['PATH']}"
    r = make(root, "data", "PY=python", env={"PATH": path})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert not (root / ".venv").exists()
    assert (root / "data/processed/population.csv").exists()
    assert (root / ".build/out/notebooks/01_data.ipynb").exists()


def test_citation_and_licence_metadata():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "title", "authors", "version", "date-released", "abstract"):
        assert cff.get(key), f"CITATION.cff: {key} missing"
    assert cff["license"] == "MIT"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT", "an SPDX expression, not the deprecated table"
    assert project["version"] == cff["version"]
