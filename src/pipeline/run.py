"""Execute one notebook with papermill, with its parameters.

    make (the build):  python -m pipeline.run notebooks/02_ngo.ipynb --build \
                         --out .build/out/notebooks/02_ngo.ipynb --inputs <prerequisites>
    by hand:           python -m pipeline.run notebooks/02_ngo.ipynb [--params other.yaml]

- In the build (`--build`), the notebook that runs is its snapshot
  `.build/notebooks/<name>.ipynb` and its parameters are the section snapshot
  `.build/params/<section>.json` that make tracked (editing params.yaml during a
  build changes nothing in it). Its figures and results go to `.build/out/`,
  its processed tables to data/processed/, with a fingerprint of what it was
  made from (`.build/out/provenance/<name>.json`); the paper stage publishes.
- By hand, it runs the notebook itself with `--params` (default params.yaml) and
  writes everything under scratch/outputs/: nothing the build or the paper reads.
- `params_file` is injected through papermill (relative to the project root), so
  the executed copy records what it ran with; runs on the project's kernel;
  volatile metadata (timings, papermill timestamps) is stripped, so the same
  inputs give the same bytes.
- Writes atomically: on failure it prints the failing cell and the error, leaves
  no partial output and keeps the previous copy. Ctrl-C or SIGTERM: one line; the
  kernel is killed, then the temporary notebook, staging folder and kernel files
  are removed, and the runner ends by that signal.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import pipeline
from analysis import params as params_mod
from analysis import paths
from analysis.io import write_atomic, write_if_changed
from pipeline import fingerprint, kernels, lock
from pipeline import progress as progress_mod
from pipeline.cli import entry
from pipeline.progress import Progress

VOLATILE_CELL_KEYS = ("execution", "papermill")
VOLATILE_NB_PAPERMILL = (
    "start_time",
    "end_time",
    "duration",
    "exception",
    "input_path",
    "output_path",
    "version",
    "environment_variables",
)


class NotebookFailed(RuntimeError):
    """A cell raised; the message names the notebook, the cell and the error."""


def strip_volatile(nb: dict) -> dict:
    """Remove timings and run-specific metadata; keep parameters and outputs."""
    pm = nb.get("metadata", {}).get("papermill", {})
    for key in VOLATILE_NB_PAPERMILL:
        pm.pop(key, None)
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb.get("cells", []):
        md = cell.get("metadata", {})
        if "injected-parameters" in md.get("tags", []):
            cell["id"] = "injected-parameters"  # papermill gives it a random id
        for key in VOLATILE_CELL_KEYS:
            md.pop(key, None)
    return nb


def publish(staging: Path, notebook: str, out: Path, processed: Path) -> dict[str, str]:
    """Move a successful run's outputs from staging into place; return {file: sha256}.

    Figures and results go to `out` (the build's area, or scratch/outputs/), the
    processed tables to `processed`. Files are rewritten only when their bytes
    change; figures and results that this notebook made before but not in this
    run are removed, so the report never shows a stale figure (e.g. election
    figures after a run for another focus country).
    """
    made: dict[str, str] = {}
    for p in sorted(staging.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(staging)
        dst = processed / rel.relative_to("processed") if rel.parts[0] == "processed" else out / rel
        write_if_changed(dst, p.read_bytes())
        made[paths.rel(dst)] = fingerprint.sha256(dst)
    for sidecar in (out / "figures").glob("*.json"):
        if paths.rel(sidecar) in made:
            continue
        try:
            owner = json.loads(sidecar.read_text()).get("notebook")
        except json.JSONDecodeError:
            continue
        if owner == notebook:
            for ext in (".json", ".svg", ".png"):
                sidecar.with_suffix(ext).unlink(missing_ok=True)
    stale = out / "results" / f"{notebook}.json"
    if paths.rel(stale) not in made:
        stale.unlink(missing_ok=True)
    return made


DEPS = paths.BUILD / "deps"


def write_deps(out: Path, read: list[str]) -> None:
    """`.build/deps/<notebook>.mk`: the tables this run read, as make prerequisites.

    The Makefile includes these files, so each stage's inputs are what it really
    read (like a compiler's -MD dependency files). A table that no longer exists
    gets an empty rule, so make reruns the notebook instead of stopping.
    """
    target = paths.rel(out)
    lines = [f"{target}: {' '.join(read)}".rstrip()] + [f"{r}:" for r in read]
    write_if_changed(DEPS / f"{out.stem}.mk", "\n".join(lines) + "\n")


# bad input, not a bug: its message names the file (row, column and rule) or the params key,
# and the failed cell's code would only bury it
INPUT_ERRORS = ("DataValidationError", "ParamsError")


def _failure_message(notebook: Path, nb: dict | None, err: Exception) -> str:
    ename, evalue = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    if ename in INPUT_ERRORS:
        return f"FAILED {paths.rel(notebook)}: {evalue}"
    lines = [f"FAILED {paths.rel(notebook)}"]
    cell_index = getattr(err, "exec_count", None)
    if nb is not None:
        for i, cell in enumerate(nb.get("cells", [])):
            if cell.get("metadata", {}).get("papermill", {}).get("exception"):
                src = "".join(cell.get("source", ""))
                lines.append(f"  in cell {i} (execution count {cell_index}):")
                lines.extend("    | " + s for s in src.splitlines()[:15])
                break
    lines.append(f"  {ename}: {evalue}")
    return "\n".join(lines)


def _kill(km) -> None:
    """End the kernel at once, as jupyter_client's provisioner kills it (SIGKILL to its
    process group: what the notebook started goes too), without its event loop."""
    prov = km.provisioner
    proc = prov.process if prov else None
    if proc is not None and proc.poll() is None:
        pgid = getattr(prov, "pgid", None)  # (its own session: never this process's group)
        try:
            if pgid and pgid != os.getpgrp():
                os.killpg(pgid, signal.SIGKILL)
            else:
                proc.kill()
        except OSError:  # (the group gone already, or not ours to signal)
            proc.kill()
        proc.wait(timeout=10)


def execute(
    notebook: Path,
    out: Path,
    params_file: Path | None = None,
    kernel: str = paths.KERNEL_NAME,
    *,
    build: bool = False,
    inputs: list[str] | None = None,
    hashed: dict[str, str] | None = None,
) -> float:
    """Execute `notebook` into `out`; return the wall time in seconds. `hashed`: what
    make gave it, hashed already (by its progress line)."""
    # what make gave it (sources, snapshots, environment; its tables are those it
    # reads), hashed before it reads or runs anything: an edit while it runs leaves it stale
    if hashed is None:
        hashed = fingerprint.hashes(inputs or []) if build else {}
    hashed = {k: v for k, v in hashed.items() if not k.startswith("data/processed/")}
    # a build's kernels are forked from a pre-imported interpreter (pipeline.kernels);
    # if it is not running, it starts importing now, while this process imports papermill
    cwd = str(paths.NOTEBOOKS)  # the kernel's (papermill's below): its server's is the same
    forked = kernels.start(build, kernel, cwd=cwd)
    import nbformat
    import papermill as pm
    from jupyter_core.utils import run_sync
    from nbclient.exceptions import DeadKernelError

    notebook, out = Path(notebook).resolve(), Path(out).resolve()
    section_name = params_mod.section_name(notebook)
    if build:
        source = fingerprint.NB_SNAPSHOTS / notebook.name
        params_file = paths.BUILD / "params" / f"{section_name}.json"
        values = params_mod.load_snapshot(section_name, params_file)
        tmp_root, dest = paths.BUILD_TMP, paths.BUILD_OUT
        processed = paths.PROCESSED
    else:
        source = notebook
        values = params_mod.section(params_mod.load(params_file), section_name)
        tmp_root, dest = paths.SCRATCH / ".tmp", paths.SCRATCH / "outputs"
        processed = dest / "processed"
    if not source.is_file():
        raise params_mod.ParamsError(f"{paths.rel(source)}: missing (run through make)")
    parameters = {
        # relative to the project root: the executed copy must not depend on where
        # the project lives (same inputs, same bytes)
        "params_file": paths.rel(Path(params_file).resolve()) if params_file else None,
    }
    tmp_root.mkdir(parents=True, exist_ok=True)
    # The run's two private folders are named here and made inside the `try` below,
    # whose `finally` removes them: a Ctrl-C or SIGTERM at any moment from now on
    # leaves neither behind (made before it, one arriving as the kernel was being
    # set up left the work folder). Local IPC sockets and the connection file go in
    # the second: no TCP port, no "unencrypted TCP" warning.
    work = tmp_root / f"{notebook.stem}-{os.getpid()}-{secrets.token_hex(6)}"
    tmp = work / f"{notebook.stem}.ipynb"
    staging = work / "staging"
    reads_log = work / "reads.txt"  # the processed tables the notebook reads
    sockets = Path(tempfile.gettempdir()) / (
        f"{lock.KERNEL_SOCKETS_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
    )
    # what the kernel inherits for this run only (restored after it)
    env_before = {k: os.environ.get(k) for k in ("KZ_OUTPUT_DIR", "KZ_FIGURE_CACHE")}
    previous = signal.signal(signal.SIGTERM, pipeline.terminated)
    km = None
    t0 = time.perf_counter()
    interrupted = False
    try:
        os.mkdir(work, 0o700)  # (as mkdtemp makes it: a name that exists is an error)
        staging.mkdir()
        os.mkdir(sockets, 0o700)
        os.environ.pop("KZ_FIGURE_CACHE", None)
        os.environ["KZ_OUTPUT_DIR"] = str(staging)
        if build:
            os.environ["KZ_READS_LOG"] = str(reads_log)
            if not os.environ.get("KZ_NO_FIGURE_CACHE"):  # (`make verify` draws every figure)
                os.environ["KZ_FIGURE_CACHE"] = str(paths.BUILD / "figure-cache")
        os.environ["KZ_COMPENDIUM_ROOT"] = str(paths.ROOT)
        km = kernels.manager(
            forked,
            kernel_name=kernel,
            transport="ipc",
            ip=f"{sockets}/k",
            connection_file=str(sockets / "kernel.json"),
        )
        try:
            pm.execute_notebook(
                str(source),
                str(tmp),
                parameters=parameters,
                kernel_name=kernel,
                cwd=cwd,
                progress_bar=False,
                log_output=False,
                request_save_on_cell_execute=False,
                report_mode=False,
                km=km,
            )
        except pm.PapermillExecutionError as e:
            failed = json.loads(tmp.read_text()) if tmp.exists() and tmp.stat().st_size else None
            raise NotebookFailed(_failure_message(notebook, failed, e)) from None
        except DeadKernelError:
            raise NotebookFailed(
                f"FAILED {paths.rel(notebook)}: its kernel died while a cell ran (killed, out "
                "of memory, or its warm server was killed); nothing published"
            ) from None
        nb = nbformat.read(tmp, as_version=4)
        nb_dict = strip_volatile(json.loads(nbformat.writes(nb)))
        blob = (json.dumps(nb_dict, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode(
            "utf-8"
        )
        made = publish(staging, notebook.stem, dest, processed)
        if build:
            import hashlib

            read = sorted(set(reads_log.read_text().split())) if reads_log.exists() else []
            read = [r for r in read if r not in made]  # the data stage reads what it wrote
            write_deps(out, read)
            made[paths.rel(out)] = hashlib.sha256(blob).hexdigest()
            # its tables are those it read, not those make waited for before its first run
            prov = fingerprint.record(notebook.stem, read, made, values, hashed)
            write_if_changed(
                fingerprint.PROVENANCE / f"{notebook.stem}.json",
                json.dumps(prov, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
            )
        write_atomic(out, blob)  # last: the make target exists only with its fingerprint
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        # a SIGTERM during the clean-up waits for its end (it stopped the clean-up
        # halfway, the work folder left), then ends the run as one before it does
        stopped: list[int] = []
        signal.signal(signal.SIGTERM, lambda signum, frame: stopped.append(signum))
        os.environ.pop("KZ_READS_LOG", None)
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        # Interrupted (Ctrl-C, SIGTERM): papermill's tasks are still in the event loop
        # that jupyter_client's calls run, and would raise the KeyboardInterrupt again
        # in the kernel's shutdown, leaving the kernel running and writing into the work
        # folder: the kernel process is killed directly, then its files are removed.
        try:
            # (no manager: stopped while the run was being set up.) After a run (its
            # outputs are written, or it failed) the kernel is killed as
            # shutdown_kernel(now=True) would, without its interrupt first and its
            # event loop's polling (~40 ms a notebook)
            if km is not None and (interrupted or km.has_kernel):
                _kill(km)
        except KeyboardInterrupt:  # (a Ctrl-C during the shutdown)
            if km is not None:
                _kill(km)
            raise
        finally:
            try:
                if km is not None and not interrupted:
                    # (its files are in `sockets`, removed below)
                    run_sync(km._async_cleanup_resources)()
            finally:  # the kernel has ended: nothing writes there any more
                shutil.rmtree(sockets, ignore_errors=True)
                shutil.rmtree(work, ignore_errors=True)
                signal.signal(signal.SIGTERM, previous)
                if stopped and not interrupted:
                    raise pipeline.Terminated(stopped[0])
    took = time.perf_counter() - t0
    if build:
        page(out)
    return took


def page(executed: Path) -> None:
    """The executed notebook's HTML page, beside it, as the build's page step
    (`pipeline.report`) makes it: that step, which runs only when the page is older
    than its notebook, then has nothing to do (one step less after each notebook
    run). A page that cannot be made here is left to that step, which says why."""
    from pipeline import report

    try:
        report.export(executed, executed.with_suffix(".html"))
    except (Exception, KeyboardInterrupt):  # noqa: BLE001, S110 - the page step makes it
        pass  # (or names the error; a Ctrl-C here keeps the notebook its run published)


class Announcer(threading.Thread):
    """Makes the build's plan (if this run is a build's) and prints the start line,
    beside the run; `join` waits for it and raises what it raised."""

    def __init__(self, progress: Progress, build: bool) -> None:
        super().__init__(daemon=True)
        self.progress, self.build = progress, build
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            if self.build:  # the first notebook of a build plans it
                progress_mod.ensure_plan(
                    os.environ.get("KZ_PLAN_ARGS", "reports/paper.html").split()
                )
            self.progress.start()
        except BaseException as e:  # noqa: BLE001 - raised by join, in the runner
            self.error = e

    def join(self, timeout: float | None = None, quiet: bool = False) -> None:
        super().join(timeout)
        if self.error is not None and not quiet:
            raise self.error


@entry
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.run", description=__doc__.split("\n")[0])
    ap.add_argument("notebook", type=Path)
    ap.add_argument(
        "--params", type=Path, default=None, help="parameters file (by hand; default params.yaml)"
    )
    ap.add_argument(
        "--build",
        action="store_true",
        help="run as a build stage (make): snapshots in, outputs into .build/out",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="executed copy (default scratch/outputs/notebooks/<name>.ipynb by hand)",
    )
    ap.add_argument(
        "--inputs",
        nargs="*",
        default=[],
        help="the notebook's prerequisites (from make): fingerprinted, and say why it runs",
    )
    a = ap.parse_args(argv)
    if a.build and a.params:
        ap.error("--build runs on the params snapshot make tracked; --params is for runs by hand")
    if a.build and not a.out:
        ap.error("--build needs --out")
    out = a.out or paths.SCRATCH / "outputs" / "notebooks" / a.notebook.name
    progress = Progress(a.notebook, a.inputs)
    # the start line waits for the build's plan, which the first notebook of a build
    # makes (what `make -n` would run, ~0.1 s): made while the kernel starts
    announcer = Announcer(progress, a.build)
    try:
        try:
            execute(
                a.notebook, out, a.params, build=a.build, inputs=a.inputs, hashed=progress.inputs
            )
            announcer.join()  # (a plan that failed fails the stage, as before the run)
        except (NotebookFailed, KeyboardInterrupt, params_mod.ParamsError, OSError) as e:
            announcer.join(quiet=True)
            if not isinstance(e, KeyboardInterrupt):  # (an interruption: its own line below)
                progress.failed()
            raise
    except NotebookFailed as e:
        print(str(e), file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"[run] {a.notebook.stem} interrupted: nothing published", file=sys.stderr)
        return pipeline.end_interrupted(e)  # (ends by the signal, in a process of its own)
    progress.done()
    if not a.build:
        print(f"[run] outputs in {paths.rel(out.parent.parent)} (outside the build)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
