"""Execute one notebook with papermill, with its params.yaml section.

    python -m analysis.run notebooks/01_data.ipynb [--params params.yaml]
                           [--out reports/notebooks/01_data.ipynb] [--why "..."]

- injects `params` ({shared + section}) and `params_file` through papermill, so
  the executed copy records exactly what it ran with;
- runs on the project's kernel (`kz-civil-society`), never another interpreter;
- strips volatile metadata (timings, papermill timestamps) so that the same
  inputs give the same bytes;
- writes the executed copy atomically: on failure it prints the failing cell
  and the error, leaves no partial output and keeps the previous copy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from analysis import params as params_mod
from analysis import paths
from analysis.io import write_atomic
from analysis.progress import Progress

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


def publish(staging: Path, notebook: str, reports: Path = paths.REPORTS) -> list[str]:
    """Move a successful run's figures and results from staging into reports/.

    Files are rewritten only when their bytes change; figures and results that
    this notebook made before but not in this run are removed, so the report
    never shows a stale figure (e.g. election figures after a run for another
    focus country).
    """
    from analysis.io import write_if_changed

    made = {p.relative_to(staging) for p in staging.rglob("*") if p.is_file()}
    changed = [
        str(rel)
        for rel in sorted(made)
        if write_if_changed(reports / rel, (staging / rel).read_bytes())
    ]
    for sidecar in (reports / "figures").glob("*.json"):
        rel = sidecar.relative_to(reports)
        if rel in made:
            continue
        try:
            owner = json.loads(sidecar.read_text()).get("notebook")
        except json.JSONDecodeError:
            continue
        if owner == notebook:
            for ext in (".json", ".svg", ".png"):
                sidecar.with_suffix(ext).unlink(missing_ok=True)
    stale = reports / "results" / f"{notebook}.json"
    if stale.relative_to(reports) not in made:
        stale.unlink(missing_ok=True)
    return changed


def _failure_message(notebook: Path, nb: dict | None, err: Exception) -> str:
    lines = [f"FAILED {paths.rel(notebook)}"]
    cell_index = getattr(err, "exec_count", None)
    if nb is not None:
        for i, cell in enumerate(nb.get("cells", [])):
            if cell.get("metadata", {}).get("papermill", {}).get("exception"):
                src = "".join(cell.get("source", ""))
                lines.append(f"  in cell {i} (execution count {cell_index}):")
                lines.extend("    | " + s for s in src.splitlines()[:15])
                break
    ename, evalue = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    lines.append(f"  {ename}: {evalue}")
    return "\n".join(lines)


def execute(
    notebook: Path, out: Path, params_file: Path | None = None, kernel: str = paths.KERNEL_NAME
) -> float:
    """Execute `notebook` into `out`; return the wall time in seconds."""
    import nbformat
    import papermill as pm

    notebook, out = Path(notebook).resolve(), Path(out)
    section = params_mod.section(params_mod.load(params_file), params_mod.section_name(notebook))
    parameters = {
        "params": section,
        # relative to the project root: the executed copy must not depend on where
        # the project lives (same inputs, same bytes)
        "params_file": paths.rel(Path(params_file).resolve()) if params_file else None,
    }
    from jupyter_client.manager import KernelManager

    fd, tmp = tempfile.mkstemp(suffix=".ipynb", prefix=f".{notebook.stem}.")
    os.close(fd)
    staging = tempfile.TemporaryDirectory(prefix=f"kz-{notebook.stem}-")
    os.environ["KZ_OUTPUT_DIR"] = staging.name  # inherited by the kernel
    # Local IPC sockets in a private folder: no TCP port, no "unencrypted TCP"
    # warning, and nothing left behind.
    sockets = tempfile.TemporaryDirectory(prefix="kz-kernel-")
    km = KernelManager(kernel_name=kernel, transport="ipc", ip=f"{sockets.name}/k")
    t0 = time.perf_counter()
    try:
        try:
            pm.execute_notebook(
                str(notebook),
                tmp,
                parameters=parameters,
                kernel_name=kernel,
                cwd=str(notebook.parent),
                progress_bar=False,
                log_output=False,
                request_save_on_cell_execute=False,
                report_mode=False,
                km=km,
            )
        except pm.PapermillExecutionError as e:
            failed = json.loads(Path(tmp).read_text()) if Path(tmp).stat().st_size else None
            raise NotebookFailed(_failure_message(notebook, failed, e)) from None
        nb = nbformat.read(tmp, as_version=4)
        nb_dict = strip_volatile(json.loads(nbformat.writes(nb)))
        publish(Path(staging.name), notebook.stem)
        write_atomic(
            out,
            (json.dumps(nb_dict, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode(
                "utf-8"
            ),
        )
    finally:
        os.environ.pop("KZ_OUTPUT_DIR", None)
        staging.cleanup()
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        sockets.cleanup()
        Path(tmp).unlink(missing_ok=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.run", description=__doc__.split("\n")[0])
    ap.add_argument("notebook", type=Path)
    ap.add_argument(
        "--params", type=Path, default=None, help="parameters file (default params.yaml)"
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="executed copy (default reports/notebooks/<name>.ipynb)",
    )
    ap.add_argument(
        "--inputs",
        nargs="*",
        default=[],
        help="the notebook's prerequisites (from make): used to say why it runs",
    )
    a = ap.parse_args(argv)
    out = a.out or paths.EXECUTED / a.notebook.name
    progress = Progress(a.notebook, a.inputs)
    progress.start()
    try:
        execute(a.notebook, out, a.params)
    except (NotebookFailed, params_mod.ParamsError) as e:
        progress.failed()
        print(str(e), file=sys.stderr)
        return 1
    progress.done()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
