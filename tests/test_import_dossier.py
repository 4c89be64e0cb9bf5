"""data/raw/ is exactly what tools/import_dossier.py makes of the dossier:
every dossier value is kept, as published, with its source id."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOSSIER = ROOT.parent / "shared" / "data-dossier"
sys.path.insert(0, str(ROOT / "tools"))

needs_dossier = pytest.mark.skipif(
    not DOSSIER.exists() and not os.environ.get("CI"),
    reason="the shared data dossier is not beside this checkout (it is in CI)",
)


@needs_dossier
def test_raw_tables_are_reproduced_from_the_dossier():
    import import_dossier

    made = import_dossier.convert(DOSSIER)
    committed = {p.name for p in (ROOT / "data" / "raw").glob("*.csv")}
    assert set(made) == committed
    for name, text in made.items():
        assert (ROOT / "data" / "raw" / name).read_text(encoding="utf-8") == text, name


@needs_dossier
def test_every_dossier_number_is_in_the_raw_tables():
    """Every numeric cell of every dossier table appears, as text, in data/raw."""
    raw_text = "\n".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "data" / "raw").glob("*.csv")
    )
    cells = set(raw_text.replace("\n", ",").split(","))
    missing = []
    for f in sorted(DOSSIER.glob("*.csv")):
        with open(f, newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                for col, v in row.items():
                    if col in ("note", "measure_note") or not v:
                        continue
                    try:
                        float(v)
                    except ValueError:
                        continue
                    if v not in cells:
                        missing.append(f"{f.name}:{i}:{col}={v}")
    assert not missing, missing[:10]


def test_refuses_to_overwrite_raw_data(capsys):
    import import_dossier

    assert import_dossier.main(["--out", str(ROOT / "data" / "raw")]) == 2
    assert "immutable" in capsys.readouterr().err


def test_source_ids_are_namespaced():
    import import_dossier

    assert import_dossier.ids("S02;S03", "survey_") == "survey_S02;survey_S03"
    assert import_dossier.ids("a; b", "") == "a;b"
    assert import_dossier.year_month_day("1999-10") == ("1999", "10", "")
    with pytest.raises(ValueError):
        import_dossier.year_month_day("c. 2010")
