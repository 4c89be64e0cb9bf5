"""One build at a time in a checkout.

When make starts a build (while it reads the Makefile), `acquire` records the
make process in `.build/lock`. A second build in the same checkout, while that
make process lives, is refused with a message naming it; a lock left by a build
that died (killed, Ctrl-C, crash) is taken over, and that build's temporaries
(`.build/tmp/`, kernel sockets in $TMPDIR) are removed. The check-and-write runs
under an `fcntl.flock`, so two builds starting at the same instant cannot both
win.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import tempfile
import time
from pathlib import Path

from analysis import paths
from analysis.io import write_atomic
from pipeline import client

LOCK = paths.BUILD / "lock"
GUARD = paths.BUILD / "lock.guard"
KERNEL_SOCKETS_PREFIX = "kz-kernel-"


class BuildLocked(RuntimeError):
    """Another build runs in this checkout."""


def _start_time(pid: int) -> str | None:
    """Start time of a process (Linux /proc), to tell a live owner from a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def alive(pid: int, start: str | None = None) -> bool:
    if not client.exists(pid):
        return False
    now = _start_time(pid)
    return start is None or now is None or now == start


def holder() -> dict | None:
    """The live build holding the lock, or None."""
    try:
        info = json.loads(LOCK.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return info if alive(int(info.get("pid", 0)), info.get("start")) else None


def acquire(owner: int, what: str = "build") -> bool:
    """Take the lock for process `owner` (make); True if a stale lock was taken over."""
    paths.BUILD.mkdir(parents=True, exist_ok=True)
    with open(GUARD, "a") as g:
        fcntl.flock(g, fcntl.LOCK_EX)
        current = holder()
        if current and int(current["pid"]) == owner:
            return False  # the same make, asking again
        if current:
            since = time.strftime("%H:%M:%S", time.localtime(current.get("time", 0)))
            raise BuildLocked(
                f"another build is running in this checkout ({current.get('what', 'build')}, "
                f"make pid {current['pid']}, since {since}): wait for it to finish, or stop it"
            )
        stale = LOCK.exists()
        info = {"pid": owner, "start": _start_time(owner), "time": time.time(), "what": what}
        write_atomic(LOCK, json.dumps(info).encode())  # (no temporary left if interrupted)
        clean_temporaries()  # under the guard: no runner of this make has started yet
    return stale


def clean_temporaries() -> list[str]:
    """Remove what earlier (killed) builds left: only called while holding the lock."""
    removed = []
    if paths.BUILD_TMP.exists():
        for p in paths.BUILD_TMP.iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(paths.rel(p))
    for p in Path(tempfile.gettempdir()).glob(f"{KERNEL_SOCKETS_PREFIX}*"):
        # kz-kernel-<pid>-XXXX: sockets of a runner; removed when that runner is gone
        try:
            pid = int(p.name[len(KERNEL_SOCKETS_PREFIX) :].split("-")[0])
        except ValueError:
            continue
        if not alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(str(p))
    for stale in paths.REPORTS.glob(".staging-*") if paths.REPORTS.exists() else []:
        shutil.rmtree(stale, ignore_errors=True)
        removed.append(paths.rel(stale))
    return removed
