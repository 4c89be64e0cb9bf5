"""Forked kernels (pipeline.kernels): each notebook runs in its own fresh process,
forked from the build's pre-imported interpreter; it sees nothing another notebook
did (variables, matplotlib rcParams and figures), gets the runner's environment and
working directory, and papermill's parameters. (That a build with forked kernels
gives the same bytes as one without is tests/test_verify.py.)"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from analysis import paths
from pipeline import kernels

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


def run(src: Path, out: Path, owner: int | None, value: str) -> tuple[dict, object]:
    km = kernels.manager(owner, kernel_name=paths.KERNEL_NAME)
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
    monkeypatch.setenv("KZ_FORK_IDLE", "5")  # the server of this "build" exits soon after
    monkeypatch.setenv("KZ_TEST_MARK", "from the runner")
    owner = kernels.start(os.getpid(), paths.KERNEL_NAME)  # this test is the build
    assert owner == os.getpid()
    # a kernel asked for while the server still imports starts normally: wait until it is ready
    from jupyter_client.kernelspec import KernelSpecManager

    python = kernels.interpreter(KernelSpecManager().get_kernel_spec(paths.KERNEL_NAME).argv)
    assert python is not None
    deadline = time.monotonic() + 120
    while not kernels._listening(kernels.address(owner, python)):
        assert time.monotonic() < deadline, "the fork server did not become ready"
        time.sleep(0.05)
    work = tmp_path / "nb"
    work.mkdir()
    first, p1 = run(notebook(work / "a.ipynb", FIRST), tmp_path / "a.out.ipynb", owner, "1")
    second, p2 = run(notebook(work / "b.ipynb", SECOND), tmp_path / "b.out.ipynb", owner, "2")
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
    normal, p3 = run(work / "b.ipynb", tmp_path / "c.out.ipynb", None, "2")
    assert not isinstance(p3, kernels.ForkedKernel)
    assert (normal["path"], normal["env"]) == (second["path"], second["env"])


def test_switched_off_or_outside_a_build_starts_kernels_normally(monkeypatch):
    monkeypatch.setenv("KZ_FORK_KERNELS", "0")
    assert kernels.start(os.getpid(), paths.KERNEL_NAME) is None
    monkeypatch.delenv("KZ_FORK_KERNELS")
    assert kernels.start(None, paths.KERNEL_NAME) is None
    assert type(kernels.manager(None, kernel_name=paths.KERNEL_NAME)).__name__ == "KernelManager"


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
