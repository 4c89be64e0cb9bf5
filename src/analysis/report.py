"""Assemble reports/paper.html from the executed notebooks.

Interim paper (until the paper notebook exists): one self-contained HTML file
with each executed notebook's narrative and outputs (code hidden), inline
styles, no script, style or font loaded from anywhere else. Deterministic and
written atomically, so a failed build keeps the previous paper.
"""

from __future__ import annotations

import argparse
import html
from pathlib import Path

from analysis import paths
from analysis.io import write_atomic

CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:50rem;margin:2rem auto;
padding:0 1rem;line-height:1.5;color:#222}
h1,h2,h3{font-family:Helvetica,Arial,sans-serif;line-height:1.2}
table{border-collapse:collapse;font-size:.85rem;display:block;overflow-x:auto}
th,td{border-bottom:1px solid #ddd;padding:.2rem .5rem;text-align:left}
pre{white-space:pre-wrap;font-size:.85rem}
.nb{border-top:2px solid #444;margin-top:2rem}
@media print{body{max-width:none}}
"""


def notebook_body(executed: Path) -> str:
    """HTML of one executed notebook: markdown and outputs, no code, no scripts."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    nb = nbformat.read(executed, as_version=4)
    body, _ = exporter.from_notebook_node(nb)
    return body


def build(executed: list[Path], out: Path) -> None:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Civil society in Kazakhstan: a reproducible compendium</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Civil society in Kazakhstan: a reproducible compendium</h1>",
        "<p>Interim report: the executed stages of the compendium, in order. "
        "Each section below is a notebook executed from the raw data package.</p>",
    ]
    for nb in executed:
        parts.append(f'<section class="nb" id="{html.escape(nb.stem)}">')
        parts.append(notebook_body(nb))
        parts.append("</section>")
    parts.append("</body></html>\n")
    write_atomic(out, "\n".join(parts).encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.report")
    ap.add_argument("executed", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=paths.REPORTS / "paper.html")
    a = ap.parse_args(argv)
    build(sorted(a.executed), a.out)
    print(f"[report] {paths.rel(a.out)} ({a.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
