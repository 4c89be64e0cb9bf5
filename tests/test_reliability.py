"""Verified means verified: one root, one writer, fingerprinted outputs, one build
at a time, all-or-nothing publication, and bad input as one line. Each scenario
runs on a scratch checkout (never this checkout's reports/)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import copy_project, make, run_module
from pipeline import fingerprint

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def tree(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under folder."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def outputs(root: Path) -> dict[str, dict[str, str]]:
    """Everything the build or the paper reads or delivers."""
    return {sub: tree(root / sub) for sub in ("reports", "data/processed", ".build/out")}


def plain_env(**extra: str) -> dict[str, str]:
    """An environment as a researcher has it: no project variables set."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KZ_COMPENDIUM_ROOT", "KZ_OUTPUT_DIR", "PYTHONPATH", "MAKEFLAGS")
    }
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    return env | extra


def run(args: list[str], cwd: Path, timeout: int = 600, **env: str):
    return subprocess.run(
        args, cwd=cwd, env=plain_env(**env), capture_output=True, text=True, timeout=timeout
    )


def ran(out: str) -> list[str]:
    import re

    return re.findall(r"\] (\S+) done in", out)


def no_traceback(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr


# ------------------------------------------------------------------ one root
def start(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """`cmd` in the background, in a process group of its own that gets SIGINT as one
    started from a terminal does (a test run started in the background, `make test &`
    or nohup, ignores SIGINT, and so would its children)."""
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def wait_until_running(p: subprocess.Popen, work: Path, stem: str) -> None:
    """Until the runner of notebook `stem`, started by `p`, has made its work folder
    in `work` (its main runs; its start line may come later, after the build's plan)."""
    deadline = time.time() + 120
    while not list(work.glob(f"{stem}-*")):
        assert p.poll() is None, f"ended before {stem} ran: " + "".join(p.communicate())
        assert time.time() < deadline, f"{stem} did not start within 120 s"
        time.sleep(0.01)


def test_a_copied_checkout_is_its_own_root(tmp_path: Path):
    copy = copy_project(tmp_path / "copy")
    code = "from analysis import paths; print(paths.ROOT)"
    for cwd in (copy, copy / "notebooks"):
        r = run([sys.executable, "-c", code], cwd=cwd)
        assert r.returncode == 0, r.stderr
        assert Path(r.stdout.strip()) == copy.resolve()  # not the package's checkout
    r = run([sys.executable, "-c", code], cwd=tmp_path)
    assert r.returncode != 0 and "not inside a checkout of the compendium" in r.stderr


def fake_venv(checkout: Path, activate: str) -> Path:
    """A fixture .venv in `checkout` (instead of its link): an activate script and
    the installed mark; returns the script."""
    (checkout / ".venv").unlink()
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / ".installed").touch()
    script = checkout / ".venv" / "bin" / "activate"
    script.write_text(activate)
    return script


# the two lines of uv's activate script that set VIRTUAL_ENV (venv's: one, with ")
UV_ACTIVATE = """VIRTUAL_ENV='{}'
if ([ "$OSTYPE" = "cygwin" ] || [ "$OSTYPE" = "msys" ]) && $(command -v cygpath &> /dev/null) ; then
    VIRTUAL_ENV=$(cygpath -u "$VIRTUAL_ENV")
fi
"""


def test_a_venv_from_another_path_is_rebuilt(tmp_path: Path):
    for n, (activate, owner) in enumerate(
        [
            ('VIRTUAL_ENV="/elsewhere/.venv"\n', "/elsewhere/.venv"),
            (UV_ACTIVATE.format("/else where/.venv"), "/else where/.venv"),
        ]
    ):
        copy = copy_project(tmp_path / f"copy{n}")
        script = fake_venv(copy, activate)
        r = make(copy, "-n", "report")
        assert f"[env] .venv was built for {owner}, not" in r.stdout and "rebuilding" in r.stdout
        assert not script.exists()
        assert "building .venv from requirements.lock" in r.stdout  # the dry run's next step


def test_a_venv_of_its_own_in_a_path_with_spaces_is_kept(tmp_path: Path):
    copy = copy_project(tmp_path / "a folder with spaces" / "copy")
    script = fake_venv(copy, UV_ACTIVATE.format(copy / ".venv"))
    r = make(copy, "-n", "report")
    assert "rebuilding" not in r.stdout and script.exists(), r.stdout + r.stderr


# ------------------------------------------------------------------ one writer
@pytest.mark.notebook
@pytest.mark.slow
def test_runs_outside_make_write_nothing_the_build_reads(built: Path):
    before = outputs(built)
    other = built / "other.yaml"
    other.write_text(
        (built / "params.yaml")
        .read_text()
        .replace("granularity_n_max: 1000", "granularity_n_max: 500")
    )
    try:
        # the runner by hand, with another params file
        r = run(
            [
                sys.executable,
                "-m",
                "pipeline.run",
                "notebooks/04_survey.ipynb",
                "--params",
                "other.yaml",
            ],
            cwd=built,
        )
        assert r.returncode == 0, r.stderr
        assert (built / "scratch/outputs/results/04_survey.json").exists()
        # in no build's plan (the last build's plan is still there)
        assert "[run] 04_survey started: run by hand" in r.stdout + r.stderr, r.stdout
        # nbconvert, as JupyterLab does it (kernel started in notebooks/)
        r = run(
            [
                str(VENV_BIN / "jupyter"),
                "nbconvert",
                "--to",
                "notebook",
                "--execute",
                "--output-dir",
                str(built / "scratch" / "nbconvert"),
                "notebooks/01_data.ipynb",
            ],
            cwd=built,
        )
        assert r.returncode == 0, r.stderr
        assert (built / "scratch/outputs/processed/ngo_counts.csv").exists()
        assert outputs(built) == before, "a run outside make changed build outputs"
        r = make(built, "report")
        assert r.returncode == 0 and ran(r.stdout) == [], r.stdout
        assert outputs(built) == before
    finally:
        other.unlink()
        shutil.rmtree(built / "scratch", ignore_errors=True)


@pytest.mark.notebook
@pytest.mark.slow
def test_papermill_parameters(built: Path):
    # (any stage would do: the one that imports least and draws no figure)
    out = built / "scratch" / "pm.ipynb"
    out.parent.mkdir(exist_ok=True)
    try:
        r = run(
            [
                str(VENV_BIN / "papermill"),
                "notebooks/05_claims.ipynb",
                str(out),
                "-p",
                "focus_country",
                "KGZ",
                "--no-progress-bar",
            ],
            cwd=built,
        )
        assert r.returncode != 0
        assert "papermill parameter(s) focus_country are not read" in r.stdout + r.stderr
        assert "-p params_file other.yaml" in r.stdout + r.stderr
        r = run(
            [
                str(VENV_BIN / "papermill"),
                "notebooks/05_claims.ipynb",
                str(out),
                "-p",
                "params_file",
                "params.yaml",
                "--no-progress-bar",
            ],
            cwd=built,
        )
        assert r.returncode == 0, r.stderr
        assert (built / "scratch/outputs/results/05_claims.json").exists()
    finally:
        shutil.rmtree(built / "scratch", ignore_errors=True)


# ------------------------------------------------------------------ snapshots
@pytest.mark.notebook
def test_a_notebook_runs_on_the_params_snapshot_make_tracked(built: Path):
    params = built / "params.yaml"
    good = params.read_text()
    result = built / ".build/out/results/04_survey.json"
    before = json.loads(result.read_text())
    params.write_text(good.replace("granularity_n_max: 1000", "granularity_n_max: 300"))
    try:  # params.yaml edited after make took its snapshot: the run must not see it
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline.run",
                "notebooks/04_survey.ipynb",
                "--build",
                "--out",
                ".build/out/notebooks/04_survey.ipynb",
            ],
            cwd=built,
            env={**os.environ, "KZ_COMPENDIUM_ROOT": str(built)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 0, r.stderr
        assert json.loads(result.read_text()) == before
        nb = json.loads((built / ".build/out/notebooks/04_survey.ipynb").read_text())
        assert nb["metadata"]["papermill"]["parameters"] == {
            "params_file": ".build/params/survey.json"
        }
    finally:
        params.write_text(good)


@pytest.mark.notebook
def test_autosave_in_lab_and_copies_change_nothing_make_sees(built: Path):
    stages = [p.name for p in fingerprint.stages(built / "notebooks")]
    assert "02_ngo.ipynb" in stages
    nb_path = built / "notebooks" / "02_ngo.ipynb"
    good = nb_path.read_text()
    nb = json.loads(good)
    for i, c in enumerate(nb["cells"]):  # what Lab writes after running and autosaving
        c["id"] = f"lab-{i}"
        if c["cell_type"] == "code":
            c["execution_count"] = i
            c["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["x\n"]}]
            c["metadata"]["execution"] = {"iopub.status.busy": "2026-01-01"}
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.11.9"}
    nb_path.write_text(json.dumps(nb))
    copy = built / "notebooks" / "02_ngo-Copy1.ipynb"
    shutil.copy(nb_path, copy)
    scratch_nb = built / "notebooks" / "Untitled.ipynb"
    scratch_nb.write_text("{}")
    try:
        r = make(built, "report")
        assert r.returncode == 0, r.stderr
        assert ran(r.stdout) == [], r.stdout
        assert (
            "02_ngo-Copy1.ipynb" in r.stdout and "scratch notebooks belong in scratch/" in r.stdout
        )
        # the copy and the scratch notebook are not stages
        assert [p.name for p in fingerprint.stages(built / "notebooks")] == stages
    finally:
        nb_path.write_text(good)
        copy.unlink()
        scratch_nb.unlink()


# ------------------------------------------------------------------ fingerprints, publication
@pytest.mark.notebook
def test_delivered_files_edited_by_hand_are_republished(built: Path):
    res = built / "reports" / "results.json"
    good = res.read_bytes()
    res.write_bytes(good.replace(b'"value": 23335', b'"value": 99999', 1))
    r = make(built, "report")
    assert r.returncode == 0, r.stderr
    assert "publishing again" in r.stdout and ran(r.stdout) == []
    assert res.read_bytes() == good


@pytest.mark.notebook
def test_a_stale_output_is_refused_by_name_then_rerun(built: Path):
    fig = built / ".build/out/figures/fig_survey_caf.svg"
    good = fig.read_bytes()
    delivered = tree(built / "reports")
    fig.write_bytes(good + b"<!-- edited -->")
    os.utime(built / "reports/paper.html", ns=(0, 0))  # the paper stage must run
    r = make(built, "report")
    assert r.returncode != 0
    assert "stale outputs: 04_survey" in r.stderr and "was changed after it ran" in r.stderr
    no_traceback(r)
    assert tree(built / "reports") == delivered
    r = make(built, "report")  # the stale notebook was marked: it reruns
    assert r.returncode == 0, r.stderr
    assert ran(r.stdout) == ["04_survey"] and fig.read_bytes() == good


@pytest.mark.notebook
def test_an_input_edited_while_its_notebook_runs_leaves_it_stale(built: Path):
    """The runner hashes what make gave it before the run: an input edited while
    the notebook runs (here its params snapshot, rewritten with the same values) is
    not recorded as what it ran on, so the paper stage refuses it by name."""
    stamp = built / ".build/params/survey.json"
    good = stamp.read_bytes()
    delivered = tree(built / "reports")
    os.utime(built / ".build/out/notebooks/04_survey.ipynb", ns=(0, 0))  # it must rerun
    env = {**os.environ, "KZ_COMPENDIUM_ROOT": str(built)}
    env.pop("MAKEFLAGS", None)
    p = start(["make", "--no-print-directory", "report"], built, env)
    try:
        wait_until_running(p, built / ".build/tmp", "04_survey")  # (it has hashed)
        stamp.write_bytes(good + b"\n")  # (another file, the same values)
        out, err = p.communicate(timeout=120)
        assert p.returncode != 0, out + err
        assert "stale outputs: 04_survey (params section 'survey' changed)" in err, err
        assert tree(built / "reports") == delivered
    finally:
        stamp.write_bytes(good)
    r = make(built, "report")  # (marked stale: it reruns)
    assert r.returncode == 0 and ran(r.stdout) == ["04_survey"], r.stdout + r.stderr


@pytest.mark.notebook
def test_a_failing_paper_stage_keeps_the_previous_reports(built: Path):
    nb_path = built / "notebooks" / "04_survey.ipynb"
    good = nb_path.read_text()
    quoted = '\\"osm_n_count\\"'  # as the notebook's JSON holds it
    assert quoted in good
    nb_path.write_text(good.replace(quoted, '\\"osm_n_count_renamed\\"', 1))
    delivered = tree(built / "reports")
    try:
        r = make(built, "report")
        assert r.returncode != 0 and "osm_n_count" in r.stderr
        no_traceback(r)
        assert tree(built / "reports") == delivered
        assert not list((built / "reports").glob(".staging-*"))
    finally:
        nb_path.write_text(good)
    assert make(built, "report").returncode == 0


# ------------------------------------------------------------------ lock, interruption
@pytest.mark.notebook
def test_a_second_build_is_refused_while_one_runs(built: Path):
    other = subprocess.Popen(["sleep", "60"])
    try:
        r = subprocess.run(
            [sys.executable, "-m", "pipeline.snapshot", "--owner", str(other.pid)],
            cwd=built,
            env={**os.environ, "KZ_COMPENDIUM_ROOT": str(built)},
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        r = make(built, "report")
        assert r.returncode != 0 and "another build is running in this checkout" in r.stderr
        assert "wait for it to finish, or stop it.  Stop." in r.stderr  # (make's own end)
        assert f"make pid {other.pid}" in r.stderr
    finally:
        other.kill()
        other.wait()
    assert make(built, "report").returncode == 0  # a dead owner's lock is taken over


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_a_ctrl_c_raised_where_python_ignores_exceptions_is_not_lost(signum):
    """Python runs a signal's handler in whatever code runs when it comes; raised in
    a callback whose exceptions it ignores (here a weakref's; during an entry point's
    imports, importlib's module-lock callback: the test below failed so), the Ctrl-C
    was printed as "Exception ignored" and the run went on. Now it ends the entry
    point at once, with its one line. SIGTERM: the runner's handler turns it into
    `Terminated`, a Ctrl-C that says which signal came."""
    code = (
        "import sys, signal, time, weakref\n"
        "sys.argv = ['pipeline.probe']\n"  # (a step the warm server forked: the hooks)
        "import pipeline\n"
        "signal.signal(signal.SIGTERM, pipeline.terminated)\n"
        "class A: pass\n"
        f"signum = {int(signum)}\n"
        "def cb(ref): raise (pipeline.Terminated(signum) if signum == signal.SIGTERM\n"
        "                    else KeyboardInterrupt())\n"
        "a = A(); r = weakref.ref(a, cb); del a\n"
        "time.sleep(3); print('went on')\n"
    )
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert "went on" not in r.stdout and time.monotonic() - t0 < 2.5, r.stderr
    assert r.stderr == "[probe] interrupted: nothing published\n", r.stderr


def test_ctrl_c_while_an_entry_point_imports_is_one_line(tmp_path: Path):
    """Ctrl-C while `python -m pipeline.run` still imports its libraries (~0.5 s on a
    cold start, before its main runs): one line, not an import's traceback, and the
    end of any uncaught Ctrl-C, by SIGINT (a shell loop around it stops too). (After
    the imports, its main's own line: the test below.)"""
    root = copy_project(tmp_path / "project")
    p = subprocess.Popen(
        [sys.executable, "-m", "pipeline.run", "notebooks/04_survey.ipynb"],
        cwd=root,
        env={**os.environ, "KZ_COMPENDIUM_ROOT": str(root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(0.15)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGINT, err
    assert err == "[run] interrupted: nothing published\n", err
    assert not (root / "scratch").exists()


def test_ctrl_c_in_a_runs_main_is_one_line_and_stops_a_shell_loop(tmp_path: Path):
    """Ctrl-C once `python -m pipeline.run` runs (its kernel starting): the runner's
    one line, then it ends by SIGINT, as Python ends after an uncaught Ctrl-C, so a
    shell loop around it stops (with status 130 the shell would go on)."""
    root = copy_project(tmp_path / "project")
    loop = f"{sys.executable} -m pipeline.run notebooks/04_survey.ipynb; echo next"
    p = start(["bash", "-c", loop], root, {**os.environ, "KZ_COMPENDIUM_ROOT": str(root)})
    wait_until_running(p, root / "scratch/.tmp", "04_survey")
    os.killpg(p.pid, signal.SIGINT)  # as a terminal does: to its foreground group
    out, err = p.communicate(timeout=120)
    assert err == "[run] 04_survey interrupted: nothing published\n", err
    assert "next" not in out and p.returncode == -signal.SIGINT, (p.returncode, out)
    assert list((root / "scratch/.tmp").glob("*")) == []


def interrupted_by_hand(tmp_path: Path, stop: str, signum: int) -> None:
    """A run by hand of 04_survey in a scratch copy, in a driver whose `stop` (code)
    interrupts it at a chosen moment: one line, it returns 128 + `signum` (called
    in-process), and neither its work folder nor its kernel's sockets folder
    (kz-kernel-<pid>-*, in a TMPDIR of its own) is left."""
    root = copy_project(tmp_path / "project")
    (tmp := tmp_path / "tmp").mkdir()
    code = f"import os, signal, sys\nfrom pipeline import kernels, run\n{stop}"
    code += "sys.exit(run.main(['notebooks/04_survey.ipynb']))\n"
    env = {**os.environ, "KZ_COMPENDIUM_ROOT": str(root), "TMPDIR": str(tmp)}
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
    )
    assert r.returncode == 128 + signum, (r.returncode, r.stderr)
    assert r.stderr.endswith("interrupted: nothing published\n"), r.stderr
    assert list((root / "scratch/.tmp").glob("*")) == []
    assert list(tmp.glob("*")) == []


def test_stopped_while_the_runner_sets_up_its_kernel_it_leaves_nothing(tmp_path: Path):
    """The moment the test above hits now and then (1 run in ~8): a Ctrl-C after the
    runner has made its work folder, before its kernel has started. Here the kernel
    manager's construction raises it, so the moment is always hit."""
    stop = "def stopped(*a, **k): raise KeyboardInterrupt\nkernels.manager = stopped\n"
    interrupted_by_hand(tmp_path, stop, signal.SIGINT)


def test_sigterm_during_the_runners_clean_up_waits_for_its_end(tmp_path: Path):
    """A SIGTERM that arrives while the runner cleans up (a Ctrl-C, then make's
    SIGTERM a moment later) ended it at once, with its work folder left: the
    clean-up now ends first, then the run ends by SIGTERM with its one line. Here the
    first folder removal sends it (and the notebook itself is not run: no kernel)."""
    stop = (
        "import shutil, papermill\npapermill.execute_notebook = lambda *a, **k: None\n"
        "real, sent = shutil.rmtree, []\n"
        "def rmtree(*a, **k):\n"
        "    if not sent:\n        sent.append(1)\n        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    real(*a, **k)\n"
        "shutil.rmtree = rmtree\n"
    )
    interrupted_by_hand(tmp_path, stop, signal.SIGTERM)


def test_an_interrupted_entry_point_ends_by_its_signal_in_a_process_of_its_own():
    """`pipeline.end_interrupted`: an entry-point process (its excepthook installed)
    ends by the signal that interrupted it, SIGINT or the runner's SIGTERM (a killed
    make); called in-process (here, pytest), it returns 128 + the signal."""
    import pipeline

    with pytest.raises(pipeline.Terminated) as caught:
        pipeline.terminated(signal.SIGTERM, None)
    assert isinstance(caught.value, KeyboardInterrupt) and caught.value.signum == signal.SIGTERM
    assert pipeline.end_interrupted(KeyboardInterrupt()) == 130
    assert pipeline.end_interrupted(caught.value) == 128 + signal.SIGTERM
    for interruption, signum in ((KeyboardInterrupt(), signal.SIGINT), (caught.value, 15)):
        pid = os.fork()
        if pid == 0:  # (a process of its own, as `python -m pipeline.X` is)
            try:
                sys.excepthook = pipeline._interrupted
                pipeline.end_interrupted(interruption)
            finally:
                os._exit(99)  # (reached only if it did not end by the signal)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signum, status


def test_the_one_line_names_a_forked_step_and_other_errors_keep_the_previous_hook(
    monkeypatch: pytest.MonkeyPatch,
):
    """In a step the warm server forked, `__main__` may still be the server's while
    the step imports: the line names the step (its argv[0]). An error other than a
    Ctrl-C goes to the hook the process had before (a sitecustomize's, say)."""
    import types

    import pipeline

    monkeypatch.setattr(sys, "argv", ["pipeline.run", "notebooks/x.ipynb"])
    server = types.ModuleType("__main__")
    server.__spec__ = types.SimpleNamespace(name="pipeline.kernels")  # type: ignore[assignment]
    monkeypatch.setitem(sys.modules, "__main__", server)
    assert pipeline.entry_name() == "run"
    seen: list[type] = []
    monkeypatch.setattr(pipeline, "_previous", lambda kind, value, tb: seen.append(kind))
    pipeline._interrupted(ValueError, ValueError("x"), None)
    assert seen == [ValueError]


@pytest.mark.notebook
def test_ctrl_c_prints_one_line_and_leaves_nothing_behind(built: Path):
    os.utime(built / ".build/out/notebooks/04_survey.ipynb", ns=(0, 0))  # force a rerun
    env = {**os.environ, "KZ_COMPENDIUM_ROOT": str(built)}
    env.pop("MAKEFLAGS", None)
    p = start(["make", "--no-print-directory", "report"], built, env)
    wait_until_running(p, built / ".build/tmp", "04_survey")  # (the run takes ~1.5 s)
    time.sleep(0.3)
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert "Traceback" not in out + err, err
    assert "interrupted" in err, out + err
    assert list((built / ".build/tmp").glob("*")) == [], err  # its work folder removed
    r = make(built, "report")
    assert r.returncode == 0, r.stderr
    assert ran(r.stdout) == ["04_survey"]
    assert list((built / ".build/tmp").glob("*")) == []
    import tempfile

    from pipeline import lock

    left = [
        d
        for d in Path(tempfile.gettempdir()).glob(f"{lock.KERNEL_SOCKETS_PREFIX}*")
        if d.name[len(lock.KERNEL_SOCKETS_PREFIX) :].split("-")[0].isdigit()
        and not lock.alive(int(d.name[len(lock.KERNEL_SOCKETS_PREFIX) :].split("-")[0]))
    ]
    assert left == []


def test_ctrl_c_once_the_paper_is_in_place_keeps_it(built: Path, tmp_path: Path):
    """Ctrl-C after the paper stage has moved the new paper.html into place, before
    it has finished: make deletes an interrupted recipe's target whose date changed,
    and the previous paper had been replaced already, so no report was left. The
    moment is made to last: in the test's copy of the shared build, the copy's
    publication stops there (its own code) until the test interrupts it."""
    root = built
    before = (root / "reports/paper.html").read_bytes()
    publish = root / "src/pipeline/publish.py"
    pause = tmp_path / "paper-in-place"
    code = publish.read_text()
    here = "        for sub in DELIVERED_DIRS:\n"  # (after the moves, the paper's last)
    assert here in code
    publish.write_text(
        code.replace(here, f"        open({str(pause)!r}, 'w').close()\n" + here.replace(
            "for sub", "__import__('time').sleep(60)\n        for sub"), 1)
    )  # fmt: skip
    env = {**os.environ, "KZ_COMPENDIUM_ROOT": str(root)}
    env.pop("MAKEFLAGS", None)
    p = start(["make", "--no-print-directory", "report"], root, env)
    deadline = time.time() + 120
    while not pause.exists():
        assert p.poll() is None, "".join(p.communicate())
        assert time.time() < deadline, "the paper stage did not publish within 120 s"
        time.sleep(0.01)
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode != 0, out + err
    paper = root / "reports/paper.html"
    assert paper.exists(), err  # the new one, whole
    assert "[paper] interrupted: the new paper is in place; the next `make report`" in err, err
    assert paper.read_bytes() == before
    assert (root / "reports/.publishing").exists()  # the publication did not end
    publish.write_text(code)
    r = make(root, "report")  # publishes again
    assert r.returncode == 0, r.stderr
    assert not (root / "reports/.publishing").exists()


# ------------------------------------------------------------------ environment
def test_installed_versions_that_differ_from_the_lock_are_named(monkeypatch, tmp_path):
    have = fingerprint.installed()
    assert fingerprint.env_differences(have, fingerprint.lock_pins()) == []
    monkeypatch.setattr(fingerprint, "installed", lambda: {**have, "pandas": "1.0.0"})
    monkeypatch.setattr(fingerprint, "ENV_SNAPSHOT", tmp_path / "env.json")
    changed, diffs = fingerprint.write_env_snapshot(tmp_path / "env.json")
    assert changed and any(d.startswith("pandas 1.0.0 (lock ") for d in diffs)
    shown = fingerprint.env_versions(["pandas", "numpy"])
    assert shown["pandas"].startswith("1.0.0 (differs from the lock's")
    assert shown["numpy"] == have["numpy"]


# ------------------------------------------------------------------ bad input, permissions
def test_verify_with_a_missing_params_file_is_one_line():
    r = run([sys.executable, "-m", "pipeline.verify", "--params", "missing.yaml"], cwd=ROOT)
    assert r.returncode == 1 and r.stderr.strip() == "error: missing.yaml: file not found"


def test_a_verify_whose_re_execution_fails_says_so_on_its_page(tmp_path: Path):
    """A re-execution that fails (here a fixture Makefile's `report`, standing for a
    notebook stopped by bad input) replaces the page of an earlier PASS with a FAIL
    naming the failed step, and says so in one line."""
    root = copy_project(tmp_path / "project")
    (root / "Makefile").write_text(  # (fixture: stands for the build)
        "report:\n\t@echo 'FAILED notebooks/01_data.ipynb: fixture failure' >&2; exit 1\n"
    )
    page = root / "reports" / "verification.html"
    page.write_text("<h1>Verification: PASS</h1>")  # (fixture: an earlier verify's page)
    env = {"KZ_FORK_KERNELS": "0"}
    r = run_module("pipeline.verify", root=root, env=env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "[verify] FAIL: the re-execution failed" in r.stdout
    text = page.read_text()
    assert "Verification: FAIL (the re-execution failed)" in text and "PASS" not in text
    assert "FAILED notebooks/01_data.ipynb: fixture failure" in text


def test_a_verify_stopped_by_sigterm_stops_its_build_and_leaves_nothing(tmp_path: Path):
    """SIGTERM to `python -m pipeline.verify` alone (a process manager's stop, not a
    terminal's Ctrl-C to the whole group) while its re-execution builds: it ended at
    once, leaving the scratch copy and its `make report`, whose build went on
    orphaned. Now: its make and steps are stopped, the copy removed, one line, and it
    ends by SIGTERM. The copy's Makefile is a fixture whose `report` only waits."""
    from pipeline import lock

    root = copy_project(tmp_path / "project")
    (root / "Makefile").write_text(  # (fixture: stands for the build)
        "report:\n\t@sleep 60 & echo $$! > $(KZ_TEST_PIDFILE); wait\n"
    )
    pidfile = tmp_path / "step.pid"
    env = {**os.environ, "KZ_COMPENDIUM_ROOT": str(root), "KZ_FORK_KERNELS": "0"}
    env["KZ_TEST_PIDFILE"] = str(pidfile)
    p = subprocess.Popen(
        [sys.executable, "-m", "pipeline.verify"], cwd=root, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 120
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert p.poll() is None, "".join(p.communicate())
        assert time.time() < deadline, "the re-execution did not start within 120 s"
        time.sleep(0.02)
    step = int(pidfile.read_text())
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGTERM, (p.returncode, err)
    assert err == "[verify] interrupted: nothing published\n", err
    deadline = time.time() + 10
    while lock.alive(step) and time.time() < deadline:
        time.sleep(0.05)
    assert not lock.alive(step), "the re-execution's step outlived the verify"
    assert list((root / ".build/verify").glob("*")) == []


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to this one),
    removed at the end: each run left two project copies in /tmp."""
    base = Path(tempfile.mkdtemp(prefix="kz-readonly-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _as_another_user(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        args = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *args]
    return subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**plain_env(), "KZ_COMPENDIUM_ROOT": str(cwd), "HOME": str(cwd)},
    )


def test_read_only_raw_data_is_one_line(reachable: Path):
    copy = copy_project(reachable / "copy")
    pop = copy / "data/raw/population.csv"
    pop.write_text(pop.read_text().replace("1993,17274487", "1993,17274488"))
    for p in [copy, *copy.rglob("*")]:
        if not p.is_symlink():
            p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        r = _as_another_user([sys.executable, "-m", "pipeline.checksums", "--update"], copy)
    finally:
        for p in [copy, *copy.rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o755 if p.is_dir() else 0o644)
    assert r.returncode == 1, r.stdout + r.stderr
    assert (
        r.stderr.strip().splitlines() == [f"error: permission denied: {copy / 'data/raw'}"]
        or "permission denied" in r.stderr
        and "datapackage.json" in r.stderr
    )
    no_traceback(r)


def test_make_clean_removes_every_generated_output(tmp_path: Path):
    copy = copy_project(tmp_path / "copy")
    made = [
        "reports/paper.html",
        "reports/results.json",
        "reports/verification.html",
        "reports/paper-screenshot.png",
        "reports/notebooks/x.html",
        "reports/provenance.json",
        ".build/out/results.json",
        "scratch/outputs/figures/a.svg",
        "data/processed/a.csv",
    ]
    for f in made:
        (copy / f).parent.mkdir(parents=True, exist_ok=True)
        (copy / f).write_text("x")
    r = make(copy, "clean")
    assert r.returncode == 0, r.stderr
    assert [f for f in made if (copy / f).exists()] == []
    assert (copy / "reports/expected-results.json").exists()
    assert (copy / "reports/expected-figures").is_dir()


def test_read_only_reports_is_one_line_and_keeps_the_previous_paper(reachable: Path):
    """Publishing into a `reports/` the user cannot write: one line naming the
    path, no traceback, and the previous paper untouched."""
    copy = copy_project(reachable / "copy")
    reports = copy / "reports"
    (reports / "paper.html").write_text("previous paper")
    for p in [copy, *copy.rglob("*")]:
        if not p.is_symlink():
            p.chmod(0o755 if p.is_dir() else 0o644)
    reports.chmod(0o555)
    code = (
        "from pipeline.cli import entry\n"
        "from pipeline.publish import stage_and_publish\n"
        "from pathlib import Path\n"
        "main = entry(lambda: stage_and_publish({'paper.html': b'new'}, Path('reports')) or 0)\n"
        "main.__module__ = 'pipeline.paper'\n"
        "raise SystemExit(main())\n"
    )
    try:
        r = _as_another_user([sys.executable, "-c", code], copy)
    finally:
        reports.chmod(0o755)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "permission denied" in lines[0] and "reports" in lines[0], r.stderr
    no_traceback(r)
    assert (reports / "paper.html").read_text() == "previous paper"


def test_every_build_step_prints_one_line_when_interrupted():
    """Every module the Makefile runs (a build step, or `python -m` in a target such
    as check or verify) has its `main` wrapped by pipeline.cli.entry (Ctrl-C or a
    known error: one line, never a traceback); the Ctrl-C test above interrupts
    one of them, a notebook."""
    makefile = (ROOT / "Makefile").read_text()
    run = r"(?:\$\(STEP\)|\$\(PY\) -m) pipeline\.([a-z_]+)"
    steps = set(re.findall(run, makefile)) - {"x"}
    assert {"snapshot", "run", "merge", "report", "paper", "verify", "check_html"} <= steps
    for step in sorted(steps):
        source = (ROOT / "src" / "pipeline" / f"{step}.py").read_text()
        assert re.search(r"^@_?entry\ndef main\(", source, re.M), f"pipeline.{step}.main"
