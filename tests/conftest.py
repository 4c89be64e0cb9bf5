"""Shared fixtures. Everything under tests/ that looks like data is a fixture
made for the tests, never real data; real data lives in data/raw/ only."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
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
    *args: str, root: Path | None = None, env: dict[str, str] | None = None, step: bool = False
) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS...` (`step`: as `run_step`) in this checkout, with the
    project root `root`."""
    env = {**os.environ, **(env or {})}
    if root is not None:
        env["KZ_COMPENDIUM_ROOT"] = str(root)
    how = [str(ROOT / "src" / "pipeline" / "step.py")] if step else ["-m"]
    return subprocess.run(
        [PY, *how, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )


def run_step(
    *args: str, root: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python src/pipeline/step.py MODULE ARGS...`: a step as the Makefile runs it
    (`python -m MODULE ARGS...` forked by the warm server; the normal way while none
    is ready)."""
    return run_module(*args, root=root, env=env, step=True)


WARM_SERVER_READY = """\
import os, sys
from pipeline import client
env = dict(os.environ)
if client.start_and_wait(client.checkout_servers(env, sys.argv[1]), env) is None:
    sys.exit("the warm server was not ready within 120 s")
"""


def warm_server(root: Path) -> None:
    """Start the warm server that a build in `root` would ask for (as pipeline.verify
    does: from the copy's own code, with the PYTHONPATH the Makefile gives its steps),
    and wait until it is ready; the first build of a run otherwise starts it and runs
    its first steps and kernels the normal way meanwhile."""
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "KZ_COMPENDIUM_ROOT": str(root)}
    r = subprocess.run(
        [PY, "-c", WARM_SERVER_READY, str(root)], cwd=root, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


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


# the run's one full build is made without the warm server (every step and kernel
# started the normal way): tests/test_verify.py re-executes a copy of it with the
# warm server and compares every delivered file byte for byte
BUILT_ONCE_ENV = {"KZ_FORK_KERNELS": "0"}
_started: list[subprocess.Popen] = []  # the shared build, if this process started it


def start_built_once(config: pytest.Config) -> Path:
    """Start the run's one full `make report` in the background, in a scratch copy with
    the fixture parameters, unless a process of this run has started it; return its
    folder (project/, and the build's log and exit status once it has ended).

    It is started as soon as the tests are collected (pytest_collection_finish), so
    that it builds while the first tests run. Every xdist worker of a run shares the
    parent of its basetemp; a lock there lets one of them start it."""
    base = config._tmp_path_factory.getbasetemp()  # (what the tmp_path_factory fixture gives)
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = shared / "built-once"
    with open(shared / "built-once.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # (released on close)
        if folder.exists():
            return folder
        try:
            root = copy_project(folder / "project")
        except Exception as e:  # noqa: BLE001 - said by every test that needs it
            (folder / "log").write_text(f"the scratch copy failed: {e!r}")
            (folder / "status").write_text("1")
            return folder
        env = {**os.environ, **BUILT_ONCE_ENV, "KZ_COMPENDIUM_ROOT": str(root)}
        env.pop("MAKEFLAGS", None)
        script = "make --no-print-directory report >../log 2>&1; echo $? >../status.tmp"
        _started.append(
            subprocess.Popen(
                ["sh", "-c", script + " && mv ../status.tmp ../status"],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # (stopped as a group if the run is interrupted)
            )
        )
    return folder


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any("built_once" in getattr(i, "fixturenames", ()) for i in session.items):
        start_built_once(session.config)


@pytest.fixture(scope="session")
def built_once(pytestconfig: pytest.Config) -> Path:
    """The run's one full build (start_built_once), once it has ended; a failed build
    fails every test that needs it, with its output. Tests never change it: they get
    copies (`built`)."""
    folder = start_built_once(pytestconfig)
    status, deadline = folder / "status", time.monotonic() + 1200
    while not status.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the run's shared build did not end within 20 minutes: {folder}")
        time.sleep(0.05)
    if status.read_text().strip() != "0":
        pytest.fail(f"the run's shared build failed:\n{(folder / 'log').read_text()}")
    return folder / "project"


@pytest.fixture
def built(built_once: Path, tmp_path: Path) -> Path:
    """A built project of the test's own: a copy of the run's one build, every date
    kept, so make finds it up to date (a copied checkout is its own root). A test
    may change it as it likes."""
    root = tmp_path / "built-project"
    shutil.copytree(built_once, root, symlinks=True)
    return root


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The shared build, if this process started it: waited for (another worker may
    still need it), or stopped if the run was interrupted. At the end of the run (in
    the main process, not a worker), ask the warm server that the tests' builds used
    to exit: nothing outlives the test run."""
    for p in _started:
        if exitstatus == pytest.ExitCode.INTERRUPTED and p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
        p.wait()
    if not hasattr(session.config, "workerinput"):
        from pipeline import kernels

        kernels.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs the tests on every core (pytest-xdist hands each worker the
    next test as it finishes one): the tests marked slow go first, those that need
    no build before those that wait for the shared one (start_built_once), so
    that short tests fill the end of the run."""
    items.sort(
        key=lambda i: (
            i.get_closest_marker("slow") is None,
            "built_once" in getattr(i, "fixturenames", ()),
        )
    )
