"""`make checksums`: validate changed raw files, then record their new sha256 sums."""

from __future__ import annotations

import argparse
import sys

from analysis.data import DataValidationError, load_all, update_checksums
from pipeline.cli import entry


@entry
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m pipeline.checksums",
        description="Validate the raw data package; --update records new sha256 sums.",
    )
    ap.add_argument(
        "--update", action="store_true", help="validate changed raw files, then record their sums"
    )
    a = ap.parse_args(argv)
    if a.update:
        try:
            changed = update_checksums()
        except DataValidationError as e:
            print(f"error: {e}; checksum not recorded", file=sys.stderr)
            return 1
        print("updated: " + (", ".join(changed) if changed else "nothing changed"))
    for name, df in load_all().items():
        print(f"ok  {name:28s} {len(df):4d} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
