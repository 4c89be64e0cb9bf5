"""Print tools/uv-requirements.txt for one uv release: every platform wheel's sha256.

Usage: python tools/uv_pins.py VERSION > tools/uv-requirements.txt

Reads PyPI's simple index (JSON form, PEP 691). `make env` installs the pinned uv
from it, hash-checked, into .tools/uv when uv is not on PATH.
"""

from __future__ import annotations

import json
import sys
import urllib.request

INDEX = "https://pypi.org/simple/uv/"


def wheel_hashes(version: str) -> list[str]:
    req = urllib.request.Request(INDEX, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        files = json.load(r)["files"]
    prefix = f"uv-{version}-"
    hashes = sorted(
        f["hashes"]["sha256"]
        for f in files
        if f["filename"].startswith(prefix)
        and f["filename"].endswith(".whl")
        and not f.get("yanked")
    )
    if not hashes:
        raise SystemExit(f"uv {version}: no wheel on PyPI")
    return hashes


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        raise SystemExit(__doc__)
    version = argv[0]
    hashes = wheel_hashes(version)
    print("# uv for `make env` when uv is not on PATH: installed from PyPI into .tools/uv")
    print("# (pip install --require-hashes --no-deps --only-binary :all: --target .tools/uv).")
    print("# One hash per platform wheel of this version (PyPI's simple index). To update:")
    print("# python tools/uv_pins.py VERSION > tools/uv-requirements.txt")
    print(f"uv=={version} \\")
    for i, h in enumerate(hashes):
        print(f"    --hash=sha256:{h}" + (" \\" if i < len(hashes) - 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
