"""Scratch copies of the project, for tests and the benchmark.

A copy holds the files git tracks (and untracked files it does not ignore), with
their dates kept so the environment stamp stays valid, and shares this
checkout's .venv through a symlink. Run it with KZ_COMPENDIUM_ROOT pointing at it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from analysis import paths


def source_files(root: Path = paths.ROOT) -> list[str]:
    """The project's own files: what git tracks (and untracked files it does not
    ignore), or, outside git (an unpacked archive), everything but generated outputs."""
    r = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if r.returncode == 0 and (root / ".git").exists():
        return [f for f in r.stdout.split("\0") if f]
    skip = (".venv", ".build", ".git", "scratch", "data/processed", "__pycache__")
    keep_reports = ("reports/expected-results.json", "reports/expected-figures/")
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if any(rel == s or rel.startswith(s + "/") or f"/{s}/" in f"/{rel}" for s in skip):
            continue
        if rel.startswith("reports/") and not rel.startswith(keep_reports):
            continue
        if p.is_file():
            out.append(rel)
    return out


def copy_project(dst: Path, root: Path = paths.ROOT) -> Path:
    files = source_files(root)
    for f in files:
        if (root / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / f, dst / f)
    (dst / ".venv").symlink_to((root / ".venv").resolve())
    return dst
