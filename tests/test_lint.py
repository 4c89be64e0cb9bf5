"""Code style is part of the test suite: ruff over the package, tests, tools and notebooks."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "src", "tests", "tools", "bench", "notebooks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
