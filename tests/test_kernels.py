"""The warm server (pipeline.kernels, src/pipeline/client.py): each notebook runs in
its own fresh process, forked from a pre-imported interpreter; it sees nothing
another notebook did (variables, matplotlib rcParams and figures), gets the
runner's environment and working directory, and papermill's parameters. A build
step forked by it gets the caller's arguments, environment, working directory and
streams, imports the caller's own code afresh, and its exit status is the
caller's. (That a build with the server gives the same bytes as one without is
tests/test_verify.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from analysis import paths
from pipeline import client, kernels

CLIENT = Path(client.__file__)

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
import json
state.update(cwd=os.getcwd(), mark=os.environ.get("KZ_TEST_MARK"), value=value,
             main=sys.modules["__main__"].__dict__ is globals(), path=sys.path,
             env=sorted(os.environ))
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
    km = kernels.manager(forked, kernel_name=paths.KERNEL_NAME)
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


def test_forked_kernels_are_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("KZ_FORK_KERNELS", raising=False)
    monkeypatch.setenv("KZ_TEST_MARK", "from the runner")
    assert kernels.start(True, paths.KERNEL_NAME)
    ready()
    work = tmp_path / "nb"
    work.mkdir()
    first, p1 = run(notebook(work / "a.ipynb", FIRST), tmp_path / "a.out.ipynb", True, "1")
    second, p2 = run(notebook(work / "b.ipynb", SECOND), tmp_path / "b.out.ipynb", True, "2")
    # both ran on forked kernels (not the fallback), in different processes
    assert isinstance(p1, kernels.ForkedKernel) and isinstance(p2, kernels.ForkedKernel)
    assert first["pid"] != second["pid"] != os.getpid()
    assert first["ppid"] == second["ppid"] != os.getpid()  # children of the fork server
    assert first["figures"] == [1] and second["figures"] == []
    for state, value in ((first, "1"), (second, "2")):
        assert state["value"] == value  # papermill's injected parameters
        assert state["mark"] == "from the runner"  # the runner's environment
        assert state["cwd"] == str(work)
        assert state["main"]  # the notebook's namespace is a fresh __main__
    # the second notebook's checks hold on a kernel started the normal way, which
    # sees the same sys.path and environment variables
    normal, p3 = run(work / "b.ipynb", tmp_path / "c.out.ipynb", False, "2")
    assert not isinstance(p3, kernels.ForkedKernel)
    assert (normal["path"], normal["env"]) == (second["path"], second["env"])


def test_switched_off_or_outside_a_build_starts_kernels_normally(monkeypatch):
    monkeypatch.setenv("KZ_FORK_KERNELS", "0")
    assert not kernels.start(True, paths.KERNEL_NAME)
    monkeypatch.delenv("KZ_FORK_KERNELS")
    assert not kernels.start(False, paths.KERNEL_NAME)
    assert type(kernels.manager(False, kernel_name=paths.KERNEL_NAME)).__name__ == "KernelManager"


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


def test_a_step_runs_forked_with_the_callers_code_streams_and_status(tmp_path: Path):
    """`python src/pipeline/client.py MODULE ARGS` is `python -m MODULE ARGS`: the
    caller's arguments, working directory, environment, umask and stdout/stderr; its
    exit status; the module imported afresh from the caller's PYTHONPATH (an edit
    takes effect at once), and no project code loaded before it."""
    ready()
    code = tmp_path / "code"
    code.mkdir()
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
    assert server not in (caller, os.getpid()) and alive(server)  # forked by the server
    (code / "kzprobe.py").write_text(PROBE.replace("VERSION", "2"))
    out2, r2, _ = step("0")
    assert r2.returncode == 0 and out2["version"] == 2  # the edit took effect
    assert out2["ppid"] == server and out2["pid"] != out["pid"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
