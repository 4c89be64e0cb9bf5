"""The warm server: a pre-imported interpreter that forks each build step and kernel.

A new process spends seconds importing pandas, matplotlib, seaborn, statsmodels,
scipy, papermill and nbconvert before it does any work; a build starts a dozen
of them (the snapshot, a runner and a kernel per notebook, the merge, the
report, the paper). The warm server imports them once and forks a fresh process
for each:

- a build step, asked for by `src/pipeline/client.py` (the Makefile runs every
  step through it): the child runs `python -m <module> <args>` with the
  client's environment, working directory, umask and standard streams;
- a kernel, asked for by the runner (`ForkKernelManager`): the child runs
  `ipykernel_launcher` exactly as `python -m ipykernel_launcher -f <connection
  file>` would, so each notebook still runs in its own process, with
  papermill's parameter injection and executed copy unchanged.

What is shared, and what is not:
- Only work a fresh process would redo identically is shared: third-party
  modules and the kernel machinery, imported before any zmq context, thread or
  event loop exists in the server (it runs no Python thread; the maths
  libraries' own thread pools, OpenBLAS's, handle a fork). The project's own
  code is never shared: `analysis` and `pipeline` are imported afresh by each
  child from the checkout that asked (the `PYTHONPATH` of its request), so one
  server serves every checkout and scratch copy using the same environment, and
  an edit to the project's code takes effect at once. `ipykernel.kernelapp`
  (it reads `JPY_PARENT_PID`) is imported in the child too.
- Libraries that look at their surroundings at import see a kernel's: matplotlib
  is imported with the backend ipykernel sets (`MPLBACKEND`) and pandas with a
  kernel shell; a kernel child gets the rcParams of a plain import, a step child
  matplotlib's automatic backend and pandas' terminal `display.max_columns`.
- What the imports did to the process, a child gets as an import would have
  done it: the warnings filters they install (numpy's, statsmodels', IPython's;
  a kernel those of the kernel's libraries), the environment variables they set
  (pandera's SPARK_LOCAL_IP to every child unless its caller set it, as pandera
  does; debugpy's PYDEVD_USE_FRAME_EVAL to kernels), debugpy's breakpoint hook (a
  kernel; a step keeps Python's own).
- The child gets what a normal start gives: its environment, working directory,
  a new session, the caller's standard streams (passed over the socket), default
  signal handlers, fresh `__main__`, `sys.argv`, `sys.path` and random seeds.
- Not a fresh start: the hash seed is the server's (shared by every child it
  forks; `make verify`'s re-execution has a server of its own, so an output that
  depended on it would differ there), and `gc.get_objects()` does not list the
  objects inherited from the server (frozen: see below).

Its life: one server per user, interpreter, installed packages and server code
(`client.address`), listening on an abstract unix socket once its imports are
done (while it imports, steps and kernels start the normal way, so nothing waits
for it), accepting only its own user. It kills a child whose caller disconnects,
reaps its children and reports their exit status. It exits after `IDLE` seconds
(`KZ_FORK_IDLE`, default 600) without a child, when the environment changes
(a package installed or removed) or when asked (`python -m pipeline.kernels
--stop`). A caller that sets `KZ_WARM_SERVER=<name>` gets a server of its own
(`make verify`'s re-execution does, and stops it when done). What the server
imported is frozen out of the garbage collector's sight (`gc.freeze`) before it
forks: a child's collections never scan the inherited heap (nor write to its
pages, which stay shared until the child's own reference counting touches them).
`KZ_FORK_KERNELS=0` turns it off: every step and kernel starts the normal way
(the outputs are the same bytes; a test compares). So does a platform without
abstract unix sockets (not Linux) or a kernel spec that is not `python -m
ipykernel_launcher`; a step or kernel that could not be forked says why in
`.build/kernels.log`.

    python -m pipeline.kernels --serve   (started by the first client or runner)
    python -m pipeline.kernels --stop
"""

from __future__ import annotations

import argparse
import errno
import gc
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Any, NoReturn

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

from pipeline import client  # (nothing that needs a project root: the server has none)

# What a fresh kernel would import (the notebooks, the `analysis` helpers'
# dependencies), imported as in a kernel: no module here reads a notebook's environment.
PRELOAD_KERNEL = (
    "ipykernel.ipkernel",
    "ipykernel.debugger",  # debugpy (~0.1 s): imported by every kernel at start
    # what the kernel's start imports (~25 ms a kernel); ipykernel.kernelapp itself,
    # which reads JPY_PARENT_PID at import, is then forgotten: each kernel imports it
    "ipykernel.kernelapp",
    "IPython.core.completerlib",
    "IPython.core.crashhandler",
    "IPython.extensions.storemagic",
    "sqlite3",
    "faulthandler",
    "tornado.platform.asyncio",
    "numpy",
    "pandas",
    "scipy.stats",
    "statsmodels.api",
    "matplotlib",
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
    "seaborn",
    "PIL.Image",
    # what saving and showing a figure imports (plots.save: SVG, IPython's SVG display)
    "matplotlib.backends.backend_svg",
    "xml.dom.minidom",
    "pickletools",
)
# what the build steps import (papermill, nbconvert, the paper's markdown parser);
# imported outside the kernel shell (tqdm, for one, picks its flavour at import)
PRELOAD_STEPS = (
    "pydantic",
    "yaml",
    "pandera.pandas",
    "nbformat",
    "nbclient",
    "papermill",
    "nbconvert",
    "jupyter_client.manager",
    "jupyter_client.kernelspec",
    "markdown_it",
    "mdit_py_plugins.myst_role",
    "mdit_py_plugins.myst_blocks",
    "mdit_py_plugins.front_matter",
    "mdit_py_plugins.colon_fence",
)
# what an import sets only when it is not set (pandera: os.environ unless os.getenv):
# the server imports without them, and a child gets them unless its caller has them
SET_UNLESS_SET = ("SPARK_LOCAL_IP", "PYARROW_IGNORE_TIMEZONE")
# the project's code: imported afresh in each child from the checkout that asked
PROJECT = ("analysis", "pipeline")
NOT_SHARED = ("ipykernel.kernelapp",)


# the excepthook a fresh process starts with (a sitecustomize's, or Python's own): the
# one that the server's own pipeline/__init__.py found, and wraps, in this process
FRESH_EXCEPTHOOK = getattr(sys.modules.get("pipeline"), "_previous", sys.__excepthook__)
FRESH_UNRAISABLEHOOK = getattr(
    sys.modules.get("pipeline"), "_previous_unraisable", sys.__unraisablehook__
)


def _idle() -> float:
    try:
        return float(os.environ.get("KZ_FORK_IDLE", "600"))
    except ValueError:
        return 600.0


IDLE = _idle()  # seconds without a child (KZ_FORK_IDLE)
WARMING = client.WARMING
enabled = client.enabled
log = client.log


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


def ours(python: list[str]) -> bool:
    """Whether a kernel spec's `[python, *flags]` is this environment's interpreter
    with the warm server's flags (a scratch copy reaches the same .venv by a link)."""
    try:
        same = os.path.samefile(os.path.dirname(python[0]), os.path.dirname(sys.executable))
    except OSError:
        return False
    return same and os.path.basename(python[0]).startswith("python") and python[1:] == client.FLAGS


class ForkedKernel:
    """A forked kernel seen like the `Popen` of a normal launch (poll, wait, signals).

    It is the warm server's child: its exit status arrives over the socket the
    runner keeps open (closing it makes the server kill the kernel), or, if the
    server has gone, from the kernel's own status pipe once it has exited."""

    stdin = stdout = stderr = None

    def __init__(self, forked: client.Forked) -> None:
        self.pid = forked.pid
        self.returncode: int | None = None
        self._forked: client.Forked | None = forked
        self._server_gone = False

    def _read(self, timeout: float) -> None:
        forked = self._forked
        if forked is None:
            return
        if not self._server_gone:
            try:
                said = forked.server_says(timeout)
            except OSError:
                said = False
            if said is None:
                return
            if said is not False:
                self.returncode = int(said)
                self.close()
                return
            self._server_gone = True  # the kernel, if alive, was reparented
        if client.alive(self.pid):
            time.sleep(timeout)
            return
        self.returncode = forked.own_status()
        self.close()

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
        if self._forked is not None:
            self._forked.close()
            self._forked = None


def fork_kernel(addr: str, cmd: list[str], env: dict[str, str], cwd: str) -> ForkedKernel:
    """Ask the server at `addr` for a kernel running `cmd`; OSError if it cannot.
    The kernel gets this process's stdout and stderr, and a closed stdin pipe."""
    request = {"kind": "kernel", "cmd": cmd, "env": env, "cwd": cwd}
    return ForkedKernel(client.fork(addr, request, [sys.stdout.fileno(), sys.stderr.fileno()]))


class QuickReadyClient(AsyncKernelClient):
    """jupyter_client's client, but ready once IOPub has been quiet for 20 ms, not
    200 (after the kernel_info reply it drains the kernel's start-up messages until
    IOPub is quiet; each notebook paid the 0.2 s). Harmless: the notebook client
    reads only the messages whose parent is the request it sent."""

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        channel = self.iopub_channel
        get_msg = channel.get_msg

        async def quick(*args: Any, timeout: float | None = None, **kw: Any) -> Any:
            return await get_msg(*args, timeout=min(timeout, 0.02) if timeout else timeout, **kw)

        channel.get_msg = quick
        try:
            await super()._async_wait_for_ready(timeout)
        finally:
            del channel.get_msg  # (the instance attribute: the method again)

    wait_for_ready = _async_wait_for_ready  # (the asynchronous client's is the base's)


class ForkKernelManager(AsyncKernelManager):
    """A KernelManager whose kernel process is forked by the warm server;
    everything else (connection file, ports, env, shutdown) is jupyter_client's, and
    its client waits less for a quiet IOPub (QuickReadyClient). Falls back to the
    normal launch, logged, when the server cannot fork it or is still importing."""

    client_class = DottedObjectName("pipeline.kernels.QuickReadyClient")
    client_factory = Type(klass="pipeline.kernels.QuickReadyClient")  # (what client() makes)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        python = interpreter(self.kernel_spec.argv) if self.kernel_spec else None
        proc = None
        if python:
            env = dict(kw.get("env") or os.environ)
            if not kw.get("independent"):
                env["JPY_PARENT_PID"] = str(os.getpid())  # as launch_kernel sets it
            try:
                if not ours(python):
                    raise OSError(f"kernel spec interpreter {python} is not the server's")
                cwd = str(kw.get("cwd") or os.getcwd())
                addr = client.address(cwd=cwd)
                if client.ensure_server(addr, cwd=cwd):
                    proc = fork_kernel(addr, kernel_cmd, env, cwd)
                    log(f"kernel forked (pid {proc.pid})")
                else:  # (it is importing: a later kernel is forked; or it could not start)
                    log("kernel started the normal way: the warm server is not ready (importing)")
            except OSError as e:
                log(f"kernel not forked, started normally: {e}")
        if proc is None:
            await super()._async_launch_kernel(kernel_cmd, **kw)
            return
        prov: Any = self.provisioner  # LocalProvisioner: poll, wait, signals via .process
        prov.process, prov.pid, prov.pgid = proc, proc.pid, proc.pid  # own session
        prov.cwd = kw.get("cwd")
        self._reconcile_connection_info(prov.connection_info)

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # a killed kernel's end is seen within 10 ms, not 100 (jupyter_client's
        # polling interval, paid by every notebook's shutdown)
        await super()._async_wait(pollinterval=min(pollinterval, 0.01))


def start(wanted: bool, kernel_name: str, cwd: str | None = None) -> bool:
    """Whether a run forks its kernels (`wanted`, switched on, a python kernel
    spec); starts the warm server if it is not running, so that it imports while
    the runner imports papermill: the server of a kernel started in `cwd`."""
    if not (wanted and enabled()):
        return False
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        python = interpreter(KernelSpecManager().get_kernel_spec(kernel_name).argv)
        if python is None:
            log(f"kernels not forked: kernel spec {kernel_name} is not a python -m ipykernel")
            return False
        if not ours(python):
            log(f"kernels not forked: kernel spec interpreter {python} is not this environment's")
            return False
        client.ensure_server(client.address(cwd=cwd), cwd=cwd)
    except Exception as e:  # noqa: BLE001 - any failure: the normal path, logged
        log(f"kernels not forked: warm server not started: {e}")
        return False
    return True


def manager(forked: bool, **kw: Any) -> AsyncKernelManager:
    """The kernel manager of a run: forked kernels when `forked` (from `start`),
    else jupyter_client's own. Asynchronous, as nbclient's own default: its client
    waits for a cell's output in the event loop, beside the check that the kernel is
    alive every second (a synchronous client's wait blocks that loop, and a run
    whose kernel died, killed or left alone by a killed warm server, never ended)."""
    return ForkKernelManager(**kw) if forked else AsyncKernelManager(**kw)


# ---------------------------------------------------------------- the server


class ZMQInteractiveShell:
    """What a library imported in a kernel finds as `get_ipython()`: pandas, for one,
    chooses its display options at import (`display.max_columns` is 0 in a terminal,
    20 in a kernel). Seen only while the server imports; the child has the real one."""

    kernel = True


def _import(name: str) -> None:
    import importlib

    try:
        importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - not installed: a child imports it
        print(f"warm server: not preloaded {name}: {e}", file=sys.stderr)


def _env_changes(before: dict[str, str]) -> dict[str, str | None]:
    """What was set (a value) or removed (None) in os.environ since `before`."""
    return {k: v for k, v in os.environ.items() if before.get(k) != v} | {
        k: None for k in before if k not in os.environ
    }


def _preload() -> dict[str, Any]:
    """Import PRELOAD_KERNEL as a kernel would (MPLBACKEND set by ipykernel before
    user code, `get_ipython` a kernel's shell), then PRELOAD_STEPS. Returns what a
    child must get that the imports did in this process:

    - "rc": the rcParams of a plain matplotlib import in a kernel;
    - "env": the variables the imports set in the environment, by kind of child
      (ipykernel.debugger sets PYDEVD_USE_FRAME_EVAL: kernels; pandera
      SPARK_LOCAL_IP and PYARROW_IGNORE_TIMEZONE, SET_UNLESS_SET: both, unless the
      child's caller set them); the server's own environment stays its caller's
      (its address is computed from it);
    - "filters": the warnings filters the imports installed (numpy's, statsmodels',
      IPython's), for a kernel those of the kernel's libraries, for a step all;
    - "breakpointhook": the interpreter's own (debugpy replaces it at import: a
      kernel keeps debugpy's, as a normal kernel has it; a step gets this one).
    """
    import builtins
    import warnings

    import analysis  # noqa: F401 - its jsonschema start-up fix must come first

    state: dict[str, Any] = {"rc": {}, "filters": {}, "breakpointhook": sys.breakpointhook}
    given = {k: os.environ.pop(k) for k in SET_UNLESS_SET if k in os.environ}  # (see above)
    env_before = dict(os.environ)
    mpl_env = os.environ.get("MPLBACKEND")
    if not mpl_env:
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    shell = ZMQInteractiveShell()
    builtins.get_ipython = lambda: shell  # type: ignore[attr-defined]
    try:
        with warnings.catch_warnings(record=True) as caught:
            for name in PRELOAD_KERNEL:
                _import(name)
                if name == "matplotlib" and "matplotlib" in sys.modules:
                    state["rc"] = dict(sys.modules["matplotlib"].rcParams)
            state["filters"]["kernel"] = list(warnings.filters)
    finally:
        del builtins.get_ipython  # type: ignore[attr-defined]
        if not mpl_env:
            del os.environ["MPLBACKEND"]
    _set_filters(state["filters"]["kernel"])  # (catch_warnings put the old ones back)
    env_kernel = dict(os.environ)
    with warnings.catch_warnings(record=True) as caught_steps:
        for name in PRELOAD_STEPS:
            _import(name)
        state["filters"]["module"] = list(warnings.filters)
    _set_filters(state["filters"]["module"])
    for w in [*caught, *caught_steps]:
        print(f"warm server: warning while preloading: {w.message}", file=sys.stderr)
    _warm()
    _forget(PROJECT + NOT_SHARED)
    # a step gets what the steps' libraries set, a kernel what all of them set (its
    # notebook imports them all); never debugpy's variables in a step, whose
    # client would then compute another server's address
    steps = _env_changes(env_kernel)
    state["env"] = {
        "module": {k: v for k, v in steps.items() if not client.startup_var(k)},
        "kernel": _env_changes(env_before),
    }
    os.environ.clear()  # the server's own stays its caller's
    os.environ.update(env_before | given)
    return state


def _set_filters(filters: list[Any]) -> None:
    import warnings

    warnings.filters[:] = filters  # type: ignore[index]  # (a list: typeshed says Sequence)
    warnings._filters_mutated()  # type: ignore[attr-defined]  # (what filterwarnings calls)


def _warm() -> None:
    """Fill the module-level caches a fresh process would fill identically on first
    use (they hold no state of a build): the compiled notebook schema that nbformat
    validates every read and write against, and what nbconvert's first HTML export
    sets up (the code highlighter; bleach, which a page still runs on a raw cell),
    by exporting a throwaway two-cell notebook."""
    try:
        import nbformat
        from nbconvert import HTMLExporter
        from nbformat import validator

        for relax in (False, True):
            validator.get_validator(4, 5, relax_add_props=relax)
        v4 = nbformat.v4
        cell = v4.new_code_cell("x = 1", outputs=[v4.new_output("stream", text="1")])
        nb = v4.new_notebook(cells=[cell, v4.new_markdown_cell("# x")])
        nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
        HTMLExporter(template_name="basic").from_notebook_node(nb)
    except Exception as e:  # noqa: BLE001 - a child does it itself
        print(f"warm server: caches not filled: {e}", file=sys.stderr)


MAX_REQUEST = 16 << 20  # bytes: a request is an environment and a command line


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """One request (a mapping, `client.encode`, and its fds), read within 2 s (a stalled caller
    does not hold the server up longer); ValueError if it is not one."""
    data, fds = b"", []
    conn.settimeout(2)
    try:
        while not data.endswith(b"\n"):
            chunk, more, _, _ = socket.recv_fds(conn, 1 << 20, 8)
            fds += more
            for fd in more:
                os.set_inheritable(fd, False)
            if not chunk or len(data) + len(chunk) > MAX_REQUEST:
                raise ValueError("request cut short or too long")
            data += chunk
        request = client.decode(data)
        if not isinstance(request, dict):
            raise ValueError("a request is a dict (client.encode)")
        return request, fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _stdio(unbuffered: bool) -> None:
    """New sys.stdin/stdout/stderr on fds 0-2, as the interpreter makes them at start
    (written through at once with PYTHONUNBUFFERED)."""
    for name, fd in (("stdin", 0), ("stdout", 1), ("stderr", 2)):
        old = getattr(sys, name)
        binary = open(fd, "rb" if fd == 0 else "wb", closefd=False)
        stream = io.TextIOWrapper(
            binary,
            encoding=old.encoding,
            errors=old.errors,
            line_buffering=fd == 2 or os.isatty(fd),
            write_through=unbuffered and fd != 0,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _forget(prefixes: tuple[str, ...]) -> None:
    """Remove modules (a name or a package with its submodules) from sys.modules and
    from their package, so that the next import runs them afresh."""
    packages = tuple(p + "." for p in prefixes)
    for name in [m for m in sys.modules if m in prefixes or m.startswith(packages)]:
        del sys.modules[name]
        package, _, attr = name.rpartition(".")
        if package in sys.modules and getattr(sys.modules[package], attr, None) is not None:
            delattr(sys.modules[package], attr)


def _base_path() -> tuple[list[str], list[str]]:
    """The interpreter's own sys.path entries, as a start without PYTHONPATH makes
    them: those it computes itself (the standard library), and those the `site`
    module adds (site-packages and its .pth files). Asked of one, once."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import json, sys; print(json.dumps(sys.path[1:]))"
    found = []
    for flags in (["-S"], []):
        out = subprocess.run(
            [sys.executable, *client.FLAGS, *flags, "-c", code],
            env=env,
            capture_output=True,
            text=True,
        )
        found.append(json.loads(out.stdout) if out.returncode == 0 else sys.path[1:])
    core, full = found
    return core, [p for p in full if p not in core]


def _sys_path(env: dict[str, str], cwd: str, core: list[str], site: list[str]) -> list[str]:
    """sys.path as `python -m` started with `env` in `cwd` makes it: the working
    directory, PYTHONPATH, the interpreter's entries, then the `site` ones that are
    not there already (site skips a folder already on the path)."""
    extra = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    path = [cwd, *extra, *core]
    seen = {os.path.normcase(os.path.abspath(p)) for p in path}
    return path + [p for p in site if os.path.normcase(os.path.abspath(p)) not in seen]


def _child(
    request: dict[str, Any],
    fds: list[int],
    preloaded: dict[str, Any],
    base_path: tuple[list[str], list[str]],
    close: list[Any],
) -> NoReturn:
    """In the forked child: become a fresh process running a step or a kernel.

    `fds` are its standard streams (0-2 for a step; 1-2 for a kernel, whose stdin is
    a closed pipe) and, last, its status pipe: it writes its exit code there just
    before it exits, for its caller to read if the server has gone."""
    code = 1
    interrupted = started = False
    me = os.getpid()  # (a process the step forks inherits the status pipe, and this code)
    *streams, status = fds
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for s in close:
            s.close() if hasattr(s, "close") else os.close(s)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.excepthook = FRESH_EXCEPTHOOK
        sys.unraisablehook = FRESH_UNRAISABLEHOOK
        for signum in request.get("ignored", []):  # what the caller ignores (nohup)
            signal.signal(signum, signal.SIG_IGN)
        kernel = request["kind"] == "kernel"
        if kernel:  # stdin: a pipe closed by the launcher, as in launch_kernel
            r, w = os.pipe()
            os.close(w)
            streams = [r, *streams]
        for target, fd in enumerate(streams):
            os.dup2(fd, target)
        for fd in streams:
            if fd > 2:
                os.close(fd)
        _stdio(bool(request["env"].get("PYTHONUNBUFFERED")))
        os.chdir(request["cwd"])
        env = request["env"]
        os.environ.clear()
        os.environ.update(env)
        for key, value in preloaded.get("env", {}).get(request["kind"], {}).items():
            if value is None:
                os.environ.pop(key, None)
            elif key in SET_UNLESS_SET:
                os.environ.setdefault(key, value)
            else:
                os.environ[key] = value
        time.tzset()
        if "umask" in request:
            os.umask(request["umask"])
        sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
        sys.path[:] = _sys_path(env, os.getcwd(), *base_path)
        _forget(PROJECT + NOT_SHARED)
        mpl = sys.modules.get("matplotlib")
        rc = preloaded.get("rc", {})
        filters = preloaded.get("filters", {}).get("kernel" if kernel else "module")
        if filters is not None:
            _set_filters(filters)
        if kernel:
            module = "ipykernel_launcher"
            cmd = request["cmd"]
            sys.argv = [module, *cmd[cmd.index("-m") + 2 :]]
            if mpl is not None and rc:
                dict.update(mpl.rcParams, rc)
        else:
            module = request["module"]
            sys.argv = [module, *request["argv"]]
            sys.breakpointhook = preloaded.get("breakpointhook", sys.__breakpointhook__)
            if mpl is not None:  # what a plain import outside a kernel chooses
                from matplotlib import rcsetup

                backend = env.get("MPLBACKEND") or rcsetup._auto_backend_sentinel
                dict.update(mpl.rcParams, {**rc, "backend": backend})
            if "pandas" in sys.modules:  # a terminal's default, not a kernel's
                sys.modules["pandas"].set_option("display.max_columns", 0)
        import random

        random.seed()
        if "numpy.random" in sys.modules:
            sys.modules["numpy.random"].seed()  # a fresh process draws a new seed
        import runpy

        # what its caller passed on while it was set up arrives now (held by the server)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, client.FORWARDED)
        started = True
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int | None):
            print(e.code, file=sys.stderr)
    except KeyboardInterrupt:  # uncaught: the interpreter prints it and dies by SIGINT
        interrupted = True
        if started or request["kind"] == "kernel":
            sys.excepthook(*sys.exc_info())
        else:  # (before the step's own code ran: its one line, not a traceback)
            step = request["module"].removeprefix("pipeline.")
            print(f"[{step}] interrupted: nothing published", file=sys.stderr)
    except BaseException:
        sys.excepthook(*sys.exc_info())
    finally:
        try:  # as at a normal interpreter exit: wait for threads, run atexit, flush
            import threading

            threading._shutdown()  # type: ignore[attr-defined]
        except BaseException:  # noqa: BLE001, S110
            pass
        try:
            import atexit

            atexit._run_exitfuncs()
        except BaseException:  # noqa: BLE001, S110
            pass
        try:
            gc.collect()  # files left open by the step are flushed and closed
        except BaseException:  # noqa: BLE001, S110
            pass
        try:  # as Python at exit: a stream left open is flushed; failing that, status 120
            if not sys.stdout.closed:
                sys.stdout.flush()
        except Exception:  # noqa: BLE001
            code = 120 if code == 0 else code
        try:
            if not sys.stderr.closed:
                sys.stderr.flush()
        except Exception:  # noqa: BLE001, S110
            pass
        if interrupted:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        code = code & 0xFF if isinstance(code, int) else 1  # (what exit() makes of it)
        if os.getpid() == me:  # the step's own end, never that of a process it forked
            try:
                os.write(status, f"{code}\n".encode())
            except OSError:
                pass
        os._exit(code)


class Server:
    """The warm server: accepts requests, forks steps and kernels, reaps them."""

    def __init__(self, cwd: str = "/") -> None:
        # the folder its caller asked from: where it imports (a matplotlibrc there is
        # read, as by a kernel or step started there), and from which its address
        # is computed (client.mpl_files); it works in /
        self.cwd = cwd
        self.addr = client.address(cwd=cwd)
        self.python = [sys.executable, *client.FLAGS]
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.children: dict[int, socket.socket] = {}  # pid -> its caller's connection
        self.orphans: dict[int, socket.socket] = {}  # caller gone: killed, to be reaped
        # ended (its caller read its status line and said so): reaped, never killed
        self.released: dict[int, socket.socket] = {}
        self.preloaded: dict[str, Any] = {}
        self.base_path: tuple[list[str], list[str]] = ([], [])
        self.stopping = False

    def run(self) -> int:
        warming = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:  # claimed while importing: steps and kernels start normally meanwhile
            warming.bind(self.addr + WARMING)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return 0  # another caller started it first
            raise
        t0 = time.monotonic()  # (bound, not listening: a probe never waits on it)
        try:
            os.chdir(self.cwd)
        except OSError:  # (gone already: its address will say so, and the server exit)
            pass
        try:
            self.preloaded = _preload()
        finally:
            os.chdir("/")
        self.base_path = _base_path()
        try:
            self.listener.bind(self.addr)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return 0
            raise
        # what the server imported is never garbage in a child: out of the collector's
        # sight (a child's collections, and the one at its exit, skip it; its pages
        # stay shared instead of being copied on write): a step's exit takes ~0.08 s
        # instead of ~0.25 s
        gc.collect()
        gc.freeze()
        self.listener.listen(64)
        warming.close()
        log(f"warm server (pid {os.getpid()}) ready in {time.monotonic() - t0:.1f}s")
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select through wake_w
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        last = checked = time.monotonic()
        while True:
            now = time.monotonic()
            if self.children or self.orphans or self.released:
                last = now
            elif self.stopping or now - last > IDLE:
                break
            if now - checked > 2:  # the environment changed: new callers go elsewhere
                checked = now
                try:
                    changed = client.address(cwd=self.cwd) != self.addr
                except OSError:  # the checkout or environment that started it is gone
                    changed = True
                if not self.stopping and changed:
                    log("warm server: the environment or its code changed, exiting")
                    self.stopping = True
            if self.stopping and self.listener.fileno() >= 0:
                self.listener.close()
            watched: list[Any] = [self.wake_r, *self.children.values()]
            if not self.stopping:
                watched.append(self.listener)
            ready = select.select(watched, [], [], 1.0)[0]
            try:
                os.read(self.wake_r, 512)
            except BlockingIOError:
                pass
            self.reap()
            for sock in ready:
                if sock is self.listener:
                    if not self.stopping:
                        self.accept()
                elif isinstance(sock, socket.socket):
                    gone = next((p for p, c in self.children.items() if c is sock), None)
                    if gone is None:
                        continue
                    try:
                        said = sock.recv(256)
                    except OSError:
                        said = b""
                    if said.startswith(client.RELEASED):
                        # its caller has its exit status (the status line): the step is
                        # ending; whatever it leaves running in its group is left, as
                        # after `python -m`
                        self.released[gone] = self.children.pop(gone)
                    elif not said:
                        self.drop(gone)  # its caller has gone: kill it, as its parent would
        return 0

    def drop(self, pid: int) -> None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:  # not yet the leader of its own group
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.orphans[pid] = self.children.pop(pid)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = (
                self.children.pop(pid, None)
                or self.orphans.pop(pid, None)
                or self.released.pop(pid, None)
            )
            if conn is not None:
                try:
                    conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
                except OSError:
                    pass
                conn.close()

    def accept(self) -> None:
        """Serve one connection; nothing a caller sends can stop the server."""
        try:
            conn, _ = self.listener.accept()
        except OSError as e:  # (out of file descriptors, say): try again later
            log(f"warm server: accept failed: {e}")
            time.sleep(0.1)
            return
        fds: list[int] = []
        try:
            if client.peer_uid(conn) != os.getuid():
                raise OSError("refused: another user")
            request, fds = _receive(conn)
            kind = request.get("kind")
            if kind == "stop":
                conn.sendall(b"stopping\n")
                conn.close()
                self.stopping = True
                return
            if kind == "kernel":  # stdout, stderr and the status pipe
                cmd = request["cmd"]
                n = len(client.FLAGS) + 1
                if (
                    len(fds) != 3
                    or not ours(cmd[:n])
                    or cmd[n : n + 2] != ["-m", "ipykernel_launcher"]
                ):
                    raise ValueError(f"cannot fork {cmd} from {self.python}")
            elif kind != "module" or len(fds) != 4:  # stdin, stdout, stderr, status
                raise ValueError(f"cannot serve {kind!r} with {len(fds)} file descriptors")
            sys.stdout.flush()
            sys.stderr.flush()
            # the signals a caller passes on are held from the fork until the child has
            # its own session and handlers (it unblocks them then): one its caller sends
            # as soon as it has the pid (a Ctrl-C during the request) reaches the child,
            # never the server's handlers, and is not lost before its process group exists
            held = signal.pthread_sigmask(signal.SIG_BLOCK, client.FORWARDED)
            pid = os.fork()
            if pid == 0:
                close = [self.listener, self.wake_r, self.wake_w, conn]
                _child(
                    request,
                    fds,
                    self.preloaded,
                    self.base_path,
                    [*close, *self.children.values(), *self.orphans.values()],
                )
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            self.children[pid] = conn  # before the reply: its caller may vanish meanwhile
            conn.settimeout(None)
            conn.sendall(f"pid {pid}\n".encode())
        except Exception as e:  # noqa: BLE001 - a bad request is refused, never fatal
            forked = next((p for p, c in self.children.items() if c is conn), None)
            if forked is not None:  # its caller vanished before the reply
                self.drop(forked)
            try:
                conn.sendall(f"error {e}\n".encode())
            except OSError:
                pass
            conn.close()
        finally:
            for fd in fds:
                os.close(fd)


def stop(addr: str | None = None) -> bool:
    """Ask this user's warm server for this environment (or the one at `addr`) to
    exit once its children are done; True if there was one."""
    try:
        conn = client._connect(addr or client.address(), timeout=5)
    except OSError:
        return False
    try:
        socket.send_fds(conn, [client.encode({"kind": "stop"})], [])
        conn.recv(64)
        return True
    except OSError:
        return False
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.kernels", description=__doc__)
    ap.add_argument("--serve", action="store_true", help="run the warm server")
    ap.add_argument("--cwd", default="/", help="the folder it imports in (its caller's)")
    ap.add_argument("--stop", action="store_true", help="ask the warm server to exit")
    a = ap.parse_args(argv)
    if a.stop:  # the server of steps started here, and of kernels in notebooks/ (if another)
        stopped = [stop(addr) for addr in client.checkout_servers(os.environ, os.getcwd())]
        print("warm server stopping" if any(stopped) else "no warm server")
        return 0
    if a.serve:
        return Server(a.cwd).run()
    ap.print_usage()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
