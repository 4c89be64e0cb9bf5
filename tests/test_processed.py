"""Unit tests of the data stage's pure functions and safe writes (tiny fixture frames)."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from analysis import processed
from analysis.io import write_atomic, write_if_changed


def test_per_capita_known_answer():
    # fixture frame, not real data
    counts = pd.DataFrame(
        {"year": [2000, 2001], "count": pd.array([50, 7], "Int64"), "bound": ["point", "lower"]}
    )
    pop = pd.DataFrame({"year": [2000], "population": pd.array([1_000_000], "Int64")})
    out = processed.ngo_counts_per_capita(counts, pop, 10_000)
    assert out.loc[0, "per_10000"] == pytest.approx(0.5)
    assert pd.isna(out.loc[1, "per_10000"])  # no population for 2001: no rate
    assert out.loc[1, "bound"] == "lower"


def test_per_capita_refuses_duplicate_population_years():
    counts = pd.DataFrame({"year": [2000], "count": [1]})
    pop = pd.DataFrame({"year": [2000, 2000], "population": [1, 2]})
    with pytest.raises(pd.errors.MergeError):
        processed.ngo_counts_per_capita(counts, pop, 10)


def test_write_if_changed_keeps_mtime(tmp_path):
    p = tmp_path / "a.csv"
    assert write_if_changed(p, "x\n")
    os.utime(p, ns=(1, 1))
    assert not write_if_changed(p, "x\n")
    assert p.stat().st_mtime_ns == 1
    assert write_if_changed(p, "y\n") and p.read_text() == "y\n"


def test_write_atomic_leaves_old_file_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "a.txt"
    p.write_text("old")

    def boom(*a, **k):
        raise OSError("disk full (fixture)")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_atomic(p, b"new")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_write_atomic_interrupted_as_its_temporary_file_is_made_leaves_none(tmp_path, monkeypatch):
    """A Ctrl-C that arrives just as the temporary file has been created (a reviewer's
    loop of real SIGINTs left one in 35 of 150 with `mkstemp`, in data/processed/,
    .build/ or reports/): the file is made, then the interruption is raised."""
    p = tmp_path / "a.txt"
    p.write_text("old")
    real_open = os.open

    def interrupted(*a, **k):
        os.close(real_open(*a, **k))
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "open", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(p, b"new")
    monkeypatch.undo()
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_write_atomic_names_the_file_it_meant_to_write(tmp_path, monkeypatch):
    """A permission error at any point names the target, never the temporary file
    (the move into a sticky folder where the target is another user's named it)."""
    p = tmp_path / "a.txt"

    def refused(src, dst):
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(PermissionError) as caught:
        write_atomic(p, b"new")
    assert caught.value.filename == str(p)
    assert list(tmp_path.iterdir()) == []
