"""Export executed notebooks to self-contained HTML pages (code shown).

The paper links to these pages under each figure, for readers who want the
code behind it: reports/notebooks/NN_name.html, inline styles, no script and
nothing loaded from elsewhere, written atomically.

    python -m pipeline.report reports/notebooks/02_ngo.ipynb --out reports/notebooks/02_ngo.html
"""

from __future__ import annotations

import argparse
import contextlib
import html
import re
from pathlib import Path

from analysis import paths
from analysis.io import write_atomic
from pipeline.cli import entry

CSS = """
body{font-family:Helvetica,Arial,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;
line-height:1.45;color:#222}
.jp-InputArea pre,.highlight pre{background:#f6f7f9;padding:.5rem;font-size:.82rem;
white-space:pre-wrap;overflow-wrap:anywhere}
.jp-OutputArea pre,.output pre{font-size:.82rem;white-space:pre-wrap;overflow-wrap:anywhere}
.scroll{overflow-x:auto}.scroll:focus{outline:2px solid #0b5cad}
table{border-collapse:collapse;font-size:.8rem}
th,td{border-bottom:1px solid #ddd;padding:.2rem .45rem;text-align:left}
.dataframe tbody tr th{vertical-align:top}.dataframe thead th{text-align:right}
img{max-width:100%;height:auto}
.note{color:#555;font-size:.85rem;border-bottom:1px solid #ccc;padding-bottom:.5rem}
"""


# pandas writes a `<style scoped>` block before every DataFrame it shows; `scoped`
# is not HTML (the Nu checker rejects it), and the page's CSS has its two rules
PANDAS_STYLE = re.compile(r"<style scoped(?:=\"\")?>.*?</style>\s*", re.S)
# a wide DataFrame scrolls sideways in a box that the keyboard can reach (WCAG 2.1.1)
DATAFRAME = re.compile(r"<table[^>]*class=([\"'])dataframe\1[^>]*>.*?</table>", re.S)


def _scroll_boxes(body: str) -> str:
    n = 0

    def box(m: re.Match) -> str:
        nonlocal n
        n += 1
        return (
            f'<div class="scroll" tabindex="0" role="region" aria-label="Table output {n}">'
            f"{m.group(0)}</div>"
        )

    return DATAFRAME.sub(box, body)


# nbconvert sanitizes every code cell's highlighted source with bleach (html5lib, in
# pure Python: ~0.15 s a page). What pygments writes for a cell is one shape: a
# `<div class="... highlight ...">` holding `<pre><span></span>`, then spans with a class
# around escaped text, balanced. Such markup cannot carry a script, an attribute
# other than a class, or a URL, and bleach returns it unchanged, byte for byte (a test
# compares every code cell of the project's notebooks): it is kept as it is. Anything
# else nbconvert sanitizes (a raw cell, markup of another shape, unbalanced tags,
# control characters) goes to nbconvert's own filter, as before. (Markdown cells and
# HTML outputs are not sanitized by nbconvert's page at all: `sanitize_html` is off.)
HIGHLIGHTED = re.compile(
    r'<div class="[\w -]*"><pre><span></span>'
    r"(?:[^<>&\x00-\x08\x0b-\x1f\x7f]|&(?:amp|lt|gt|quot|#39);"
    r'|<span(?: class="[\w -]*")?>|</span>)*'
    r"</pre></div>\n?"
)
_SPAN = re.compile(r"<(/?)span")


def _balanced(text: str) -> bool:
    depth = 0
    for close in _SPAN.findall(text):
        depth += -1 if close else 1
        if depth < 0:
            return False
    return depth == 0


def clean_html(text) -> str:
    """nbconvert's `clean_html` filter, without bleach for pygments' markup of a cell."""
    from nbconvert.filters.strings import clean_html as sanitize

    if isinstance(text, str) and HIGHLIGHTED.fullmatch(text) and _balanced(text):
        return text
    return sanitize(text)


# a figure's output carries its alt text (`plots.save`); nbconvert's block for an SVG
# output (otherwise kept as it is) gives its image none, and nbconvert then writes
# "No description has been provided for this image". As for a PNG, an output's own
# alt text comes first, then the cell's.
PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block data_svg scoped -%}
{%- set alttext = (output | get_metadata('alt', 'image/svg+xml'))
    or (cell | get_metadata('alt')) -%}
{%- set alt -%}
{%- if alttext is not none %} alt="{{ alttext | escape_html }}"{% endif -%}
{%- endset -%}
<div class="output_svg output_subarea {{ extra_class }}">
{%- if output.svg_filename %}
<img src="{{ output.svg_filename | posix_path | escape_html }}"{{ alt }}>
{%- else %}
    {%- if resources.should_not_encode_svg %}
        {{ output.data['image/svg+xml'].encode("utf-8") | clean_html }}
    {%- else %}
        <img src="data:image/svg+xml;base64,{{ output.data['image/svg+xml']
            | text_base64 | escape_html }}"{{ alt }}>
    {%- endif %}
{%- endif %}
</div>
{%- endblock data_svg %}
"""


def _cache_templates(exporter) -> None:
    """Keep nbconvert's compiled page templates in .build/jinja (Jinja's own bytecode
    cache): a page step is a fresh process, which would otherwise compile the page's
    templates again (~0.2 s). Jinja checks each entry against its template's source
    and the Python version, so a changed template is compiled anew; a folder this
    user cannot write only means compiling in memory, as without the cache."""
    import jinja2
    import nbconvert

    class Cache(jinja2.FileSystemBytecodeCache):
        def dump_bytecode(self, bucket) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass

    # (an entry is checked against its template's source, not against the libraries
    # that compiled it: one folder per version of Jinja and nbconvert)
    folder = (
        paths.BUILD / "jinja" / f"jinja2-{jinja2.__version__}-nbconvert-{nbconvert.__version__}"
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    exporter.environment.bytecode_cache = Cache(str(folder))


# nbconvert's HTMLExporter ends with a pass in BeautifulSoup (html.parser, pure Python:
# ~0.2 s a page, most of a page step): it gives an <img> without alt text a placeholder
# and JupyterLab's cell wrappers a tabindex, then writes the parsed page out again. On
# a page whose every <img> is one the template wrote with its alt text, and which has
# no JupyterLab wrapper (the basic template writes none), the pass only respells the
# same HTML (entities, whitespace, attributes' quoting): it is skipped, and the page is
# nbconvert's page before the pass. Any other page gets nbconvert's pass, as before. (A
# test checks that nbconvert's pass on the skipped page gives nbconvert's own page.)
IMG = re.compile(r"<img\b", re.I)
IMG_WITH_ALT = re.compile(r'<img src="[^"<>]*" alt="[^"<>]*">')
LAB_WRAPPERS = ("jp-Notebook", "jp-Cell-inputWrapper", "jp-OutputArea-output")


def soup_pass_changes(page: str) -> bool:
    """Whether nbconvert's last pass would change more than the spelling of `page`."""
    unescaped = html.unescape(page)  # (a class name may be spelled with entities)
    return len(IMG.findall(page)) != len(IMG_WITH_ALT.findall(page)) or any(
        w in unescaped for w in LAB_WRAPPERS
    )


class _Unparsed(str):
    """What nbconvert's pass gets instead of a parsed page it would not change:
    nothing to select, the same text out."""

    def select(self, selector: str) -> list:
        return []


@contextlib.contextmanager
def soup_pass_only_where_it_changes():
    import nbconvert.exporters.html as exporter_module

    parse = exporter_module.BeautifulSoup

    def soup(markup, *args, **kw):
        return parse(markup, *args, **kw) if soup_pass_changes(markup) else _Unparsed(markup)

    exporter_module.BeautifulSoup = soup
    try:
        yield
    finally:
        exporter_module.BeautifulSoup = parse


def notebook_body(executed: Path) -> str:
    """HTML body of one executed notebook (nbconvert's basic template, no scripts)."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="basic",
        template_file="kz_page.html.j2",
        extra_loaders=[jinja2.DictLoader({"kz_page.html.j2": PAGE_TEMPLATE})],
        exclude_input=False,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.register_filter("clean_html", clean_html)
    _cache_templates(exporter)
    nb = nbformat.read(executed, as_version=4)
    with soup_pass_only_where_it_changes():
        body, _ = exporter.from_notebook_node(nb)
    return _scroll_boxes(PANDAS_STYLE.sub("", body))


def export(executed: Path, out: Path) -> None:
    name = executed.stem
    page = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(name)}: executed notebook</title>",
            f"<style>{CSS}</style></head><body>",
            '<header><p class="note">Executed copy of '
            f"<code>notebooks/{html.escape(name)}.ipynb</code>, "
            "run by papermill with its parameters (the injected cell below). "
            '<a href="../paper.html">Back to the paper</a>.</p></header>',
            "<main>",
            notebook_body(executed),
            "</main></body></html>\n",
        ]
    )
    write_atomic(out, page.encode("utf-8"))  # always: make compares its date


@entry
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.report")
    ap.add_argument("executed", type=Path, nargs="+")
    ap.add_argument(
        "--out",
        type=Path,
        help="output page (one notebook only); default: next to each executed notebook, with .html",
    )
    a = ap.parse_args(argv)
    if a.out and len(a.executed) != 1:
        ap.error("--out takes one notebook")
    for nb in a.executed:
        export(nb, a.out or nb.with_suffix(".html"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
