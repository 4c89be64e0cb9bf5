"""Shared fixtures. Everything under tests/ that looks like data is a fixture
made for the tests, never real data; real data lives in data/raw/ only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from analysis import data, paths
from pipeline import scratch

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
# the warm server (pipeline.kernels) the tests' builds share exits two minutes
# after the last one, unless one was running already; the session stops it
os.environ.setdefault("KZ_FORK_IDLE", "120")
# a relative PYTHONPATH entry (`PYTHONPATH=src pytest`) names another folder in every
# working directory a test's steps and kernels run in, so another warm server
# (pipeline.client._foreign_path): the tests' processes get it as an absolute path
if os.environ.get("PYTHONPATH"):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        os.path.abspath(p) for p in os.environ["PYTHONPATH"].split(os.pathsep) if p
    )
FIXTURE_PARAMS = ROOT / "tests" / "fixtures" / "params.yaml"


def fixture_params_text(base: Path = paths.PARAMS) -> str:
    """The project's params.yaml with the fixture values of tests/fixtures/params.yaml.

    Every section and key of the project is kept (a new notebook's section too);
    where the fixture has the same key, its value is used. Tests that need specific
    values therefore never depend on the working params.yaml.
    """
    project = yaml.safe_load(base.read_text(encoding="utf-8"))
    fixture = yaml.safe_load(FIXTURE_PARAMS.read_text(encoding="utf-8"))
    for name, values in project.items():
        own = fixture.get(name, {})
        project[name] = {k: own.get(k, v) for k, v in values.items()}
    return "# fixture parameters (tests/conftest.py)\n" + yaml.dump(
        project, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000
    )


class _Dumper(yaml.SafeDumper):
    """Block mappings, lists on one line (as the project writes them)."""


_Dumper.add_representer(
    list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)


def fixture_params(folder: Path, name: str = "params.yaml") -> Path:
    """Write the fixture parameters into folder/name; return its path."""
    out = folder / name
    out.write_text(fixture_params_text(), encoding="utf-8")
    return out


def copy_project(dst: Path) -> Path:
    """A scratch copy of the project (pipeline.scratch) with the fixture parameters."""
    scratch.copy_project(dst)
    fixture_params(dst)
    return dst


@pytest.fixture
def raw_copy(tmp_path: Path) -> Path:
    """A scratch copy of data/raw/ that a test may damage."""
    dst = tmp_path / "raw"
    shutil.copytree(paths.RAW, dst)
    return dst


def edit(folder: Path, file: str, old: str, new: str, *, rehash: bool = True) -> None:
    """Replace `old` by `new` once in folder/file (must be present); by default
    record the new checksum so that the schema, not the checksum, catches it."""
    p = folder / file
    text = p.read_text(encoding="utf-8")
    assert old in text, f"fixture edit: {old!r} not in {file}"
    p.write_text(text.replace(old, new, 1), encoding="utf-8")
    if rehash:
        data.update_checksums(folder, validate=False)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A scratch project root (data/raw, params.yaml, notebooks) for stage runs."""
    root = tmp_path / "project"
    shutil.copytree(paths.RAW, root / "data" / "raw")
    (root / "data" / "processed").mkdir(parents=True)
    fixture_params(root)
    shutil.copytree(paths.NOTEBOOKS, root / "notebooks")
    return root


def run_module(
    *args: str, root: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {})}
    if root is not None:
        env["KZ_COMPENDIUM_ROOT"] = str(root)
    return subprocess.run(
        [PY, "-m", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )


def make(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`make` in a scratch project (its own KZ_COMPENDIUM_ROOT), with extra `env`."""
    env = {**os.environ, **(env or {}), "KZ_COMPENDIUM_ROOT": str(root)}
    env.pop("MAKEFLAGS", None)
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.fixture(scope="session")
def built(tmp_path_factory, pytestconfig) -> Path:
    """One full `make report` in a scratch copy, shared by the pipeline and paper tests.
    Tests that change it restore what they changed.

    Built once per run: every test using it runs on one xdist worker (its group),
    and a second build in the same run fails here (xdist's grouping silently broke
    with pytest 9.2: pytest-dev/pytest-xdist#1386)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    grouped = worker is not None and pytestconfig.getoption("dist", None) == "loadgroup"
    if grouped:  # the workers of one run share the parent of their basetemp
        mark = tmp_path_factory.getbasetemp().parent / "built-by"
        try:
            with mark.open("x") as f:
                f.write(worker)
        except FileExistsError:
            pytest.fail(
                f"the shared build was made twice ({mark.read_text()} and {worker}): "
                "the xdist group 'built' did not keep its tests on one worker"
            )
    root = copy_project(tmp_path_factory.mktemp("scratch") / "project")
    r = make(root, "report")
    assert r.returncode == 0, r.stdout + r.stderr
    return root


def pytest_sessionfinish(session: pytest.Session) -> None:
    """At the end of the run (in the main process, not a worker), ask the warm
    server that the tests' builds used to exit: nothing outlives the test run."""
    if not hasattr(session.config, "workerinput"):
        from pipeline import kernels

        kernels.stop()


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs the tests on every core (pytest-xdist, --dist loadgroup).
    Tests sharing a built scratch project run on one worker, so that it is built
    once and never changed by two tests at the same time."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "built" in names:
            item.add_marker(pytest.mark.xdist_group("built"))
        elif "scratch" in names:
            item.add_marker(pytest.mark.xdist_group(f"scratch-{item.module.__name__}"))
