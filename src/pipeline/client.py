"""Run a build step in a warm interpreter: `python src/pipeline/client.py MODULE ARGS...`.

What `python -m MODULE ARGS...` does, without paying for the imports each time:
the warm server (`pipeline.kernels`, one per user and environment) has imported
pandas, matplotlib, statsmodels, papermill, nbconvert and the rest once, and forks
a fresh process for each step. The forked process gets this process's
environment, working directory, umask and standard streams, imports the
project's own code (`analysis`, `pipeline`) afresh from this checkout, and runs
MODULE as `__main__`; its exit status is this process's. Ctrl-C and SIGTERM are
passed on to it; if this process dies, the server kills it.

When there is no warm server (the first build, `KZ_FORK_KERNELS=0`, not Linux,
another user's), this starts one in the background (unless switched off) and
runs `python -m MODULE ARGS...` itself, the normal way: the result is the same,
only slower. Only the standard library is imported here (a start of ~20 ms).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

PROTOCOL = 2
WARMING = "-warming"  # the address the server holds while it imports
HERE = Path(__file__).resolve().parent
LOG = "kernels.log"
# the server's interpreter flags: those of ipykernel's kernel spec (a kernel forked
# from it must be what `python -Xfrozen_modules=off -m ipykernel_launcher` starts)
FLAGS = ["-Xfrozen_modules=off"]  # in the project's .build/: why a step or kernel was not forked


def enabled() -> bool:
    return os.environ.get("KZ_FORK_KERNELS", "1") != "0" and sys.platform == "linux"


def address() -> str:
    """The server's abstract socket name: one per user, environment (this
    interpreter's site-packages folder, and its date, which changes with every
    install) and server code (this file and pipeline/kernels.py, as this checkout
    has them)."""
    site = sysconfig.get_paths()["purelib"]
    try:
        mtime = os.stat(site).st_mtime_ns
    except OSError:
        mtime = 0
    code = hashlib.sha256()
    for name in ("client.py", "kernels.py"):
        code.update((HERE / name).read_bytes())
    key = json.dumps([PROTOCOL, os.getuid(), os.path.realpath(site), mtime, code.hexdigest()])
    return "\0kz-warm-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def listening(addr: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(addr)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def log(message: str) -> None:
    """One line in the project's .build/kernels.log (when it has a .build folder)."""
    root = os.environ.get("KZ_COMPENDIUM_ROOT")
    if not root or not os.path.isdir(os.path.join(root, ".build")):
        return
    try:
        with open(os.path.join(root, ".build", LOG), "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} [{os.getpid()}] {message}\n")
    except OSError:
        pass


def ensure_server(addr: str) -> bool:
    """True if the server at `addr` is ready to fork; else start it (unless it is
    already importing) and return False: the caller runs the normal way meanwhile."""
    if listening(addr):
        return True
    if listening(addr + WARMING):
        return False
    env = {k: v for k, v in os.environ.items() if k not in ("KZ_OUTPUT_DIR", "JPY_PARENT_PID")}
    root = env.get("KZ_COMPENDIUM_ROOT", "")
    try:  # its messages (imports that failed) go to the log of the project that started it
        out = open(os.path.join(root, ".build", LOG), "a") if root else None
    except OSError:
        out = None
    try:
        subprocess.Popen(
            [sys.executable, *FLAGS, "-m", "pipeline.kernels", "--serve"],
            stdin=subprocess.DEVNULL,
            stdout=out or subprocess.DEVNULL,
            stderr=out or subprocess.DEVNULL,
            env=env,
            cwd="/",
            start_new_session=True,  # Ctrl-C of make reaches the steps, not the server
        )
    except OSError as e:
        log(f"warm server not started: {e}")
    finally:
        if out:
            out.close()
    return False


def connect(addr: str, request: dict, fds: list[int]) -> tuple[socket.socket, int]:
    """Send `request` with `fds` to the server; return the connection and the pid
    of the forked process. OSError if the server cannot fork it."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        deadline = time.monotonic() + 10
        while True:  # the server may be between binding and listening
            try:
                conn.connect(addr)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        conn.settimeout(120)
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], fds)
        reply = b""
        while b"\n" not in reply:
            chunk = conn.recv(256)
            if not chunk:
                raise OSError("the warm server closed the connection")
            reply += chunk
        if not reply.startswith(b"pid "):
            raise OSError(reply.decode(errors="replace").strip())
        conn.settimeout(None)
        rest = reply.split(b"\n", 1)[1]
        if rest:  # already exited: keep its status for wait()
            conn = _Replay(conn, rest)  # type: ignore[assignment]
        return conn, int(reply.split()[1])
    except BaseException:
        conn.close()
        raise


class _Replay:
    """A connection whose first bytes were already read."""

    def __init__(self, conn: socket.socket, data: bytes) -> None:
        self.conn, self.data = conn, data

    def recv(self, n: int) -> bytes:
        if self.data:
            data, self.data = self.data, b""
            return data
        return self.conn.recv(n)

    def fileno(self) -> int:
        return self.conn.fileno()

    def close(self) -> None:
        self.conn.close()


def wait(conn: socket.socket, pid: int) -> int:
    """The exit status of the forked process `pid` (the server sends it)."""
    data = b""
    while True:
        chunk = conn.recv(256)
        data += chunk
        if b"\n" in data or not chunk:
            break
    conn.close()
    if data.startswith(b"exit "):
        return int(data.split()[1])
    while alive(pid):  # the server has gone: wait for the process itself
        time.sleep(0.05)
    return 1


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_module(module: str, args: list[str]) -> int:
    """Run `python -m module args` in a process forked by the warm server; raise
    OSError when that is not possible now."""
    if not enabled():
        raise OSError("switched off")
    addr = address()
    if not ensure_server(addr):
        raise OSError("warm server starting")
    umask = os.umask(0o022)
    os.umask(umask)
    request = {
        "kind": "module",
        "module": module,
        "argv": args,
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "umask": umask,
    }
    conn, pid = connect(addr, request, [0, 1, 2])

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except OSError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, forward)
    return wait(conn, pid)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python src/pipeline/client.py MODULE [ARGS...]", file=sys.stderr)
        return 2
    module, args = argv[0], argv[1:]
    try:
        return run_module(module, args)
    except OSError as e:
        if str(e) not in ("switched off", "warm server starting"):
            log(f"{module} not forked, run normally: {e}")
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *args])
    return 1  # not reached


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
