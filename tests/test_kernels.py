"""The warm server (pipeline.kernels, src/pipeline/client.py): each notebook runs in
its own fresh process, forked from a pre-imported interpreter; it sees nothing
another notebook did (variables, matplotlib rcParams and figures), gets the
runner's environment and working directory, and papermill's parameters. A build
step forked by it gets the caller's arguments, environment, working directory and
streams, imports the caller's own code afresh, and its exit status is the
caller's. (That a build with the server gives the same bytes as one without is
tests/test_verify.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from analysis import paths
from pipeline import client, kernels

CLIENT = Path(client.__file__)
PY = sys.executable

FIRST = """\
import os, sys
import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
secret = 42
matplotlib.rcParams["lines.linewidth"] = 7.0
plt.rcParams["axes.grid"] = True
plt.figure()
pd.set_option("display.max_rows", 3)
state = {"pid": os.getpid(), "ppid": os.getppid(), "figures": plt.get_fignums()}
"""
SECOND = """\
import os, sys
import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
assert "secret" not in globals() and not hasattr(sys.modules["__main__"], "secret")
assert matplotlib.rcParams["lines.linewidth"] == matplotlib.rcParamsDefault["lines.linewidth"]
assert not matplotlib.rcParams["axes.grid"]
assert plt.get_fignums() == []
assert pd.get_option("display.max_rows") == 60
assert pd.get_option("display.max_columns") == 20  # pandas imported as in a kernel
assert os.environ["MPLBACKEND"] == "module://matplotlib_inline.backend_inline"
state = {"pid": os.getpid(), "ppid": os.getppid(), "figures": plt.get_fignums()}
"""
REPORT = """\
import json, warnings
import numpy, scipy.stats, statsmodels.api, seaborn, PIL.Image, pandera.pandas  # (preloaded)
state.update(cwd=os.getcwd(), mark=os.environ.get("KZ_TEST_MARK"), value=value,
             main=sys.modules["__main__"].__dict__ is globals(), path=sys.path,
             env=sorted(os.environ), filters=sorted(set(map(repr, warnings.filters))),
             hook=sys.breakpointhook.__qualname__,
             excepthook=sys.excepthook is sys.__excepthook__)
print(json.dumps(state))
"""


def ready() -> None:
    """Wait until the warm server has done its imports (a kernel or step asked for
    while it imports starts the normal way)."""
    client.ensure_server(client.address())
    deadline = time.monotonic() + 120
    while not client.listening(client.address()):
        assert time.monotonic() < deadline, "the warm server did not become ready"
        time.sleep(0.05)


def notebook(path: Path, code: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("value = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code), nbformat.v4.new_code_cell(REPORT)]
    nb.metadata["kernelspec"] = {
        "name": paths.KERNEL_NAME,
        "language": "python",
        "display_name": paths.KERNEL_NAME,
    }
    nbformat.write(nb, path)
    return path


def run(src: Path, out: Path, forked: bool, value: str) -> tuple[dict, object]:
    # (the connection file beside the output: by default jupyter_client writes it to
    # /tmp, and papermill leaves it there when it is handed the manager)
    connection = str(out.with_suffix(".kernel.json"))
    km = kernels.manager(forked, kernel_name=paths.KERNEL_NAME, connection_file=connection)
    pm.execute_notebook(
        str(src),
        str(out),
        parameters={"value": value},
        kernel_name=paths.KERNEL_NAME,
        cwd=str(src.parent),
        progress_bar=False,
        km=km,
    )
    process = km.provisioner.process if km.provisioner else None
    executed = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    return json.loads(text), process


@pytest.mark.slow
def test_forked_kernels_are_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("KZ_FORK_KERNELS", raising=False)
    monkeypatch.setenv("KZ_TEST_MARK", "from the runner")
    # (why a kernel was not forked goes to this root's .build/kernels.log: shown below)
    monkeypatch.setenv("KZ_COMPENDIUM_ROOT", str(tmp_path))
    (tmp_path / ".build").mkdir()
    assert kernels.start(True, paths.KERNEL_NAME)
    ready()
    work = tmp_path / "nb"
    work.mkdir()
    first, p1 = run(notebook(work / "a.ipynb", FIRST), tmp_path / "a.out.ipynb", True, "1")
    second, p2 = run(notebook(work / "b.ipynb", SECOND), tmp_path / "b.out.ipynb", True, "2")
    # both ran on forked kernels (not the fallback), in different processes
    log = tmp_path / ".build" / client.LOG
    assert isinstance(p1, kernels.ForkedKernel) and isinstance(p2, kernels.ForkedKernel), (
        log.read_text() if log.exists() else "(no log)"
    )
    assert first["pid"] != second["pid"] != os.getpid()
    assert first["ppid"] == second["ppid"] != os.getpid()  # children of the fork server
    assert first["figures"] == [1] and second["figures"] == []
    for state, value in ((first, "1"), (second, "2")):
        assert state["value"] == value  # papermill's injected parameters
        assert state["mark"] == "from the runner"  # the runner's environment
        assert state["cwd"] == str(work)
        assert state["main"]  # the notebook's namespace is a fresh __main__
    # the second notebook's checks hold on a kernel started the normal way, which
    # sees the same sys.path and environment variables: here the fallback of a forked
    # run while its server is still importing (a server of another name, held as
    # importing), which says so in the log
    monkeypatch.setenv("KZ_WARM_SERVER", f"test-importing-{os.getpid()}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as held:
        held.bind(client.address() + client.WARMING)
        normal, p3 = run(work / "b.ipynb", tmp_path / "c.out.ipynb", True, "2")
    assert not isinstance(p3, kernels.ForkedKernel)
    log = (tmp_path / ".build" / client.LOG).read_text()
    assert "kernel started the normal way: the warm server is not ready (importing)" in log
    assert normal["path"] == second["path"]
    added = {"KZ_WARM_SERVER"}  # (set above for the third run)
    assert [n for n in normal["env"] if n not in added] == [
        n for n in second["env"] if n not in added
    ]
    # the warnings filters the libraries install at import, and debugpy's breakpoint hook
    assert (normal["filters"], normal["hook"]) == (second["filters"], second["hook"])
    assert normal["excepthook"] == second["excepthook"]  # (not the server's: pipeline's)
    assert len(second["filters"]) > 10


def test_the_server_runs_through_its_environments_real_path(tmp_path: Path):
    """A checkout whose .venv is a link (a scratch copy) shares the environment's
    server: it starts it through the real path, so that no forked process sees the
    link (gone with the copy; another sys.path than a normal kernel's)."""
    venv = Path(sys.prefix)
    (tmp_path / ".venv").symlink_to(venv.resolve(), target_is_directory=True)
    linked = tmp_path / ".venv" / "bin" / Path(sys.executable).name
    code = (
        "from pipeline import client; import sys; print(sys.prefix); print(client.server_python())"
    )
    r = subprocess.run(
        [str(linked), "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(paths.ROOT / "src")},
    )
    assert r.returncode == 0, r.stderr
    prefix, server = r.stdout.splitlines()  # (a path may have spaces)
    assert prefix == str(tmp_path / ".venv")  # (the link, as the copy's own python sees it)
    assert server == str(venv.resolve() / "bin" / Path(sys.executable).name)


def test_the_client_imports_little():
    """Every build step starts the client: it imports neither pathlib, json, re nor
    hashlib, nor (unless it starts a server) subprocess, which would add ~10-20 ms to
    each step."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import client; client.address(); "
        "client.decode(client.encode({'kind': 'x'})); "
        "print(sorted({'pathlib', 'subprocess', 'json', 're', 'hashlib'} & set(sys.modules)))"
    )
    where = str(Path(client.__file__).parent)
    r = subprocess.run([sys.executable, "-c", code, where], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_switched_off_or_outside_a_build_starts_kernels_normally(monkeypatch):
    monkeypatch.setenv("KZ_FORK_KERNELS", "0")
    assert not kernels.start(True, paths.KERNEL_NAME)
    monkeypatch.delenv("KZ_FORK_KERNELS")
    assert not kernels.start(False, paths.KERNEL_NAME)
    assert type(kernels.manager(False, kernel_name=paths.KERNEL_NAME)) is AsyncKernelManager


def test_a_kernel_spec_that_is_not_ipykernel_is_not_forked():
    argv = [
        "/usr/bin/python3",
        "-Xfrozen_modules=off",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    assert kernels.interpreter(argv) == argv[:2]
    assert kernels.interpreter(["R", "--slave", "-f", "{connection_file}"]) is None
    assert kernels.interpreter(argv[:3] + ["other_kernel"] + argv[4:]) is None


PROBE = """\
import json, os, sys
print(json.dumps({
    "argv": sys.argv[1:], "cwd": os.getcwd(), "mark": os.environ.get("KZ_TEST_MARK"),
    "pid": os.getpid(), "ppid": os.getppid(), "version": VERSION,
    "project": sorted(m for m in sys.modules if m.split(".")[0] in ("analysis", "pipeline")),
    "path0": sys.path[0], "umask": os.umask(0o022),
}))
sys.stderr.write("to stderr\\n")
sys.exit(int(sys.argv[1]))
"""


def test_a_ctrl_c_while_a_step_is_being_forked_reaches_the_step(monkeypatch, capfd):
    """A Ctrl-C that reaches a step's client while its request is under way (the
    server forking; no pid yet) was dropped, or reached the child before it had its
    own process group or handlers (a reviewer: 4 of 25 delivered): the step ran to
    its end, unaware. The client passes it on once it has the pid, and the child
    holds it until it is set up. Here the Ctrl-C is sent as the request starts,
    five times; the step (`python -m timeit`, a 2 s sleep) must end by it at once:
    by SIGINT when it arrives before timeit runs, status 1 when timeit's own catch-all
    reports it. (Or Python's own loss of it: raised in a callback whose exceptions it
    ignores, as an import's module-lock callback, it is printed as "Exception ignored"
    and the step goes on; plain `python -m timeit` would do the same. It reached the
    step all the same.)"""
    ready()
    real = client.fork

    def fork(*args):
        os.kill(os.getpid(), signal.SIGINT)  # (the request is under way: no pid yet)
        return real(*args)

    monkeypatch.setattr(client, "fork", fork)
    saved = {s: signal.getsignal(s) for s in client.FORWARDED}
    sleep = ["-n", "1", "-r", "1", "import time; time.sleep(2)"]
    try:
        for _ in range(5):
            t0 = time.monotonic()
            status = client.run_module("timeit", sleep, start=False)
            err = capfd.readouterr().err
            if "Exception ignored" in err and "KeyboardInterrupt" in err:
                continue  # (Python's own loss, after it reached the step)
            assert status in (-signal.SIGINT, 1), err
            assert time.monotonic() - t0 < 1.5, err  # (lost, it ran its 2 s, ended with 0)
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_a_signal_during_a_request_the_server_refuses_is_not_lost(monkeypatch, signum):
    """A signal that comes while the request is under way, which the server then
    refuses (the step is run the normal way: client.main), was held for a pid that
    never came: the step then ran to its end, unaware. It is now this process's own,
    with the handler it had before the request (here one that records it)."""
    ready()

    def fork(*args):
        os.kill(os.getpid(), signum)  # (the request is under way: no pid yet)
        raise client.NotServed("refused")

    monkeypatch.setattr(client, "fork", fork)
    got: list[int] = []
    saved = {s: signal.getsignal(s) for s in client.FORWARDED}
    try:
        signal.signal(signum, lambda s, frame: got.append(s))
        with pytest.raises(client.NotServed, match="refused"):
            client.run_module("timeit", ["pass"], start=False)
        assert got == [signum]
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def test_a_ctrl_c_before_a_step_is_forked_is_one_line():
    """A Ctrl-C in a step's first ~30 ms (its client importing, or asking the server,
    before the fork) printed a traceback. Here the client's address computation
    raises it: one line, and the process ends by SIGINT, as `python -m` would."""
    step = Path(client.__file__).parent / "step.py"
    code = (
        "import runpy, sys\n"
        f"sys.path.insert(0, {str(step.parent)!r})\nimport client\n"
        "def interrupted(*a, **k): raise KeyboardInterrupt\n"
        "client.address = interrupted\nclient.enabled = lambda: True\n"
        f"sys.argv = [{str(step)!r}, 'pipeline.merge', '--help']\n"
        f"runpy.run_path({str(step)!r}, run_name='__main__')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == -signal.SIGINT, r.stderr
    assert r.stderr == "[merge] interrupted: nothing published\n", r.stderr


def test_a_step_runs_forked_with_the_callers_code_streams_and_status(tmp_path: Path):
    """`python src/pipeline/client.py MODULE ARGS` is `python -m MODULE ARGS`: the
    caller's arguments, working directory, environment, umask and stdout/stderr; its
    exit status; the module imported afresh from the caller's PYTHONPATH (an edit
    takes effect at once), and no project code loaded before it."""
    ready()
    code = tmp_path / "code"  # laid out as a checkout's src/ (other PYTHONPATH
    (code / "pipeline").mkdir(parents=True)  # entries get a server of their own)
    (code / "pipeline" / "client.py").write_text("")
    (code / "kzprobe.py").write_text(PROBE.replace("VERSION", "1"))
    env = {
        **os.environ,
        "PYTHONPATH": f"{code}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "KZ_TEST_MARK": "from the caller",
    }

    def step(status: str) -> tuple[dict, subprocess.CompletedProcess, int]:
        p = subprocess.Popen(
            [sys.executable, str(CLIENT), "kzprobe", status, "x y"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: os.umask(0o027),
        )
        stdout, stderr = p.communicate(timeout=60)
        return (
            json.loads(stdout),
            subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr),
            p.pid,
        )

    out, r, caller = step("3")
    assert r.returncode == 3 and r.stderr == "to stderr\n"
    assert out["argv"] == ["3", "x y"] and out["cwd"] == str(tmp_path)
    assert out["mark"] == "from the caller" and out["umask"] == 0o027
    assert out["path0"] == str(tmp_path)  # what `python -m` puts first
    assert out["project"] == []  # analysis and pipeline are not shared
    server = out["ppid"]
    assert server not in (caller, os.getpid()) and client.alive(server)  # forked by the server
    (code / "kzprobe.py").write_text(PROBE.replace("VERSION", "2"))
    out2, r2, _ = step("0")
    assert r2.returncode == 0 and out2["version"] == 2  # the edit took effect
    assert out2["ppid"] == server and out2["pid"] != out["pid"]
    # the status a process exiting with that code has (modulo 256), never a signal:
    # the caller takes it from the step's own status line, before the step is reaped
    for status, expected in (("-1", 255), ("256", 0), ("300", 44)):
        out3, r3, _ = step(status)
        assert r3.returncode == expected and out3["ppid"] == server, (status, r3)


def test_a_step_runs_normally_when_switched_off(tmp_path: Path):
    (tmp_path / "kzprobe2.py").write_text("import os\nprint(os.getppid())\n")
    env = {**os.environ, "KZ_FORK_KERNELS": "0", "PYTHONPATH": str(tmp_path)}
    p = subprocess.Popen(
        [sys.executable, str(CLIENT), "kzprobe2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0
    assert int(out) == os.getpid()  # the client became the step (exec), our child


def probe_env(tmp_path: Path, code: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose PYTHONPATH holds the module `kzstep` with `code`."""
    src = tmp_path / "src"
    (src / "pipeline").mkdir(parents=True, exist_ok=True)
    (src / "pipeline" / "client.py").write_text("")  # a checkout's src/ (see above)
    (src / "kzstep.py").write_text(code)
    path = f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    return {**os.environ, "PYTHONPATH": path, **(extra or {})}


def step(env: dict[str, str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(CLIENT), "kzstep"]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, **kw)


def test_a_step_ends_as_a_process_would_signals_ignored_and_fatal(tmp_path: Path):
    """A step killed by a signal ends the caller by the same signal; a signal the
    caller ignores (nohup) is ignored by the step too."""
    ready()
    env = probe_env(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert step(env, tmp_path).returncode == -signal.SIGKILL
    code = "import os, signal\nos.kill(os.getpid(), signal.SIGHUP)\nprint(os.getppid())\n"
    env = probe_env(tmp_path, code)
    r = step(env, tmp_path, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert r.returncode == 0 and int(r.stdout) != os.getpid()  # forked, and survived


def the_name_held_by_another_user_is_refused(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without root: the name held by a process of this user, which the client sees
    as another uid's; it connects, sees the other uid, sends nothing."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as fake:
        fake.bind(name)
        fake.listen(8)
        monkeypatch.setattr(client, "peer_uid", lambda sock: os.getuid() + 1)
        with pytest.raises(client.NotServed, match="another user"):
            client._connect(name)
        assert not client.listening(name)
        conn, _ = fake.accept()
        with conn:
            assert conn.recv(1 << 20) == b""  # it was told nothing


def test_the_server_survives_a_bad_request_and_refuses_other_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Garbage on the socket is refused without harm; a name held by another user's
    process is never trusted with a step (its environment and streams)."""
    import socket

    ready()
    addr = client.address()
    for junk in (b"[]\n", b"{}\n", b"[" * 100000 + b"\n", b"not json\n"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(addr)
        s.sendall(junk)
        assert s.recv(256).startswith(b"error ")
        s.close()
    assert client.listening(addr)
    # another user binds the name a caller with other start-up settings would use
    env = probe_env(tmp_path, "import os\nprint(os.getppid())\n", {"PYTHONKZTEST": str(tmp_path)})
    env["KZ_FORK_IDLE"] = "5"
    other = subprocess.run(
        [sys.executable, "-c", "from pipeline import client; print(repr(client.address()))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    name = eval(other.stdout)  # noqa: S307 - our own repr of a str
    if os.geteuid() != 0:  # (a contributor's run: only root can start another user's process)
        the_name_held_by_another_user_is_refused(name, monkeypatch)
        return
    fake = subprocess.Popen(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            "import socket, sys, time\ns = socket.socket(socket.AF_UNIX)\n"
            f"s.bind({name!r}); s.listen(8); print('bound', flush=True)\n"
            "c, _ = s.accept(); data = c.recv(1 << 20)\n"
            "if data: print('GOT', len(data), flush=True)\n"
            "time.sleep(10)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout.readline().strip() == "bound"
        r = step(env, tmp_path)
        assert r.returncode == 0 and int(r.stdout) == os.getpid()  # run the normal way
    finally:
        fake.kill()
        out = fake.communicate()[0]
    assert "GOT" not in out  # it was told nothing


@pytest.mark.slow
def test_a_step_keeps_its_status_when_the_server_dies(tmp_path: Path):
    """The exit status also travels through the step's own status pipe: a server
    killed mid-step does not turn a successful step into a failed one.

    Before, on this server of its own, started by a caller that had SPARK_LOCAL_IP
    (as a process that imported pandera has): what pandera sets at import unless it
    is set, a forked step gets as a fresh process importing it would."""
    own = {"KZ_WARM_SERVER": f"test-{tmp_path.name}", "KZ_FORK_IDLE": "30"}
    code = "import os, pandera.pandas\nprint(os.getppid(), os.environ.get('SPARK_LOCAL_IP'))\n"
    env = {k: v for k, v in probe_env(tmp_path, code, own).items() if k != "SPARK_LOCAL_IP"}
    wait_ready = (
        "import time\nfrom pipeline import client\na = client.address()\n"
        "client.ensure_server(a)\nt = time.monotonic() + 120\n"
        "while not client.listening(a) and time.monotonic() < t: time.sleep(0.05)\n"
        "print(client.listening(a))"
    )
    starter = {**env, "SPARK_LOCAL_IP": "10.9.9.9"}
    r = subprocess.run([PY, "-c", wait_ready], env=starter, capture_output=True, text=True)
    assert r.stdout.strip() == "True", r.stderr
    fresh = subprocess.run([PY, "-m", "kzstep"], env=env, capture_output=True, text=True)
    assert fresh.returncode == 0 and fresh.stdout.split()[1] != "None", fresh.stderr
    servers = set()
    for given, expected in ((None, fresh.stdout.split()[1]), ("10.1.2.3", "10.1.2.3")):
        r = step(env if given is None else {**env, "SPARK_LOCAL_IP": given}, tmp_path)
        assert r.stdout.split()[1:] == [expected], r.stderr
        servers.add(int(r.stdout.split()[0]))
    assert len(servers) == 1 and os.getpid() not in servers  # (both forked by it)

    env = probe_env(
        tmp_path,
        "import os, sys, time\nprint(os.getppid(), flush=True)\ntime.sleep(1)\nsys.exit(0)\n",
        own,
    )
    p = subprocess.Popen(
        [sys.executable, str(CLIENT), "kzstep"], cwd=tmp_path, env=env, stdout=subprocess.PIPE
    )
    assert p.stdout is not None
    server = int(p.stdout.readline())
    assert server != p.pid
    os.kill(server, signal.SIGKILL)
    assert p.wait(timeout=60) == 0


def test_a_step_ends_as_python_m_would_with_what_it_leaves_and_forks(tmp_path: Path):
    """The caller returns once the step's own status line is written, yet the step
    still ends as `python -m` would: a process it leaves running in the background
    keeps running (the server is told, and does not kill the step's group), and a
    process it forks that ends through the same code never speaks for the step."""
    ready()
    code = (
        "import os, subprocess, sys, time\n"
        "quiet = {'stdout': subprocess.DEVNULL, 'stderr': subprocess.DEVNULL}\n"
        "print(subprocess.Popen(['sleep', '30'], **quiet).pid, flush=True)\n"
        "if os.fork() == 0:\n    sys.exit(0)  # (a forked process, ending at once)\n"
        "time.sleep(0.5)\nsys.exit(7)\n"
    )
    r = step(probe_env(tmp_path, code), tmp_path)
    assert r.returncode == 7, r.stderr
    left = int(r.stdout.split()[0])
    try:
        time.sleep(0.5)  # (the server has reaped the step by now)
        assert client.alive(left), "the step's background process was killed"
    finally:
        os.kill(left, signal.SIGKILL)


def test_the_step_launcher_needs_no_script_folder_on_sys_path(tmp_path: Path):
    """`python src/pipeline/step.py` (the Makefile's) finds client.py also under
    PYTHONSAFEPATH, which leaves the script's folder off sys.path."""
    env = probe_env(tmp_path, "print('ran')\n", {"PYTHONSAFEPATH": "1"})
    r = subprocess.run(
        [sys.executable, str(CLIENT.parent / "step.py"), "--no-start", "kzstep"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "ran\n"), r.stderr


def one_cell(tmp_path: Path, code: str) -> tuple[Path, Path]:
    """A notebook of one code cell on the project's kernel, and where its run goes."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": paths.KERNEL_NAME, "language": "python"}
    src, out = tmp_path / "k.ipynb", tmp_path / "k.out.ipynb"
    nbformat.write(nb, src)
    return src, out


@pytest.mark.parametrize("forked", [True, False])
def test_the_runners_kill_ends_what_the_notebook_started(tmp_path: Path, forked: bool):
    """The runner ends a kernel as jupyter_client does, by its process group: a
    process the notebook started does not outlive the run (forked kernel or not)."""
    from pipeline import run as run_mod

    if forked:
        ready()
    src, out = one_cell(tmp_path, "import subprocess\nprint(subprocess.Popen(['sleep', '60']).pid)")
    km = kernels.manager(forked, kernel_name=paths.KERNEL_NAME)
    pm.execute_notebook(
        str(src), str(out), kernel_name=paths.KERNEL_NAME, progress_bar=False, km=km
    )  # fmt: skip
    assert isinstance(km.provisioner.process, kernels.ForkedKernel) == forked
    child = int(nbformat.read(out, as_version=4).cells[0].outputs[0]["text"])
    assert client.alive(child)
    run_mod._kill(km)
    run_sync(km._async_cleanup_resources)()
    deadline = time.monotonic() + 5
    while client.alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client.alive(child), "a process the notebook started outlived its kernel"


def test_a_step_that_closes_its_stdout_exits_cleanly(tmp_path: Path):
    """As at an interpreter's exit: a stream the step closed itself is not flushed
    (nbstripout, the git filter, closes stdout through its own wrapper)."""
    ready()
    code = "import io, sys\nw = io.TextIOWrapper(sys.stdout.buffer)\nw.write('x')\nw.close()\n"
    r = step(probe_env(tmp_path, code), tmp_path)
    assert (r.returncode, r.stdout) == (0, "x")


def test_the_start_up_variables_are_those_read_at_start_up_or_import():
    """The names that give a caller another server (client.startup_var): what Python,
    the locale, matplotlib, the maths and data libraries, Jupyter, IPython and debugpy
    read at start or import and keep; never PYTHONPATH (its foreign entries
    count, `_foreign_path`), nor a build's own variables, nor what an import sets
    unless it is set (kernels.SET_UNLESS_SET: a child gets it unless its caller has it)."""
    read = [
        "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "PYTHONPATHX", "LANG", "LANGUAGE",
        "LC_ALL", "LC_NUMERIC", "TZ", "HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
        "MPLBACKEND", "MPLCONFIGDIR", "MATPLOTLIBRC", "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "MKL_CBWR", "JUPYTER_PATH",
        "IPYTHONDIR", "IPYTHON_SUPPRESS_CONFIG_ERRORS", "PYDEVD_USE_FRAME_EVAL",
        "PYDEV_DEBUG", "DEBUGPY_LOG_DIR", "GEVENT_SUPPORT", "PYCHARM_HOSTED",
        "IDE_PROJECT_ROOTS", "LIBRARY_ROOTS", "KZ_WARM_SERVER",
        "PANDERA_VALIDATION_DEPTH", "XDG_DATA_HOME", "PYZMQ_BACKEND", "TORNADO_EXTENSION",
        "PANDAS_COPY_ON_WRITE", "NPY_PROMOTION_STATE", "NUMPY_MADVISE_HUGEPAGE",
        "SCIPY_ARRAY_API", "PILLOW_BLOCK_SIZE", "PATSY_FORCE_NO_WARNINGS",
        "WRAPT_DISABLE_EXTENSIONS", "PYDANTIC_DISABLE_PLUGINS", "SM_FORMULA_ENGINE",
        "NBFORMAT_VALIDATOR", "PYPARSINGENABLEALLWARNINGS",
    ]  # fmt: skip
    not_read = [
        "PYTHONPATH", "PATH", "KZ_COMPENDIUM_ROOT", "KZ_OUTPUT_DIR", "KZ_FORK_IDLE",
        "SPARK_LOCAL_IP", "PYARROW_IGNORE_TIMEZONE", "LANGX", "TZDIR", "PYDEVX",
        "MY_THREADS", "HOMEDIR", "USER",
    ]  # fmt: skip
    assert [n for n in read if not client.startup_var(n)] == []
    assert [n for n in not_read if client.startup_var(n)] == []


def test_a_relative_pythonpath_entry_is_the_folder_it_names_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """`PYTHONPATH=src`: the project's src/ from the project's root (the server's own
    code, no other server), a foreign folder from elsewhere (a kernel runs in its
    notebook's folder), and the server started for it gets that folder, not the
    relative name (which it would resolve from its own working directory, /)."""
    src = Path(client.SRC)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    monkeypatch.chdir(src.parent)
    assert client.address({**env, "PYTHONPATH": "src"}) == client.address(env)
    monkeypatch.chdir(tmp_path)
    assert client._foreign_path({"PYTHONPATH": "src"}) == [str(tmp_path / "src")]
    # (a relative `cwd` is this process's folder's: the server, in /, computes the same)
    assert client._foreign_path({"PYTHONPATH": "src"}, "nb") == [str(tmp_path / "nb/src")]
    assert client.address({**env, "PYTHONPATH": "src"}) != client.address(env)
    # (a kernel's address is computed for its own folder: `cwd`, not this process's)
    assert client.address({**env, "PYTHONPATH": "src"}, cwd=str(src.parent)) == client.address(env)


def test_a_named_server_is_one_of_its_own():
    """KZ_WARM_SERVER (what `make verify` sets for its re-execution) gives a server
    of its own: another address, so a fresh interpreter, never the build's."""
    env = {k: v for k, v in os.environ.items() if k != "KZ_WARM_SERVER"}
    names = {
        client.address(env),
        client.address({**env, "KZ_WARM_SERVER": "verify-1"}),
        client.address({**env, "KZ_WARM_SERVER": "verify-2"}),
    }
    assert len(names) == 3
    assert client.address(env) == client.address()  # the caller's own environment


@pytest.mark.slow
def test_the_server_stays_and_gives_kernels_what_their_imports_set(tmp_path: Path):
    """The server's own environment stays its starter's (a preload that set a variable
    made its periodic address check see a change: it exited and restarted every 2 s),
    a forked kernel still sees what its imports would have set (ipykernel.debugger
    sets PYDEVD_USE_FRAME_EVAL), and a step does not get debugpy's breakpoint hook."""
    ready()
    env = probe_env(tmp_path, "import os\nprint(os.getppid())\n")
    first = step(env, tmp_path)
    time.sleep(2.5)  # past one address check
    second = step(env, tmp_path)
    assert first.returncode == second.returncode == 0
    assert int(first.stdout) == int(second.stdout) != os.getpid()  # the same server
    # a step's breakpoint() is Python's own, not debugpy's (which a kernel has), and
    # so are its excepthook and unraisablehook (not those the server's own `python -m
    # pipeline` set)
    code = "import sys\nprint(sys.breakpointhook is sys.__breakpointhook__, "
    code += "sys.excepthook is sys.__excepthook__, sys.unraisablehook is sys.__unraisablehook__)\n"
    assert step(probe_env(tmp_path, code), tmp_path).stdout.strip() == "True True True"
    assert "PYDEVD_USE_FRAME_EVAL" not in os.environ  # (not set by the tests themselves)
    work = tmp_path / "nb"
    work.mkdir()
    code = "import os, sys\nstate = {'frame_eval': os.environ.get('PYDEVD_USE_FRAME_EVAL')}\n"
    forked, p = run(notebook(work / "a.ipynb", code), tmp_path / "a.out.ipynb", True, "1")
    assert isinstance(p, kernels.ForkedKernel) and forked["frame_eval"] == "NO"


def test_a_forked_kernels_client_waits_less_for_a_quiet_iopub():
    """The forked kernels' client is ready once IOPub has been quiet for 20 ms
    (jupyter_client waits 200 ms); its wait_for_ready must be the override."""
    kc = kernels.ForkKernelManager(kernel_name=paths.KERNEL_NAME).client()
    assert isinstance(kc, kernels.QuickReadyClient)
    assert type(kc).wait_for_ready is not AsyncKernelClient.wait_for_ready
    normal = kernels.manager(False).client()
    assert type(normal) is AsyncKernelClient  # normal: as is


def test_the_matplotlibrc_a_caller_would_read_is_part_of_the_address(tmp_path: Path):
    """client.mpl_files finds the matplotlibrc that matplotlib itself takes (asked in a
    fresh interpreter for each case: the working directory's, $MATPLOTLIBRC as a file
    or a folder, $MPLCONFIGDIR's, $XDG_CONFIG_HOME's), and the style sheets; a file
    with other contents gives another server, the same contents in another folder
    the same one."""
    rc = "axes.titlelocation: left\n"
    home = tmp_path / "home"
    (home / ".config" / "matplotlib").mkdir(parents=True)
    base = {**os.environ, "HOME": str(home)}
    for name in ("MPLCONFIGDIR", "MATPLOTLIBRC", "XDG_CONFIG_HOME"):
        base.pop(name, None)
    cases: dict[str, tuple[dict[str, str], Path]] = {}
    for case in ("cwd", "rc-file", "rc-folder", "mplconfigdir", "xdg", "none"):
        work = tmp_path / case
        work.mkdir()
        env, where = dict(base), work / "elsewhere"
        if case == "cwd":
            where = work / "matplotlibrc"
        elif case == "rc-file":
            env["MATPLOTLIBRC"] = str(where := work / "my.rc")
        elif case == "rc-folder":
            env["MATPLOTLIBRC"] = str(work / "rcdir")
            where = work / "rcdir" / "matplotlibrc"
        elif case == "mplconfigdir":
            env["MPLCONFIGDIR"] = str(work / "cfg")
            where = work / "cfg" / "matplotlibrc"
        elif case == "xdg":
            env["XDG_CONFIG_HOME"] = "xdg"  # (relative: from the working directory)
            where = work / "xdg" / "matplotlib" / "matplotlibrc"
        if case != "none":
            where.parent.mkdir(parents=True, exist_ok=True)
            where.write_text(f"{rc}# {case}\n")
        cases[case] = env, work
        took = subprocess.run(
            [sys.executable, "-c", "import matplotlib; print(matplotlib.matplotlib_fname())"],
            cwd=work, env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        found = client.mpl_files(env, str(work))[0]
        if case == "none":  # (the library's own file: none of the user's)
            assert found is None and Path(took).parent.name == "mpl-data", took
        else:
            assert os.path.samefile(work / took, where), (case, took)  # (took: maybe relative)
            assert found == hashlib.sha256(where.read_bytes()).hexdigest(), case
    addresses = {client.address(env, str(work)) for env, work in cases.values()}
    assert len(addresses) == len(cases)  # (each file says which case it is)
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(tmp_path / "cwd" / "matplotlibrc", other / "matplotlibrc")
    env, work = cases["cwd"]
    assert client.address(env, str(other)) == client.address(env, str(work))
    styles = home / ".config" / "matplotlib" / "stylelib"
    styles.mkdir()
    before = client.address(*cases["none"][:1], str(cases["none"][1]))
    (styles / "mine.mplstyle").write_text("axes.grid: True\n")
    assert client.address(cases["none"][0], str(cases["none"][1])) != before


@pytest.mark.slow
def test_a_forked_step_reads_the_matplotlibrc_of_its_folder(tmp_path: Path):
    """A matplotlibrc in the folder a step (or kernel) starts in is read by the
    server that forks it (it imports there), as `python -m` there reads it."""
    (tmp_path / "matplotlibrc").write_text("axes.titlelocation: left\n")
    code = "import os, matplotlib\nprint(matplotlib.rcParams['axes.titlelocation'], os.getppid())\n"
    env = probe_env(tmp_path, code)
    addr = client.address(env, str(tmp_path))
    assert addr != client.address(env, str(tmp_path / "src"))  # (no matplotlibrc there)
    client.ensure_server(addr, caller=env, cwd=str(tmp_path))
    try:
        deadline = time.monotonic() + 120
        while not client.listening(addr):
            assert time.monotonic() < deadline, "the warm server did not become ready"
            time.sleep(0.05)
        r = step(env, tmp_path)
        value, parent = r.stdout.split()
        assert r.returncode == 0 and value == "left", r.stdout + r.stderr
        assert int(parent) != os.getpid() and client.alive(int(parent))  # forked
    finally:
        kernels.stop(addr)


@pytest.mark.parametrize("forked", [True, False])
def test_a_run_whose_kernel_dies_ends_and_says_so(tmp_path: Path, forked: bool):
    """A kernel that dies while a cell runs (here it kills itself; a killed warm
    server's kernels end so too) ends the run with nbclient's DeadKernelError
    within seconds, forked kernel or not: the run's client is asynchronous, so
    nbclient's check that the kernel is alive runs while it waits for output."""
    from nbclient.exceptions import DeadKernelError

    if forked:
        ready()
    src, out = one_cell(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    km = kernels.manager(forked, kernel_name=paths.KERNEL_NAME)

    raised: list[BaseException] = []

    def execute() -> None:
        try:
            pm.execute_notebook(
                str(src), str(out), kernel_name=paths.KERNEL_NAME, progress_bar=False, km=km
            )  # fmt: skip
        except BaseException as e:  # noqa: BLE001 - what the run raised, checked below
            raised.append(e)

    import threading

    runner = threading.Thread(target=execute, daemon=True)  # (a hung run: the test fails)
    runner.start()
    runner.join(60)
    assert not runner.is_alive(), "the run did not end after its kernel died"
    assert [type(e) for e in raised] == [DeadKernelError], raised
    assert isinstance(km.provisioner.process, kernels.ForkedKernel) == forked
    run_sync(km._async_cleanup_resources)()
