"""Publish the paper with its results, figures and executed notebooks, together.

The notebooks write into the build's own area (`.build/out/`); nothing reaches
`reports/` until the paper stage has checked every fingerprint and rendered the
paper. Then everything delivered is staged in `reports/.staging-<pid>/` and
moved into place file by file (each move atomic), the paper last, with a
`reports/.publishing` marker while it happens. If the paper stage fails,
`reports/` keeps the previous coherent set; if a publication is interrupted, the
marker tells the next build to publish again.

`reports/provenance.json` lists every delivered file with its sha256 and what
each notebook was made from. When make starts, `check_delivered` compares the
delivered files with it (a few small hashes) and, when one was edited, removed
or half-published, makes the paper stage run again.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pipeline
from analysis import paths
from pipeline.fingerprint import sha256

MANIFEST = "provenance.json"
MARKER = ".publishing"
# what the build delivers into reports/ (anything else there is left alone)
DELIVERED_DIRS = ("figures", "notebooks")
DELIVERED_FILES = ("paper.html", "results.json", MANIFEST)


def stage_and_publish(files: dict[str, bytes], reports: Path = paths.REPORTS) -> None:
    """Replace the delivered set in `reports/` by `files` ({relative path: bytes})."""
    reports.mkdir(parents=True, exist_ok=True)
    staging = reports / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for rel, blob in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_bytes(blob)
            os.chmod(staging / rel, 0o644)
        marker = reports / MARKER
        marker.write_text("publication in progress\n")
        order = sorted(files, key=lambda r: (r == "paper.html", r == MANIFEST, r))
        for rel in order:
            dst = reports / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.is_file() and dst.read_bytes() == files[rel] and rel != "paper.html":
                continue  # unchanged: keep its date
            os.replace(staging / rel, dst)
            pipeline.interrupted_note = (  # (what an interruption from now on leaves)
                "the new paper is in place; the next `make report` ends its publication"
                if rel == "paper.html"
                else "publication cut short; the next `make report` publishes again"
            )
        for sub in DELIVERED_DIRS:
            for p in (reports / sub).glob("*") if (reports / sub).is_dir() else []:
                if p.is_file() and str(p.relative_to(reports)) not in files:
                    p.unlink()
        shutil.rmtree(reports / "results", ignore_errors=True)  # layout before 0.2
        marker.unlink()
        pipeline.interrupted_note = "after the report was published"
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # the manifest is dated after every change of the publication (folders included):
    # a file in reports/ newer than it was changed by hand since
    os.utime(reports / MANIFEST)


def check_delivered(reports: Path = paths.REPORTS) -> list[str]:
    """Delivered files that differ from what the build published ([] if all match)."""
    manifest = reports / MANIFEST
    paper = reports / "paper.html"
    if not paper.exists():
        return []  # nothing delivered: make builds it anyway
    if (reports / MARKER).exists():
        return ["an interrupted publication"]
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, json.JSONDecodeError, KeyError):
        return [f"{paths.rel(manifest)} (missing or unreadable)"]
    bad = []
    for rel, h in files.items():
        p = reports / rel
        if not p.is_file():
            bad.append(f"{paths.rel(p)} (missing)")
        elif sha256(p) != h:
            bad.append(f"{paths.rel(p)} (edited after publication)")
    for sub in DELIVERED_DIRS:
        for p in (reports / sub).glob("*") if (reports / sub).is_dir() else []:
            if p.is_file() and str(p.relative_to(reports)) not in files:
                bad.append(f"{paths.rel(p)} (not published by the build)")
    return bad


def invalidate(path: Path) -> None:
    """Make a make target out of date without touching its content."""
    if path.exists():
        os.utime(path, ns=(0, 0))
