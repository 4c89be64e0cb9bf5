"""What make runs while it reads the Makefile, before any stage (one quick process).

    python -m pipeline.snapshot --params params.yaml --owner <make pid>

1. takes the build lock for this make (a second build in the checkout is refused)
   and removes what a killed build left behind;
2. validates the parameters file (schema, duplicate keys, values against the data)
   and writes one snapshot per section, `.build/params/<section>.json`: the
   notebooks run on these snapshots, never on params.yaml itself;
3. writes the notebook snapshots (outputs and volatile metadata removed) and
   says which notebooks in notebooks/ are not stages;
4. writes the environment snapshot and warns when the installed packages differ
   from requirements.lock;
5. checks the delivered reports/ against what the build published; if a file
   was edited or removed, the paper stage runs again.

Any problem: one line on stderr, exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analysis import params, paths
from analysis.io import write_if_changed
from pipeline import fingerprint, lock, publish
from pipeline.cli import entry


def write_stamps(params_file: Path | str | None, folder: Path) -> list[str]:
    """Write one JSON stamp per section; rewrite a stamp only if its section changed.

    Make depends on these stamps, so editing one section of params.yaml
    reruns only the notebook that uses it (shared keys are part of every stamp).
    """
    p = params.load(params_file)
    changed = []
    for name in params.SECTIONS:
        text = json.dumps(params.section(p, name), sort_keys=True, indent=1) + "\n"
        if write_if_changed(Path(folder) / f"{name}.json", text):
            changed.append(name)
    return changed


@entry
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.snapshot")
    ap.add_argument("--params", default=None, help="parameters file (default params.yaml)")
    ap.add_argument("--owner", type=int, default=None, help="pid of the make that builds")
    ap.add_argument("--env-only", action="store_true", help="only the environment snapshot")
    a = ap.parse_args(argv)
    if a.env_only:
        fingerprint.write_env_snapshot()
        return 0
    if a.owner:
        lock.acquire(a.owner)
    changed = write_stamps(a.params, paths.BUILD / "params")
    if changed:
        print(f"params: sections changed: {', '.join(changed)}")
    fingerprint.write_notebook_snapshots()
    ignored = fingerprint.not_stages()
    if ignored:
        names = ", ".join(p.name for p in ignored)
        print(
            f"[build] not stages (stages are notebooks/NN_<section>.ipynb): {names}; "
            "scratch notebooks belong in scratch/"
        )
    _, diffs = fingerprint.write_env_snapshot()
    if diffs:
        shown = ", ".join(diffs[:4]) + (f" and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        print(
            f"[env] warning: installed packages differ from requirements.lock: {shown}; "
            "the paper lists what ran (`make env` reinstalls the lock)"
        )
    bad = publish.check_delivered()
    if bad:
        print(
            f"[report] delivered reports differ from the last publication: {bad[0]}"
            f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}; publishing again"
        )
        publish.invalidate(paths.REPORTS / "paper.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
