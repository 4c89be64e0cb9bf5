"""Compile requirements.lock from the pip pins in environment.yml.

Usage: python tools/lock.py   (needs `uv` on PATH or in the current venv)

The lock holds every transitive dependency with an exact version and hashes,
resolved for CPython 3.11 on Linux. Run it after editing environment.yml.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def direct_pins(env_file: Path = ROOT / "environment.yml") -> list[str]:
    """Return the `name==version` pins of the pip section of environment.yml."""
    env = yaml.safe_load(env_file.read_text())
    for dep in env["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            return [p for p in dep["pip"] if "==" in p]
    raise SystemExit(f"{env_file}: no pip section with pins")


def main() -> int:
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    with tempfile.TemporaryDirectory() as tmp:
        req_in = Path(tmp) / "requirements.in"
        req_in.write_text("\n".join(direct_pins()) + "\n")
        cmd = [
            uv,
            "pip",
            "compile",
            str(req_in),
            "--generate-hashes",
            "--python-version",
            "3.11",
            "--python-platform",
            "x86_64-unknown-linux-gnu",
            "--no-header",
            "--no-annotate",
            "--output-file",
            str(ROOT / "requirements.lock"),
        ]
        return subprocess.call(cmd)


if __name__ == "__main__":
    raise SystemExit(main())
