"""Merge the per-notebook results registries into one (`make results`).

Each notebook saves `results/<notebook>.json`; the merge is published as
`reports/results.json` with the paper. A key recorded by two notebooks is an error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis import paths
from analysis.io import write_atomic
from analysis.results import dumps, load
from pipeline.cli import entry


class DuplicateResult(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def combine(files: list[Path]) -> dict:
    """The per-notebook registries as one; a key recorded by two notebooks is an error
    (the paper stage publishes this as reports/results.json)."""
    merged: dict[str, dict] = {}
    for f in sorted(files):
        for k, v in load(f).items():
            if k in merged:
                raise DuplicateResult(
                    f"result {k!r} recorded by {merged[k]['notebook']} and {paths.rel(Path(f))}"
                )
            merged[k] = v
    return merged


def merge(files: list[Path], out: Path = paths.BUILD_OUT / "results.json") -> dict:
    """Merge per-notebook registries into `out`."""
    merged = combine(files)
    # always rewritten: make compares its date with the per-notebook files
    write_atomic(out, dumps(merged).encode("utf-8"))
    return merged


@entry
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.merge")
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=paths.BUILD_OUT / "results.json")
    a = ap.parse_args(argv)
    n = len(merge(a.files, a.out))
    print(f"[results] {n} results -> {paths.rel(a.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
