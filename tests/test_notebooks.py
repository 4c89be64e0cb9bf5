"""Notebooks: committed clean, run through the runner with their params section,
deterministic executed copies, and failures that leave no partial output."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from analysis import paths
from conftest import edit, run_step
from pipeline import fingerprint
from pipeline.run import strip_volatile

NOTEBOOKS = fingerprint.stages()


def run_data_stage(project: Path, params: Path, out: Path):
    """The data stage through the runner, in a scratch project, as make runs it."""
    return run_step(
        "pipeline.run",
        str(project / "notebooks/01_data.ipynb"),
        "--params",
        str(params),
        "--out",
        str(out),
        root=project,
    )


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_clean(nb_path: Path):
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{nb_path.name}: a cell has outputs"
            assert cell["execution_count"] is None, f"{nb_path.name}: execution count"
        assert not set(cell.get("metadata", {})) & {"execution", "papermill"}
    assert nb["metadata"]["kernelspec"]["name"] == paths.KERNEL_NAME
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    # only assignments: papermill's injected cell follows it, then the section is loaded
    assert (
        "".join(tagged[0]["source"])
        .strip()
        .endswith("params_file = None  # None means the project's params.yaml")
    )
    after = nb["cells"][nb["cells"].index(tagged[0]) + 1]
    assert re.search(r"^params = load_section\(", "".join(after["source"]), re.M)


def test_strip_volatile_removes_timings():
    nb = {
        "metadata": {"papermill": {"start_time": "x", "duration": 1.0, "parameters": {"a": 1}}},
        "cells": [
            {
                "id": "r4nd0m",
                "metadata": {
                    "tags": ["injected-parameters"],
                    "papermill": {"duration": 1},
                    "execution": {"iopub.status.busy": "t"},
                },
            }
        ],
    }
    out = strip_volatile(nb)
    assert out["metadata"]["papermill"] == {"parameters": {"a": 1}}
    assert out["cells"][0]["metadata"] == {"tags": ["injected-parameters"]}
    assert out["cells"][0]["id"] == "injected-parameters"


@pytest.mark.notebook
@pytest.mark.slow
def test_data_stage_through_the_runner(project_copy: Path, tmp_path: Path):
    out = tmp_path / "01_data.ipynb"
    params = project_copy / "params.yaml"

    params.write_text(
        params.read_text().replace("per_capita_denominator: 10000", "per_capita_denominator: 1000")
    )
    r = run_data_stage(project_copy, params, out)
    assert r.returncode == 0, r.stderr
    nb = json.loads(out.read_text())
    injected = nb["metadata"]["papermill"]["parameters"]
    assert injected == {"params_file": "params.yaml"}  # the file we passed
    assert "start_time" not in nb["metadata"]["papermill"]
    assert not any(
        c.get("outputs") and c["outputs"][0].get("output_type") == "error" for c in nb["cells"]
    )
    processed = project_copy / "scratch" / "outputs" / "processed"  # a run by hand
    assert list((project_copy / "data" / "processed").iterdir()) == []
    counts = pd.read_csv(processed / "ngo_counts.csv")
    apr23 = counts[(counts.source_id == "ngo_S01") & (counts.status == "registered")].iloc[0]
    assert apr23["per_1000"] == pytest.approx(23335 / 20330104 * 1000, abs=1e-4)
    manifest = json.loads((processed / "manifest.json").read_text())
    assert manifest["ngo_counts.csv"]["from"].keys() == {
        "data/raw/ngo_counts.csv",
        "data/raw/population.csv",
    }

    # same inputs -> byte-identical executed copy; unchanged tables are not rewritten
    mtimes = {p.name: p.stat().st_mtime_ns for p in processed.iterdir()}
    first = out.read_bytes()
    r = run_data_stage(project_copy, params, out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == first
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in processed.iterdir()}

    # bad raw input: the stage fails naming file/row/column/rule, replaces nothing
    edit(project_copy / "data" / "raw", "population.csv", "2023,20330104", "2023,-5")
    r = run_data_stage(project_copy, params, out)
    assert r.returncode == 1
    assert "population.csv, row 34 (line 35), column 'population'" in r.stderr
    assert "minimum 1000000" in r.stderr
    assert "    | " not in r.stderr and "Traceback" not in r.stderr  # one line, no cell dump
    assert out.read_bytes() == first, "the previous executed copy must stay intact"
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in processed.iterdir()}


@pytest.mark.notebook
def test_failing_cell_is_reported_and_leaves_no_output(project_copy: Path, tmp_path: Path):
    nb_path = project_copy / "notebooks" / "01_data.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("ratio = 1 / 0  # fixture: a failing cell"))
    nbformat.write(nb, nb_path)
    out = tmp_path / "out" / "01_data.ipynb"
    r = run_step("pipeline.run", str(nb_path), "--out", str(out), root=project_copy)
    assert r.returncode == 1
    assert "FAILED" in r.stderr and "ZeroDivisionError" in r.stderr
    assert "ratio = 1 / 0" in r.stderr  # the failing cell's source is shown
    assert not out.exists() and not list(tmp_path.glob("**/*.ipynb.tmp"))


@pytest.mark.notebook
def test_bad_params_stop_before_execution(project_copy: Path, tmp_path: Path):
    params = project_copy / "params.yaml"
    params.write_text(params.read_text().replace("world: WLD", "wrold: WLD"))
    out = tmp_path / "x.ipynb"
    r = run_data_stage(project_copy, params, out)
    assert r.returncode == 1 and "key 'shared.wrold': unknown key" in r.stderr
    assert not out.exists()


def test_runner_refuses_a_notebook_without_section(tmp_path: Path):
    nb = tmp_path / "scratch.ipynb"
    shutil.copy(paths.NOTEBOOKS / "01_data.ipynb", nb)
    r = run_step("pipeline.run", str(nb), "--out", str(tmp_path / "o.ipynb"))
    assert r.returncode == 1 and "no params section" in r.stderr
