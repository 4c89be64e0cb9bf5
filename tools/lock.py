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
# Packages left out of the lock although a dependency's extra asks for them, and why.
LEFT_OUT = (
    # jsonschema[format-nongpl] (asked for by jupyter-events) brings it to check the
    # formats "iri" and "iri-reference", which no schema read here uses; jsonschema
    # imports it when it is imported, and it then builds about 35 Earley parsers
    # (lark): ~0.9 CPU-s in every process that imports nbformat (the runner,
    # papermill, nbconvert, nbstripout, Jupyter). Without it jsonschema registers no
    # checker for those two formats. (python-jsonschema/jsonschema#1428,
    # opendatahub-io/notebooks#3532)
    "rfc3987-syntax",
)


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
            *(arg for name in LEFT_OUT for arg in ("--no-emit-package", name)),
            "--output-file",
            str(ROOT / "requirements.lock"),
        ]
        return subprocess.call(cmd)


if __name__ == "__main__":
    raise SystemExit(main())
