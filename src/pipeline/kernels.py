"""Forked kernels: a pre-imported interpreter forks a fresh kernel for each notebook.

A new kernel spends ~4 s importing pandas, matplotlib, seaborn, statsmodels and
scipy before a notebook does any work. In the build, the runner instead asks a
*fork server*: one interpreter per build (per make process), started on demand by
the first runner, that imports those libraries once and forks one child per
notebook. The child runs `ipykernel_launcher` exactly as `python -m
ipykernel_launcher -f <connection file>` would, so each notebook still runs in its
own process, with papermill's parameter injection and executed copy unchanged.

- Only work a fresh kernel would redo identically is shared: third-party modules
  and the kernel machinery, imported before any zmq context, thread or event loop
  exists in the server (it stays single-threaded). Nothing that reads a notebook's
  environment at import time is shared: the `analysis` submodules (they read
  `KZ_OUTPUT_DIR`) and `ipykernel.kernelapp` (it reads `JPY_PARENT_PID`) are
  imported in the child. matplotlib is imported with the backend ipykernel sets
  (`MPLBACKEND`), and its rcParams in the child are those of a plain import.
- The child gets what a normal launch gives: the runner's environment for the
  kernel, its working directory, a new session, the runner's stdout and stderr
  (passed over the socket), a closed stdin pipe, default signal handlers, fresh
  `__main__`, `sys.argv`, `sys.path[0]` and random seeds.
- The server listens on an abstract unix socket named after the project, the
  interpreter and the build (make pid) once its imports are done (while it
  imports, a notebook starts its kernel the normal way, so the first stage never
  waits for it), accepts only its own user, kills a kernel
  whose runner disconnects, reaps its children and reports their exit status, and
  exits when the build is over (the make process has gone) or after `IDLE`
  seconds without a kernel.
- `KZ_FORK_KERNELS=0` turns it off. Outside the build, on a platform without
  abstract unix sockets (not Linux), with a kernel spec that is not
  `python -m ipykernel_launcher`, or when the server cannot start, the runner
  starts kernels the normal way; the reason is logged in `.build/kernels.log`.

    python -m pipeline.kernels --serve --owner PID   (started by the runner)
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import io
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Any, NoReturn

from jupyter_client.manager import KernelManager

from analysis import paths
from pipeline import lock

# What a fresh kernel would import (the runner's notebooks, the `analysis` helpers'
# dependencies) and can be shared: no module here reads a notebook's environment.
PRELOAD = (
    "analysis",  # only the package: its jsonschema start-up fix must come first
    "ipykernel.ipkernel",
    "numpy",
    "pandas",
    "scipy.stats",
    "statsmodels.api",
    "matplotlib",
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
    "seaborn",
    "PIL.Image",
    "pydantic",
    "yaml",
)
# imported in the child, never shared (they read the kernel's environment at import)
NOT_SHARED = ("pipeline", "analysis.", "ipykernel.kernelapp")
IDLE = float(os.environ.get("KZ_FORK_IDLE", "30"))  # seconds without a kernel
LOG = paths.BUILD / "kernels.log"
START_TIMEOUT = 120.0  # seconds for the server to fork
WARMING = "-warming"  # the address the server holds while it imports


def enabled() -> bool:
    return os.environ.get("KZ_FORK_KERNELS", "1") != "0" and sys.platform == "linux"


def log(message: str) -> None:
    """One line in .build/kernels.log (why a kernel was not forked, server events)."""
    try:
        LOG.parent.mkdir(parents=True, exist_ok=True)
        with open(LOG, "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} [{os.getpid()}] {message}\n")
    except OSError:
        pass


def interpreter(kernel_argv: list[str]) -> list[str] | None:
    """`[python, *flags]` of a kernel spec `python *flags -m ipykernel_launcher -f {..}`."""
    try:
        i = kernel_argv.index("-m")
    except ValueError:
        return None
    if kernel_argv[i + 1 : i + 2] != ["ipykernel_launcher"] or kernel_argv[i + 2 :] != [
        "-f",
        "{connection_file}",
    ]:
        return None
    return kernel_argv[:i]


def address(owner: int, python: list[str]) -> str:
    """The server's abstract socket name: one per project, interpreter and build."""
    key = json.dumps([str(paths.ROOT), owner, lock._start_time(owner), python])
    return "\0kz-forkserver-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _listening(addr: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(addr)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def ensure_server(owner: int, python: list[str]) -> str | None:
    """The build's fork server's address if it is ready to fork; else None, after
    starting it unless it is already importing (no waiting: a notebook that finds
    it still importing starts its kernel the normal way meanwhile, on the other core)."""
    addr = address(owner, python)
    if _listening(addr):
        return addr
    if _listening(addr + WARMING):
        return None
    env = {k: v for k, v in os.environ.items() if k not in ("KZ_OUTPUT_DIR", "JPY_PARENT_PID")}
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(LOG, "a") as out:
        subprocess.Popen(
            [*python, "-m", "pipeline.kernels", "--serve", "--owner", str(owner)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            cwd=paths.NOTEBOOKS,
            start_new_session=True,  # Ctrl-C of make reaches the runners, not the server
        )
    return None


class ForkedKernel:
    """A forked kernel seen like the `Popen` of a normal launch (poll, wait, signals).

    It is the fork server's child: its exit status arrives over the socket the
    runner keeps open (closing it makes the server kill the kernel)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, conn: socket.socket) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._conn: socket.socket | None = conn

    def _read(self, timeout: float) -> None:
        """Take the exit status from the server's message (or, if the server has
        gone, see whether the pid still exists)."""
        conn = self._conn
        if conn is not None:
            if not select.select([conn], [], [], timeout)[0]:
                return
            data = conn.recv(256)
            if data.startswith(b"exit "):
                self.returncode = int(data.split()[1])
                self.close()
                return
            if data:
                return
            self.close()  # the server has gone: the kernel, if alive, was reparented
        elif timeout:
            time.sleep(timeout)
        if not lock.alive(self.pid):
            self.returncode = -signal.SIGKILL

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0)
            self._read(0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def fork_kernel(addr: str, cmd: list[str], env: dict[str, str], cwd: str) -> ForkedKernel:
    """Ask the server at `addr` for a kernel running `cmd`; OSError if it cannot."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        deadline = time.monotonic() + 10
        while True:  # the server may still be binding
            try:
                conn.connect(addr)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        conn.settimeout(START_TIMEOUT)
        request = json.dumps({"cmd": cmd, "env": env, "cwd": cwd}).encode() + b"\n"
        socket.send_fds(conn, [request], [sys.stdout.fileno(), sys.stderr.fileno()])
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = conn.recv(256)
            if not chunk:
                raise OSError("the fork server closed the connection")
            reply += chunk
        if not reply.startswith(b"pid "):
            raise OSError(reply.decode(errors="replace").strip())
        conn.settimeout(None)
        kernel = ForkedKernel(int(reply.split()[1]), conn)
        if b"\nexit " in reply:  # it died at once
            kernel.returncode = int(reply.split(b"\nexit ")[1].split()[0])
            kernel.close()
        return kernel
    except BaseException:
        conn.close()
        raise


class ForkKernelManager(KernelManager):
    """A KernelManager whose kernel process is forked by the build's fork server;
    everything else (connection file, ports, env, client, shutdown) is jupyter_client's.
    Falls back to the normal launch, logged, when the server cannot fork it."""

    fork_owner = 0  # the build (make pid) whose server forks this kernel

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        python = interpreter(self.kernel_spec.argv) if self.kernel_spec else None
        proc = None
        if python:
            env = dict(kw.get("env") or os.environ)
            if not kw.get("independent"):
                env["JPY_PARENT_PID"] = str(os.getpid())  # as launch_kernel sets it
            try:
                addr = ensure_server(self.fork_owner, python)
                if addr:
                    proc = fork_kernel(addr, kernel_cmd, env, str(kw.get("cwd") or os.getcwd()))
            except OSError as e:
                log(f"kernel not forked, started normally: {e}")
        if proc is None:
            await super()._async_launch_kernel(kernel_cmd, **kw)
            return
        prov: Any = self.provisioner  # LocalProvisioner: poll, wait, signals via .process
        prov.process, prov.pid, prov.pgid = proc, proc.pid, proc.pid  # own session
        prov.cwd = kw.get("cwd")
        self._reconcile_connection_info(prov.connection_info)


def start(owner: int | None, kernel_name: str) -> int | None:
    """Start the fork server of the build `owner` (make pid) if it is not running, so
    that it imports while the runner imports papermill; return the owner to pass to
    `manager`, or None when kernels are not forked (switched off, unsupported)."""
    if not (owner and enabled()):
        return None
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        python = interpreter(KernelSpecManager().get_kernel_spec(kernel_name).argv)
        if python is None:
            log(f"kernels not forked: kernel spec {kernel_name} is not a python -m ipykernel")
            return None
        ensure_server(owner, python)
    except Exception as e:  # noqa: BLE001 - any failure: the normal path, logged
        log(f"kernels not forked: fork server not started: {e}")
        return None
    return owner


def manager(owner: int | None, **kw: Any) -> KernelManager:
    """The kernel manager of a run: forked kernels when `owner` (from `start`) is
    set, else jupyter_client's own."""
    if not owner:
        return KernelManager(**kw)
    km = ForkKernelManager(**kw)
    km.fork_owner = owner
    return km


# ---------------------------------------------------------------- the server


class ZMQInteractiveShell:
    """What a library imported in a kernel finds as `get_ipython()`: pandas, for one,
    chooses its display options at import (`display.max_columns` is 0 in a terminal,
    20 in a kernel). Seen only while the server imports; the child has the real one."""

    kernel = True


def _preload() -> dict[str, Any]:
    """Import PRELOAD as a kernel would (MPLBACKEND set by ipykernel before user code,
    `get_ipython` a kernel's shell); return the rcParams of a plain matplotlib import."""
    import builtins
    import importlib
    import warnings

    mpl_env = os.environ.get("MPLBACKEND")
    if not mpl_env:
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    shell = ZMQInteractiveShell()
    builtins.get_ipython = lambda: shell  # type: ignore[attr-defined]
    rc: dict[str, Any] = {}
    try:
        with warnings.catch_warnings(record=True) as caught:
            for name in PRELOAD:
                try:
                    importlib.import_module(name)
                except Exception as e:  # noqa: BLE001 - not installed: a kernel imports it
                    log(f"fork server: not preloaded {name}: {e}")
                if name == "matplotlib" and "matplotlib" in sys.modules:
                    rc = dict(sys.modules["matplotlib"].rcParams)
    finally:
        del builtins.get_ipython  # type: ignore[attr-defined]
        if not mpl_env:
            del os.environ["MPLBACKEND"]
    for w in caught:
        log(f"fork server: warning while preloading: {w.message}")
    return rc


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds = b"", []
    conn.settimeout(10)
    while not data.endswith(b"\n"):
        chunk, more, _, _ = socket.recv_fds(conn, 1 << 20, 4)
        if not chunk:
            raise OSError("request cut short")
        data += chunk
        fds += more
    return json.loads(data), fds


def _stdio() -> None:
    """New sys.stdin/stdout/stderr on fds 0-2, as the interpreter makes them at start."""
    for name, fd in (("stdin", 0), ("stdout", 1), ("stderr", 2)):
        old = getattr(sys, name)
        binary = open(fd, "rb" if fd == 0 else "wb", closefd=False)
        stream = io.TextIOWrapper(
            binary,
            encoding=old.encoding,
            errors=old.errors,
            line_buffering=fd == 2 or os.isatty(fd),
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _forget(prefixes: tuple[str, ...]) -> None:
    """Remove modules from sys.modules and from their package, so that the next
    import runs them afresh."""
    for name in [m for m in sys.modules if m.startswith(prefixes)]:
        del sys.modules[name]
        package, _, attr = name.rpartition(".")
        if package in sys.modules and getattr(sys.modules[package], attr, None) is not None:
            delattr(sys.modules[package], attr)


def _child(
    request: dict[str, Any], fds: list[int], rc: dict[str, Any], close: list[Any]
) -> NoReturn:
    """In the forked child: become a fresh kernel process, run ipykernel_launcher."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for s in close:
            s.close() if hasattr(s, "close") else os.close(s)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        r, w = os.pipe()  # stdin: a pipe closed by the launcher, as in launch_kernel
        os.close(w)
        for target, fd in ((0, r), (1, fds[0]), (2, fds[1])):
            os.dup2(fd, target)
        for fd in (r, *fds):
            os.close(fd)
        _stdio()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        cmd = request["cmd"]
        sys.argv = ["ipykernel_launcher", *cmd[cmd.index("-m") + 2 :]]
        sys.path[0] = os.getcwd()  # what `python -m` puts first
        _forget(NOT_SHARED)
        if "matplotlib" in sys.modules and rc:
            dict.update(sys.modules["matplotlib"].rcParams, rc)
        if "numpy.random" in sys.modules:
            sys.modules["numpy.random"].seed()  # a fresh process draws a new seed
        import runpy

        runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()  # as at a normal interpreter exit
        except BaseException:  # noqa: BLE001, S110
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110
                pass
        os._exit(code)


class Server:
    """The fork server of one build: accepts requests, forks kernels, reaps them."""

    def __init__(self, owner: int) -> None:
        self.owner, self.owner_start = owner, lock._start_time(owner)
        self.python = sys.orig_argv[: sys.orig_argv.index("-m")]
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.kernels: dict[int, socket.socket] = {}  # pid -> its runner's connection
        self.orphans: dict[int, socket.socket] = {}  # runner gone: killed, to be reaped
        self.rc: dict[str, Any] = {}

    def build_over(self) -> bool:
        return not lock.alive(self.owner, self.owner_start)

    def run(self) -> int:
        warming = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:  # claimed while importing: runners start their kernels normally meanwhile
            warming.bind(address(self.owner, self.python) + WARMING)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return 0  # another runner started it first
            raise
        warming.listen(1)
        t0 = time.monotonic()
        self.rc = _preload()
        self.listener.bind(address(self.owner, self.python))
        self.listener.listen(64)
        warming.close()
        log(f"fork server for make pid {self.owner} ready in {time.monotonic() - t0:.1f}s")
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select through wake_w
        last = time.monotonic()
        while True:
            if self.build_over():
                for pid in list(self.kernels):
                    self.drop(pid)
            if self.kernels or self.orphans:
                last = time.monotonic()
            elif self.build_over() or time.monotonic() - last > IDLE:
                break
            watched: list[Any] = [self.listener, self.wake_r, *self.kernels.values()]
            ready = select.select(watched, [], [], 0.5)[0]
            try:
                os.read(self.wake_r, 512)
            except BlockingIOError:
                pass
            self.reap()
            for sock in ready:
                if sock is self.listener:
                    self.accept()
                elif isinstance(sock, socket.socket):
                    gone = next((p for p, c in self.kernels.items() if c is sock), None)
                    if gone is not None and not sock.recv(256):
                        self.drop(gone)  # its runner has gone: kill it, as its parent would
        # (no log line here: the build may be removing the project folder already)
        return 0

    def drop(self, pid: int) -> None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        self.orphans[pid] = self.kernels.pop(pid)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.kernels.pop(pid, None) or self.orphans.pop(pid, None)
            if conn is not None:
                try:
                    conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
                except OSError:
                    pass
                conn.close()

    def accept(self) -> None:
        conn, _ = self.listener.accept()
        fds: list[int] = []
        try:
            if _peer_uid(conn) != os.getuid():
                raise OSError("refused: another user")
            request, fds = _receive(conn)
            cmd = request["cmd"]
            if len(fds) != 2 or cmd[: len(self.python) + 2] != [
                *self.python,
                "-m",
                "ipykernel_launcher",
            ]:
                raise OSError(f"cannot fork {cmd} from {self.python}")
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                close = [self.listener, self.wake_r, self.wake_w, conn]
                _child(
                    request, fds, self.rc, [*close, *self.kernels.values(), *self.orphans.values()]
                )
            conn.settimeout(None)
            conn.sendall(f"pid {pid}\n".encode())
            self.kernels[pid] = conn
        except (OSError, ValueError, KeyError) as e:
            try:
                conn.sendall(f"error {e}\n".encode())
            except OSError:
                pass
            conn.close()
        finally:
            for fd in fds:
                os.close(fd)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.kernels", description=__doc__)
    ap.add_argument("--serve", action="store_true", help="run the fork server of a build")
    ap.add_argument("--owner", type=int, required=True, help="the build's make pid")
    a = ap.parse_args(argv)
    return Server(a.owner).run()


if __name__ == "__main__":
    raise SystemExit(main())
