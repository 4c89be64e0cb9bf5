"""Run a build step in a warm interpreter: `python src/pipeline/step.py MODULE ARGS...`.

What `python -m MODULE ARGS...` does, without paying for the imports each time:
the warm server (`pipeline.kernels`, one per user and environment) has imported
pandas, matplotlib, statsmodels, papermill, nbconvert and the rest once, and forks
a fresh process for each step. The forked process gets this process's
environment, working directory, umask, ignored signals and standard streams,
imports the project's own code (`analysis`, `pipeline`) afresh from this
checkout, and runs MODULE as `__main__`; its exit status (or the signal that
ended it) is this process's. Ctrl-C, SIGTERM, SIGHUP and SIGQUIT are passed on
to it; if this process dies, the server kills it.

The server is only trusted when it runs as this user (its credentials are
checked on every connection), and only used when it was started with the same
interpreter settings (the environment variables Python, the locale, matplotlib
and the maths libraries read at start-up are part of its address, and the
matplotlib settings files a process started here would read). When there
is none (the first build, `KZ_FORK_KERNELS=0`, not Linux), this starts one in
the background (not with `--no-start`, used by the git filter) and runs `python
-m MODULE ARGS...` itself, the normal way: the result is the same, only slower.
Only a few standard modules are imported here (a step that does nothing takes ~40
ms, the interpreter's start included); the Makefile runs it through `step.py`, so
that this module's compiled bytecode is used.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
import sys
import sysconfig
import time
from collections.abc import Mapping

try:  # hashlib's sha256 without importing hashlib (~3 ms a step)
    from _sha256 import sha256  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - (Python 3.12 renamed the module)
    from hashlib import sha256

PROTOCOL = 4
WARMING = "-warming"  # the name the server holds (bound, not listening) while it imports
# (no pathlib, and subprocess only to start a server: every build step starts this file)
HERE = os.path.dirname(os.path.realpath(__file__))
SRC = os.path.dirname(HERE)
LOG = "kernels.log"  # in the project's .build/: why a step or kernel was not forked
# the server's interpreter flags: those of ipykernel's kernel spec (a kernel forked
# from it must be what `python -Xfrozen_modules=off -m ipykernel_launcher` starts)
FLAGS = ["-Xfrozen_modules=off"]
# what an interpreter and the preloaded libraries read from the environment when they
# start or are imported: a caller with other values gets another server
# (and KZ_WARM_SERVER, a name: a caller that sets one gets a server of its own, started
# afresh, as `make verify` does for its re-execution). Plain string tests, not a
# regular expression: `re` alone costs every step ~6 ms to import.
STARTUP_NAMES = frozenset(
    {"KZ_WARM_SERVER", "LANG", "LANGUAGE", "TZ", "HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"}
    | {"MATPLOTLIBRC", "IDE_PROJECT_ROOTS", "LIBRARY_ROOTS"}  # (the last two: debugpy)
    # what the preloaded libraries read when imported, and keep (pandera's two
    # set-unless-set variables are not among them: kernels.SET_UNLESS_SET)
    | {"DISABLE_PANDERA_IMPORT_WARNING", "SILENCE_WARNING_PYDANTIC_MODEL", "SM_FORMULA_ENGINE"}
    | {"PYPARSINGENABLEALLWARNINGS", "NBFORMAT_VALIDATOR", "PYZMQ_BACKEND", "PY_SAX_PARSER"}
    | {"TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR", "SETUPTOOLS_USE_DISTUTILS"}
    | {"XDG_DATA_HOME"}  # (matplotlib's font folders, nbconvert's template paths)
    | {"PATHS_FROM_ECLIPSE_TO_PYTHON", "DEBUG_PYDEVD_PATHS_TRANSLATION"}  # (debugpy)
)
STARTUP_PREFIXES = (
    *("PYTHON", "LC_", "MPL", "OPENBLAS_", "MKL_", "JUPYTER_", "IPYTHON"),
    *("PYDEV_", "PYDEVD_", "DEBUGPY_", "GEVENT_", "PYCHARM_"),  # debugpy
    # the preloaded libraries' own settings, read when they are imported
    *("NPY_", "NUMPY_", "PANDAS_", "SCIPY_", "PILLOW_", "PANDERA_", "PATSY_"),
    *("WRAPT_", "PYDANTIC_", "TYPEGUARD_", "TORNADO_"),
)


def startup_var(name: str) -> bool:
    """Whether the environment variable `name` is read at start-up or import (above):
    those names, those prefixes (but PYTHONPATH, see `_foreign_path`) and *_NUM_THREADS."""
    return (
        name in STARTUP_NAMES
        or name.endswith("_NUM_THREADS")
        or (name.startswith(STARTUP_PREFIXES) and name != "PYTHONPATH")
    )


def encode(message: dict) -> bytes:
    """A message to the server as one line: its Python literal (`repr` of plain dicts,
    lists, strings and numbers has no newline and escapes lone surrogates). json and
    its `re` would cost every step ~10 ms to import."""
    return repr(message).encode() + b"\n"


def decode(line: bytes) -> object:
    """The message `encode` made, read as a literal only (`ast.literal_eval`: no code
    runs, and the work is bounded by the line's length); ValueError if it is not one."""
    import ast

    try:
        return ast.literal_eval(line.decode())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise ValueError(f"not a request: {type(e).__name__}") from None


FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# what a caller that has its step's status line tells the server before it closes the
# connection: the step is ending, reap it (a closed connection alone means the caller
# died: the server kills the step's process group, as a dying parent's would end)
RELEASED = b"released\n"


class NotServed(OSError):
    """The step cannot be forked now: run it the normal way."""


def enabled() -> bool:
    return os.environ.get("KZ_FORK_KERNELS", "1") != "0" and sys.platform == "linux"


def _foreign_path(env: Mapping[str, str] = os.environ, cwd: str | None = None) -> list[str]:
    """PYTHONPATH entries other than a checkout's src/ (which holds only the project's
    code, imported afresh by every child): they could shadow a preloaded library.
    A relative entry is the folder it names from the working directory `cwd` of the
    process to start (this one's by default), as Python's start-up resolves it: a
    kernel's is its notebook's folder."""
    here = os.path.abspath(cwd or ".")
    entries = [
        os.path.normpath(os.path.join(here, p))
        for p in env.get("PYTHONPATH", "").split(os.pathsep)
        if p
    ]
    return [p for p in entries if not os.path.isfile(os.path.join(p, "pipeline", "client.py"))]


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return sha256(f.read()).hexdigest()
    except OSError:
        return None


def mpl_files(env: Mapping[str, str] = os.environ, cwd: str | None = None) -> list[object]:
    """What matplotlib reads from files when it is imported, for a process started in
    `cwd` with `env` (its variables alone do not say it): the contents of the
    matplotlibrc it takes, found as `matplotlib.matplotlib_fname` finds it (in the
    working directory first, then $MATPLOTLIBRC, then the configuration folder;
    none: the library's own defaults), and of the style sheets in the configuration
    folder's stylelib/ (loaded by `matplotlib.style` when it is imported)."""
    here = os.path.abspath(cwd or ".")
    if env.get("MPLCONFIGDIR"):
        config = os.path.join(here, env["MPLCONFIGDIR"])
    else:  # (as matplotlib: relative names from the working directory)
        home = env.get("HOME") or os.path.expanduser("~")
        xdg = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        config = os.path.join(here, xdg, "matplotlib")
    candidates = [os.path.join(here, "matplotlibrc")]
    if "MATPLOTLIBRC" in env:
        rc = os.path.join(here, env["MATPLOTLIBRC"])
        candidates += [rc, os.path.join(rc, "matplotlibrc")]
    candidates.append(os.path.join(config, "matplotlibrc"))
    rc_digest = next(
        (d for c in candidates if os.path.isfile(c) for d in [_file_digest(c)] if d), None
    )
    styles = os.path.join(config, "stylelib")
    try:
        names = sorted(n for n in os.listdir(styles) if n.endswith(".mplstyle"))
    except OSError:
        names = []
    return [rc_digest, [(n, _file_digest(os.path.join(styles, n))) for n in names]]


def address(env: Mapping[str, str] = os.environ, cwd: str | None = None) -> str:
    """The server's abstract socket name: one per user, environment (this
    interpreter's site-packages folder, and its date, which changes with every
    install), start-up settings (`startup_var`, foreign PYTHONPATH entries, of
    `env`; relative ones from `cwd`; the matplotlib files that `env` and `cwd` make
    it read at import: `mpl_files`) and server code (this file, pipeline/kernels.py
    and analysis/__init__.py, which the server imports, as this checkout has them)."""
    site = sysconfig.get_paths()["purelib"]
    try:
        mtime = os.stat(site).st_mtime_ns
    except OSError:
        mtime = 0
    code = sha256()
    for path in (f"{HERE}/client.py", f"{HERE}/kernels.py", f"{SRC}/analysis/__init__.py"):
        with open(path, "rb") as f:
            code.update(f.read())
    startup = sorted((k, v) for k, v in env.items() if startup_var(k))
    key = [PROTOCOL, os.getuid(), os.path.realpath(site), mtime, code.hexdigest()]
    key += [startup, _foreign_path(env, cwd), mpl_files(env, cwd)]
    return "\0kz-warm-" + sha256(repr(key).encode()).hexdigest()[:24]


def checkout_servers(env: Mapping[str, str], root: str) -> dict[str, str]:
    """The servers of a checkout's build, {address: folder asked from}: its steps'
    (from the root) and its kernels' (from notebooks/): one, unless a matplotlibrc
    in one of the two folders makes them two (`mpl_files`)."""
    return {address(env, d): d for d in (root, os.path.join(root, "notebooks"))}


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def _connect(addr: str, timeout: float = 1.0) -> socket.socket:
    """A connection to the server at `addr`, which must run as this user (an abstract
    name can be bound by anyone). OSError if there is none, or another user's."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(addr)
        if peer_uid(sock) != os.getuid():
            raise NotServed(f"{addr[1:]} is held by another user's process")
        return sock
    except BaseException:
        sock.close()
        raise


def listening(addr: str) -> bool:
    try:
        _connect(addr).close()
        return True
    except OSError:
        return False


def warming(addr: str) -> bool:
    """Whether a server is importing (it holds the name `addr + WARMING`, bound but
    not listening, so a probe never waits on it)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.bind(addr + WARMING)
        return False
    except OSError:
        return True
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


def ensure_server(
    addr: str, start: bool = True, caller: Mapping[str, str] = os.environ, cwd: str | None = None
) -> bool:
    """True if the server at `addr` is ready to fork; else start it (if `start` and
    it is not importing already; with the environment `caller`, whose relative
    PYTHONPATH entries are from `cwd`) and return False: the caller runs the normal
    way meanwhile."""
    if listening(addr):
        return True
    if not start or warming(addr):
        return False
    env = {k: v for k, v in caller.items() if k not in ("KZ_OUTPUT_DIR", "JPY_PARENT_PID")}
    # its own code from this checkout (the code `address` hashed), whoever calls
    env["PYTHONPATH"] = os.pathsep.join([SRC, *_foreign_path(caller, cwd)])
    where = os.path.abspath(cwd or ".")
    root = env.get("KZ_COMPENDIUM_ROOT", "")
    try:  # its messages (imports that failed) go to the log of the project that started it
        out = open(os.path.join(root, ".build", LOG), "a") if root else None
    except OSError:
        out = None
    import subprocess

    try:
        subprocess.Popen(
            # (it imports in `cwd`, as its caller, and a kernel there, would: the
            # matplotlibrc found there; then it works in /)
            [server_python(), *FLAGS, "-m", "pipeline.kernels", "--serve", "--cwd", where],
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


def start_and_wait(
    where: Mapping[str, str], caller: Mapping[str, str], timeout: float = 120.0
) -> float | None:
    """Start the servers of `where` ({address: folder asked from}, `checkout_servers`)
    that are not running, with the environment `caller`, and wait until every one is
    ready: the seconds that took, or None if they were not ready within `timeout`
    (the steps then start the normal way)."""
    t0 = time.monotonic()
    for addr, cwd in where.items():
        ensure_server(addr, caller=caller, cwd=cwd)
    while not all(map(listening, where)):
        if time.monotonic() - t0 >= timeout:
            return None
        time.sleep(0.05)
    return time.monotonic() - t0


def server_python() -> str:
    """The interpreter the server runs: this one, through the real path of its
    environment. Every checkout whose .venv links to one environment shares that
    environment's server (`address`), so its processes must not see the path of
    whichever link started it: a scratch copy that is removed later, or a sys.path
    other than a kernel of the environment's own checkout has."""
    real = os.path.join(os.path.realpath(sys.prefix), "bin", os.path.basename(sys.executable))
    try:  # (the same interpreter: not another Python of that name in a system prefix)
        return real if os.path.samefile(real, sys.executable) else sys.executable
    except OSError:
        return sys.executable


class Forked:
    """A process the server forked: its pid, the connection over which the server
    reports its end, and a status pipe the process itself writes its exit code to
    (so that a successful step is not reported failed if the server dies)."""

    def __init__(self, conn: socket.socket, pid: int, status_r: int, data: bytes) -> None:
        self.conn, self.pid, self.status_r, self.data = conn, pid, status_r, data

    def fileno(self) -> int:
        return self.conn.fileno()

    def server_says(self, timeout: float | None) -> int | None | bool:
        """The exit status the server reports; None if not yet; False if it has gone."""
        while b"\n" not in self.data:
            if timeout is not None and not select.select([self.conn], [], [], timeout)[0]:
                return None
            chunk = self.conn.recv(256)
            if not chunk:
                return False
            self.data += chunk
        line = self.data.split(b"\n", 1)[0]
        return int(line.split()[1]) if line.startswith(b"exit ") else False

    def status_line(self, data: bytes = b"") -> int | None:
        """The code the process wrote to its status pipe just before it exited (as its
        exit status: modulo 256), read until the end of that line (after `data`, read
        already); None if the pipe closed without one (killed, or died by a signal)."""
        while b"\n" not in data and (chunk := os.read(self.status_r, 64)):
            data += chunk
        line = data.split(b"\n", 1)[0].strip()
        return int(line) & 0xFF if line.lstrip(b"-").isdigit() else None

    def own_status(self) -> int:
        """After the server has gone: the process's own status line (1 if none: killed)."""
        code = self.status_line()
        return 1 if code is None else code

    def wait(self) -> int:
        """The process's exit status. Its own status line is taken as soon as it is
        written (the process has then flushed its streams and run its threads and
        atexit handlers to their end: only its exit is left), without waiting for
        the operating system to tear the process down and the server to reap it;
        a process that ends without one (killed, a signal) gets the status the server
        reports, or 1 if the server has gone too."""
        try:
            while True:
                ready = select.select([self.status_r, self.conn.fileno()], [], [])[0]
                if self.status_r in ready:
                    code = self.status_line(os.read(self.status_r, 64))
                    if code is None:
                        break  # closed without a status line: what the server says
                    try:  # (so that closing the connection does not kill its group)
                        self.conn.sendall(RELEASED)
                    except OSError:
                        pass
                    return code
                said = self.server_says(0)
                if said is False:  # the server has gone: the process's own line
                    return self.own_status()
                if said is not None:
                    return int(said)
            try:
                said = self.server_says(None)
            except OSError:
                said = False
            return 1 if said is None or said is False else int(said)
        except OSError:  # the connection broke: as if the server had gone
            return self.own_status()
        finally:
            self.close()

    def close(self) -> None:
        self.conn.close()
        if self.status_r >= 0:
            os.close(self.status_r)
            self.status_r = -1


def fork(addr: str, request: dict, fds: list[int]) -> Forked:
    """Ask the server at `addr` to fork `request` with the streams `fds`; NotServed
    (run it the normal way) if it cannot."""
    try:
        conn = _connect(addr, timeout=5)
    except OSError as e:
        raise NotServed(str(e)) from None
    status_r, status_w = os.pipe()
    try:
        conn.settimeout(120)
        request = {**request, "ignored": ignored_signals()}
        socket.send_fds(conn, [encode(request)], [*fds, status_w])
        os.close(status_w)
        status_w = -1
        reply = b""
        while b"\n" not in reply:
            chunk = conn.recv(256)
            if not chunk:
                raise NotServed("the warm server closed the connection")
            reply += chunk
        line, rest = reply.split(b"\n", 1)
        if not line.startswith(b"pid "):
            raise NotServed(line.decode(errors="replace").strip())
        conn.settimeout(None)
        return Forked(conn, int(line.split()[1]), status_r, rest)
    except BaseException as e:
        conn.close()
        os.close(status_r)
        if status_w >= 0:
            os.close(status_w)
        if isinstance(e, OSError) and not isinstance(e, NotServed):
            raise NotServed(str(e)) from None
        raise


def ignored_signals() -> list[int]:
    """The forwarded signals this process ignores (under nohup, in a background job):
    the forked process ignores them too, as a child would."""
    return [int(s) for s in FORWARDED if signal.getsignal(s) == signal.SIG_IGN]


def exists(pid: int) -> bool:
    """Whether process `pid` exists (another user's, or a zombie, too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def alive(pid: int) -> bool:
    if not exists(pid):
        return False
    try:  # a zombie has ended
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def run_module(module: str, args: list[str], start: bool = True) -> int:
    """Run `python -m module args` in a process forked by the warm server and return
    its exit status (negative: the signal that ended it); NotServed when that is not
    possible now (nothing has run)."""
    if not enabled():
        raise NotServed("switched off")
    addr = address()
    if not ensure_server(addr, start):
        raise NotServed("warm server starting")
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
    pid = -1
    pending: list[int] = []  # (signals that came while the request was under way)

    def forward(signum, frame):
        if pid <= 0:  # passed on once it is forked (dropped, the step ran on unaware)
            pending.append(signum)
            return
        try:
            os.killpg(pid, signum)  # its process group: the step and what it started
        except ProcessLookupError:  # (no group yet: held by the child until it has one)
            try:
                os.kill(pid, signum)
            except OSError:
                pass
        except OSError:
            pass

    ignored = ignored_signals()
    old = {s: signal.signal(s, forward) for s in FORWARDED if int(s) not in ignored}
    try:
        forked = fork(addr, request, [0, 1, 2])
    except BaseException:
        for s, h in old.items():
            signal.signal(s, h)
        for signum in pending:  # not forked: a signal that came meanwhile is this
            signal.raise_signal(signum)  # process's own (its caller would run the step
        raise  # the normal way, and a Ctrl-C during the request would be lost)
    pid = forked.pid
    for signum in pending:
        forward(signum, None)
    return forked.wait()


def main(argv: list[str]) -> int:
    start = True
    if argv[:1] == ["--no-start"]:  # use a running server, but do not start one
        start, argv = False, argv[1:]
    if not argv:
        print("usage: python src/pipeline/step.py [--no-start] MODULE [ARGS...]", file=sys.stderr)
        return 2
    module, args = argv[0], argv[1:]
    try:
        code = run_module(module, args, start)
    except NotServed as e:
        if str(e) not in ("switched off", "warm server starting"):
            log(f"{module} not forked, run normally: {e}")
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, "-m", module, *args])
    if code < 0:  # ended by a signal: end the same way
        sys.stdout.flush()
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # (those two cannot be handled)
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


def script() -> None:
    """`python src/pipeline/step.py MODULE ARGS...` (or this file as a script)."""
    status = main(sys.argv[1:])
    try:  # the step has ended; this process holds nothing else: no interpreter teardown
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        status = status or 120
    os._exit(status)


if __name__ == "__main__":
    script()
