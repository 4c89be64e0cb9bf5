"""Safe writes: atomic replacement, and no rewrite when the content is unchanged."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder.

    A reader never sees a half-written file and a failure leaves the old file. The
    temporary file is named first and created inside the block that removes it on
    any exception: a Ctrl-C at any moment leaves none behind (with `mkstemp`, one
    arriving as it returned, after it had made the file, left it there).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except PermissionError as e:  # name the file we meant to write, not a temporary
        raise PermissionError(e.errno, e.strerror, str(path)) from None
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # (as mkstemp)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except FileExistsError:  # (another writer's temporary file of that name: not ours)
        raise
    except BaseException as e:
        with contextlib.suppress(OSError):  # (never in place of what went wrong)
            tmp.unlink(missing_ok=True)
        if isinstance(e, PermissionError):  # name the file we meant to write, not a temporary
            raise PermissionError(e.errno, e.strerror, str(path)) from None
        raise


def write_if_changed(path: Path, data: bytes | str) -> bool:
    """Write only if the bytes differ from what is on disk; return True if written.

    Keeping the old file (and its mtime) untouched is what lets `make` skip
    the stages downstream of an unchanged table.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = Path(path)
    if path.exists() and path.read_bytes() == data:
        return False
    write_atomic(path, data)
    return True
