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
import os
import sys
import time
from pathlib import Path

from analysis import params, paths
from analysis.io import write_if_changed
from pipeline import fingerprint, lock, publish
from pipeline.cli import entry


def params_name(path: Path | str) -> str:
    """A parameters file as the paper names it: relative to the project root where it
    lies inside it (an absolute path elsewhere stays absolute), normalised."""
    shown = paths.rel(path) if Path(path).is_absolute() else str(path)
    return os.path.normpath(shown)


def write_stamps(
    params_file: Path | str | None, folder: Path, name: str | None = None
) -> list[str]:
    """Write one JSON stamp per section; rewrite a stamp only if its section changed.

    Make depends on these stamps, so editing one section of params.yaml
    reruns only the notebook that uses it (shared keys are part of every stamp).
    `file.txt` names the parameters file (`name`, else `params_file`) as the paper
    shows it: relative to the project root where it lies inside it.
    """
    p = params.load(params_file)
    shown = params_name(name or params_file or "params.yaml")
    write_if_changed(Path(folder) / "file.txt", shown + "\n")
    changed = []
    for name in params.SECTIONS:
        text = json.dumps(params.section(p, name), sort_keys=True, indent=1) + "\n"
        if write_if_changed(Path(folder) / f"{name}.json", text):
            changed.append(name)
    for old in sorted(Path(folder).glob("*.json")):  # a section removed: its stamp goes
        if old.stem not in params.SECTIONS:
            old.unlink()
            changed.append(old.stem)
    return changed


# The snapshot costs a python start (~1 s); after a complete build, make skips it
# while none of its inputs is newer than its start (see the Makefile, SNAPSHOT_FRESH).
STARTED = paths.BUILD / "snapshot.started"  # params file and start time of a clean snapshot
FRESH = paths.BUILD / "snapshot.ok"  # the same, confirmed by a complete build
# what it compares by content (a copy with an old date, `cp -p`, is no newer than it):
# the params file and the notebooks, as `sha256sum -c` checks them (the Makefile)
SUMS = paths.BUILD / "snapshot.sums"


def sums(params_file: str) -> str | None:
    """The sha256 of the params file and of each stage notebook, one `sha256sum` line
    each, named as make names them; None if one cannot be named or read (the check
    then fails and the snapshot runs). Taken before the snapshot reads them (an edit
    meanwhile fails the check), written only once it has checked them all."""
    lines = []
    for name in [params_file, *(paths.rel(p) for p in fingerprint.stages())]:
        if "\n" in name or "\\" in name:  # (a name `sha256sum -c` would read escaped)
            return None
        try:
            digest = fingerprint.sha256(paths.ROOT / name)
        except OSError:
            return None
        lines.append(f"{digest}  {name}\n")
    return "".join(lines)


def confirm() -> None:
    """Called by the paper stage after publishing: the snapshot this build started
    from holds until an input changes (its date is the snapshot's start)."""
    try:
        params_file, t0 = STARTED.read_text(encoding="utf-8").rsplit("\n", 1)
    except (OSError, ValueError):
        return
    FRESH.write_text(params_file, encoding="utf-8")
    os.utime(FRESH, (float(t0), float(t0)))


@entry
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.snapshot")
    ap.add_argument("--params", default=None, help="parameters file (default params.yaml)")
    ap.add_argument("--name", default=None, help="the parameters file as the paper names it")
    ap.add_argument("--owner", type=int, default=None, help="pid of the make that builds")
    ap.add_argument("--env-only", action="store_true", help="only the environment snapshot")
    a = ap.parse_args(argv)
    if a.env_only:
        fingerprint.write_env_snapshot()
        return 0
    # the build compiles the project's modules into src/<package>/__pycache__/ after
    # this snapshot starts (the Makefile's BYTECODE): made now, those folders leave
    # their parents' dates older than the snapshot, which the no-op check compares
    for package in ("analysis", "pipeline"):
        try:
            (paths.ROOT / "src" / package / "__pycache__").mkdir(exist_ok=True)
        except OSError:  # a read-only src/: nothing is compiled there
            pass
    t0 = time.time()
    STARTED.unlink(missing_ok=True)
    if a.owner:
        lock.acquire(a.owner)
    params_file = a.params or "params.yaml"  # as make names it (PARAMS)
    read = sums(params_file)
    changed = write_stamps(a.params, paths.BUILD / "params", a.name)
    if changed:
        print(f"params: sections changed: {', '.join(changed)}")
    nb_changed = fingerprint.write_notebook_snapshots()
    ignored = fingerprint.not_stages()
    if ignored:
        names = ", ".join(p.name for p in ignored)
        print(
            f"[build] not stages (stages are notebooks/NN_<section>.ipynb): {names}; "
            "scratch notebooks belong in scratch/"
        )
    env_changed, diffs = fingerprint.write_env_snapshot()
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
    if ignored or diffs:  # said again at every make until it is fixed
        FRESH.unlink(missing_ok=True)
        return 0
    STARTED.write_text(f"{params_file}\n{t0}", encoding="utf-8")
    if read is None:  # (checked: a failed snapshot leaves the last good ones, which differ)
        SUMS.unlink(missing_ok=True)
    else:
        SUMS.write_text(read, encoding="utf-8")
    same = FRESH.exists() and FRESH.read_text(encoding="utf-8") == params_file
    if same and not (changed or nb_changed or env_changed or bad):
        confirm()  # nothing changed since the complete build it confirmed
    else:
        FRESH.unlink(missing_ok=True)  # until this build completes
    return 0


if __name__ == "__main__":
    sys.exit(main())
