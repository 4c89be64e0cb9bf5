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


def copy_project(dst: Path, root: Path = paths.ROOT) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for f in files:
        if (root / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / f, dst / f)
    (dst / ".venv").symlink_to(root / ".venv")
    return dst
