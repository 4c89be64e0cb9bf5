"""Build-wide progress: why a notebook runs, from the fingerprints of its inputs."""

from __future__ import annotations

import json

from pipeline import progress


def test_reason_names_what_changed(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "RUNS", tmp_path)
    assert progress.reason("02_ngo", {"a": "1"}).startswith("first run")
    (tmp_path / "02_ngo.json").write_text(
        json.dumps(
            {
                "seconds": 3.0,
                "inputs": {
                    ".build/params/ngo.json": "x",
                    "data/processed/ngo_counts.csv": "y",
                    "notebooks/02_ngo.ipynb": "z",
                },
            }
        )
    )
    now = {
        ".build/params/ngo.json": "x2",
        "data/processed/ngo_counts.csv": "y",
        "notebooks/02_ngo.ipynb": "z2",
    }
    assert progress.reason("02_ngo", now) == "params section 'ngo' changed, notebook changed"
    same = {
        ".build/params/ngo.json": "x",
        "data/processed/ngo_counts.csv": "y",
        "notebooks/02_ngo.ipynb": "z",
    }
    assert progress.reason("02_ngo", same).startswith("forced")


def test_progress_lines_and_timing_record(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(progress, "PLAN", tmp_path / "plan.json")
    (tmp_path / "plan.json").write_text(json.dumps({"notebooks": ["01_data", "02_ngo"], "jobs": 2}))
    src = tmp_path / "input.csv"
    src.write_text("a\n")
    p = progress.Progress(tmp_path / "02_ngo.ipynb", [str(src)])
    p.start()
    p.done()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("[2/2] 02_ngo started: first run")
    assert out[1].startswith("[2/2] 02_ngo done in ")
    rec = json.loads((tmp_path / "runs" / "02_ngo.json").read_text())
    assert rec["seconds"] >= 0 and len(rec["inputs"]) == 1
    progress.Progress(tmp_path / "02_ngo.ipynb", [str(src)]).start()
    assert "forced" in capsys.readouterr().out  # same inputs as the recorded run
