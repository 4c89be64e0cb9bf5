"""Shared fixtures. Everything under tests/ that looks like data is a fixture
made for the tests, never real data; real data lives in data/raw/ only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import data, paths
from pipeline.scratch import copy_project  # noqa: F401  (tests import it from here)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


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
    shutil.copy(paths.PARAMS, root / "params.yaml")
    shutil.copytree(paths.NOTEBOOKS, root / "notebooks")
    return root


def run_module(*args: str, root: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
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
def built(tmp_path_factory) -> Path:
    """One full `make report` in a scratch copy, shared by the pipeline and paper tests.
    Tests that change it restore what they changed."""
    root = copy_project(tmp_path_factory.mktemp("scratch") / "project")
    r = make(root, "report")
    assert r.returncode == 0, r.stdout + r.stderr
    return root
