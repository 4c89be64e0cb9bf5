"""Project paths, defined once, from the checkout you run in (never from where the
package is installed).

The project root is, in order:
1. `KZ_COMPENDIUM_ROOT` (set by the Makefile to its own folder, and by the runner
   for the kernels it starts), else
2. the nearest folder at or above the working directory that holds
   `data/raw/datapackage.json` and `params.yaml` (JupyterLab starts kernels in
   `notebooks/`, nbconvert in the notebook's folder, papermill in yours).

A copied, moved or unpacked checkout is therefore its own project: it reads its
own data and writes its own outputs.

Who writes where: only the build (the runner, started by `make`, which sets
`KZ_OUTPUT_DIR` to a staging folder it publishes from) writes build outputs.
Anything else — a notebook run in JupyterLab, `jupyter nbconvert --execute`,
plain papermill, `python -m pipeline.run` by hand — writes its figures, results
and processed tables under `scratch/outputs/`, which nothing in the build reads.
"""

from __future__ import annotations

import os
from pathlib import Path

MARKERS = ("data/raw/datapackage.json", "params.yaml")


class NoProjectRoot(RuntimeError):
    """Not run inside a checkout of the compendium."""


def find_root(start: Path | None = None) -> Path:
    """The project root: `KZ_COMPENDIUM_ROOT` if set, else the nearest folder at or
    above `start` (default: the working directory) holding the MARKERS; raises
    NoProjectRoot outside a checkout."""
    env = os.environ.get("KZ_COMPENDIUM_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / m).is_file() for m in MARKERS):
            return folder
    raise NoProjectRoot(
        f"{here} is not inside a checkout of the compendium (no folder above it holds "
        f"{' and '.join(MARKERS)}): cd into the checkout or set KZ_COMPENDIUM_ROOT"
    )


ROOT = find_root()
RAW = ROOT / "data" / "raw"
DATAPACKAGE = RAW / "datapackage.json"
PROCESSED = ROOT / "data" / "processed"
NOTEBOOKS = ROOT / "notebooks"
REPORTS = ROOT / "reports"
BUILD = ROOT / ".build"
# the build's own area: executed notebooks, figures and results wait here until
# the paper stage publishes them into reports/ together with the paper
BUILD_OUT = BUILD / "out"
EXECUTED = BUILD_OUT / "notebooks"
# temporaries of build steps (cleaned when the next build starts)
BUILD_TMP = BUILD / "tmp"
# where runs outside the build write (never read by the build or the paper)
SCRATCH = ROOT / "scratch"
# Where a notebook writes its figures, results and processed tables. The runner
# points this at a staging folder and publishes it only when the whole notebook
# succeeded; anything else writes to scratch/outputs/.
IN_BUILD = bool(os.environ.get("KZ_OUTPUT_DIR"))
OUTPUT = Path(os.environ.get("KZ_OUTPUT_DIR") or SCRATCH / "outputs")
FIGURES = OUTPUT / "figures"
# A build's figures as last drawn, each under a key of everything its drawing depends
# on (plots.save): set by the runner for a build's kernels only, never by hand, never
# for `make verify`'s re-execution (.build/figure-cache/)
FIGURE_CACHE = Path(os.environ["KZ_FIGURE_CACHE"]) if os.environ.get("KZ_FIGURE_CACHE") else None
RESULTS = OUTPUT / "results"
PROCESSED_OUT = OUTPUT / "processed"
PARAMS = ROOT / "params.yaml"
LOCK_FILE = ROOT / "requirements.lock"
KERNEL_NAME = "kz-civil-society"


def rel(path: Path | str) -> str:
    """Path relative to the project root where possible, for messages."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def note_read(path: Path) -> None:
    """Tell the build that the running notebook read `path` (a processed table).

    The runner sets `KZ_READS_LOG` for the kernel; after a successful run it
    turns the list into the notebook's prerequisites (`.build/deps/<notebook>.mk`)
    and fingerprints them, so a stage's inputs are declared nowhere by hand: the
    notebook reruns when a table it read changes. Outside the build: nothing.
    """
    log = os.environ.get("KZ_READS_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(rel(path) + "\n")
