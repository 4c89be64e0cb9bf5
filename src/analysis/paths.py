"""Project paths, defined once from the package location (never from the cwd)."""

from __future__ import annotations

import os
from pathlib import Path

# The project root is found from the package location. KZ_COMPENDIUM_ROOT points
# a run at another copy of the project's data (tests use it for scratch copies).
ROOT = Path(os.environ.get("KZ_COMPENDIUM_ROOT") or Path(__file__).resolve().parents[2]).resolve()
RAW = ROOT / "data" / "raw"
DATAPACKAGE = RAW / "datapackage.json"
PROCESSED = ROOT / "data" / "processed"
NOTEBOOKS = ROOT / "notebooks"
REPORTS = ROOT / "reports"
EXECUTED = REPORTS / "notebooks"
# Where a notebook writes its figures and results. The runner points this at a
# staging folder and publishes its content only when the whole notebook succeeded.
OUTPUT = Path(os.environ.get("KZ_OUTPUT_DIR") or REPORTS)
FIGURES = OUTPUT / "figures"
RESULTS = OUTPUT / "results"
PARAMS = ROOT / "params.yaml"
KERNEL_NAME = "kz-civil-society"


def rel(path: Path) -> str:
    """Path relative to the project root where possible, for messages."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
