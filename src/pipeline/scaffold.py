"""`make notebook NAME=<section>`: scaffold a new, working stage.

Writes, and refuses to overwrite anything:

- `notebooks/NN_<section>.ipynb` (the next free number) on the project kernel,
  with the parameters cell, the cell that loads the section, an example result
  recorded with its provenance, and an example figure;
- a `<section>:` entry at the end of `params.yaml` with the example's two keys;
- its schema: a model registered with `@section("<section>")` at the end of
  `src/analysis/schema.py`.

Nothing else is needed: make finds the stage by its name, reruns it when its
params section, the helpers or the tables it read change (the runner records
them), and `make report` publishes its results and figure. To quote them, see
README "Put a notebook's numbers and figure into the paper".
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import uuid
from pathlib import Path

import nbformat

import pipeline
from analysis import params as params_mod
from analysis import paths
from analysis.io import write_atomic, write_if_changed
from pipeline.cli import entry

NAME = re.compile(r"[a-z][a-z0-9_]{1,30}")
SCHEMA = paths.ROOT / "src" / "analysis" / "schema.py"
EXAMPLE_TABLE, EXAMPLE_BY = "ngo_counts", "year"

PARAMS_CELL = """\
# Parameters. The build injects the snapshot of this notebook's params section
# here (params_file); by hand: `papermill -p params_file other.yaml ...`.
params_file = None  # None means the project's params.yaml"""

SETUP_CELL = """\
from analysis import plots, processed
from analysis.params import load_section
from analysis.results import Registry

params = load_section("{section}", params_file)

plots.apply_theme(params)
reg = Registry("{stem}")
table = processed.read(params["table"])  # any table of data/raw, as processed by 01_data
table.head()"""

RESULT_CELL = """\
# one call: the value, the rows it came from (their raw file and source ids), what it is
reg.record("{section}_rows", len(table), table,
           f"rows of the table {{params['table']}}", unit="rows")"""

FIGURE_CELL = """\
per = table.groupby(params["by"]).size()
fig, ax = plots.new()
ax.bar(per.index.astype(str), per.to_numpy(), color=plots.palette(1)[0])
ax.set_xlabel(params["by"])
ax.set_ylabel("rows")
ax.tick_params(axis="x", labelrotation=90)
plots.source_line(fig, sorted(set(table["source_id"])))
plots.save(fig, "fig_{section}_rows", notebook="{stem}", of=table,
           caption=f"Rows of the table {{params['table']}} per {{params['by']}} (example figure).",
           alt=f"Bar chart of the number of rows of {{params['table']}} "
               f"for each {{params['by']}}.")"""

SAVE_CELL = "reg.save()"


def next_number() -> int:
    used = [int(p.name[:2]) for p in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")]
    return max(used, default=0) + 1


def notebook(section: str, stem: str) -> nbformat.NotebookNode:
    title = section.replace("_", " ").capitalize()
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [
        md(
            f"# {stem[:2]} · {title}\n\n"
            "What question does this notebook answer, from which data? (Written by "
            "`make notebook`; replace this text, the example result and the example figure.)"
        ),
        code(PARAMS_CELL, metadata={"tags": ["parameters"]}),
        code(SETUP_CELL.format(section=section, stem=stem)),
        md(
            "## An example result\n\nEvery number the paper quotes is recorded with its "
            "unit, the raw file it was computed from and its sources; the paper quotes it "
            f"by key: `{{num}}`{section}_rows``."
        ),
        code(RESULT_CELL.format(section=section)),
        md(
            "## An example figure\n\nSaved with its caption, alternative text and sources; "
            f"the paper shows it with a `{{figure}} fig_{section}_rows` block."
        ),
        code(FIGURE_CELL.format(section=section, stem=stem)),
        code(SAVE_CELL),
    ]
    for i, cell in enumerate(cells):  # stable, readable cell ids
        cell["id"] = uuid.uuid5(uuid.NAMESPACE_URL, f"{stem}/{i}").hex[:8]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {
            "display_name": f"Python ({paths.KERNEL_NAME})",
            "language": "python",
            "name": paths.KERNEL_NAME,
        },
        "language_info": {"name": "python"},
    }
    return nb


def params_entry(section: str, stem: str) -> str:
    return (
        f"\n{section}:                     # notebooks/{stem}.ipynb (make notebook)\n"
        f"  table: {EXAMPLE_TABLE}            # the table the example reads\n"
        f"  by: {EXAMPLE_BY}                     # its column the example figure counts rows by\n"
    )


def schema_entry(section: str, stem: str) -> str:
    cls = "".join(w.capitalize() for w in section.split("_")) + "Params"
    return (
        f'\n\n@section("{section}")\nclass {cls}(Strict):\n'
        f'    """Parameters of notebooks/{stem}.ipynb."""\n\n'
        '    table: str = in_data("tables.name")\n'
        "    by: str = Field(min_length=1)\n"
    )


def scaffold(section: str) -> list[str]:
    """Write the notebook, the params entry and the schema; return what was written."""
    if not NAME.fullmatch(section) or section == "shared":
        raise params_mod.ParamsError(
            f"NAME={section!r}: a section name is 2-31 lower-case letters, digits or _, "
            "starting with a letter (not 'shared')"
        )
    if section in params_mod.SECTIONS or list(paths.NOTEBOOKS.glob(f"[0-9][0-9]_{section}.ipynb")):
        raise params_mod.ParamsError(f"section {section!r} exists already")
    raw = params_mod.read_yaml(paths.PARAMS)
    if section in raw:
        raise params_mod.ParamsError(f"params.yaml: section {section!r} exists already")
    stem = f"{next_number():02d}_{section}"
    nb_path = paths.NOTEBOOKS / f"{stem}.ipynb"
    text = paths.PARAMS.read_text(encoding="utf-8")
    schema = SCHEMA.read_text(encoding="utf-8")
    # All three or none: a failure or Ctrl-C after the first write puts back what was
    # written (a schema section without its params entry stopped every build, and the
    # next `make notebook` refused the name as existing)
    before = {f: (f.read_bytes(), f.stat()) for f in (nb_path, SCHEMA, paths.PARAMS) if f.exists()}
    written: list[Path] = []
    try:
        nb = nbformat.writes(notebook(section, stem)).encode("utf-8") + b"\n"
        written.append(nb_path)
        write_atomic(nb_path, nb)
        written.append(SCHEMA)
        write_atomic(SCHEMA, (schema.rstrip("\n") + "\n" + schema_entry(section, stem)).encode())
        written.append(paths.PARAMS)
        entry_text = params_entry(section, stem)
        write_atomic(paths.PARAMS, (text.rstrip("\n") + "\n" + entry_text).encode())
    except BaseException:
        for path in reversed(written):
            if path in before:  # its bytes, mode and date (a new date reran the build)
                content, st = before[path]
                if write_if_changed(path, content):
                    os.chmod(path, st.st_mode & 0o7777)
                    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
            else:
                path.unlink(missing_ok=True)
        raise
    return [paths.rel(nb_path), "params.yaml", paths.rel(SCHEMA)]


@entry
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make notebook NAME=<section>", description=__doc__)
    ap.add_argument("section", nargs="?", default="")
    a = ap.parse_args(argv)
    if not a.section:
        print(
            "usage: make notebook NAME=<section>  (e.g. make notebook NAME=media)", file=sys.stderr
        )
        return 2
    with pipeline.terminated_as_interrupted():  # a SIGTERM between the writes: all put back
        written = scaffold(a.section)
    print(f"[notebook] wrote {', '.join(written)}")
    print(
        "[notebook] next: `make report` runs it; `make lab` opens it; quote its result in "
        f"paper/paper.md with {{num}}`{a.section}_rows`; `make record` accepts its new results"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
