"""Assemble reports/paper.html from paper/paper.md, the results registry, the
figures and the data package.

The paper's text is Markdown (CommonMark, parsed by markdown-it-py) with
MyST-style roles and directives (mdit-py-plugins); raw HTML in the Markdown is
shown as text, and text that comes from data (titles, captions, reasons, source
names) is always escaped. Numbers enter the prose only through roles that read
the results registry; figures, tables and citations are numbered in the order
they first appear, and cross-references resolve by label.

Inline roles
    {num}`key`           a result's value, formatted (honours the result's "decimals")
    {ci}`key`            its interval: "(<interval_kind>: lo to hi)"
    {text}`key`          a text result
    {cite}`id, id`       data-package sources, by source id: [1, 3, 5–9]
    {cite:result}`key`   the sources recorded behind results
    {numref}`fig:name`   "Figure N" (also `tab:key` -> "Table N")
Directives (fenced blocks, ``` or :::; nest with a longer fence)
    {figure} name                 a figure of reports/figures/ with its sidecar's caption
    {table} key                   a table result; options :columns: col=Heading, ...
                                  and :units: col=unit; the body is the caption
    {if} key / {ifnot} key        Markdown shown only if the result exists / does not
    {notebooks} {environment} {checksums} {parameters} {bibliography}
                                  generated parts of the appendix
Front matter (YAML between --- lines): title, description. `(label)=` on the
line before a heading sets its id (otherwise a slug of its text); the table of
contents lists the level-2 headings.

    python -m pipeline.paper [--source paper/paper.md] [--build .build/out]
                             [--stamps .build/params] [--out reports/paper.html] [NN_name ...]

It checks every stage's fingerprint first (nothing stale is published), then
publishes the paper with the results, figures and executed notebooks it was
made from, together (pipeline.publish).

The output is one self-contained HTML file (styles inline, figures as data
URIs, no script, no external request), deterministic for the same inputs (the
date shown is the commit date), and written atomically; nothing is written when
the paper asks for something that does not exist (PaperError, exit 1).
"""

from __future__ import annotations

import argparse
import base64
import html as _html
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.front_matter import front_matter_plugin
from mdit_py_plugins.myst_blocks import myst_block_plugin
from mdit_py_plugins.myst_role import myst_role_plugin

from analysis import data, paths

SOURCE = paths.ROOT / "paper" / "paper.md"
# At most this many references in one place of the prose: a sentence that needs
# more should refer to the table or figure that lists its sources.
MAX_CITES = 6
LOCK_SHOWN = [
    "pandas",
    "numpy",
    "statsmodels",
    "scipy",
    "matplotlib",
    "seaborn",
    "pandera",
    "papermill",
    "nbconvert",
    "jupyterlab",
    "markdown-it-py",
    "mdit-py-plugins",
]
DIRECTIVE = re.compile(r"^\{([\w:-]+)\}\s*(.*)$")
OPTION = re.compile(r"^:([\w-]+):\s*(.*)$")

WIDE_TABLE_COLUMNS = 8  # columns from which a table spans more than the text column

STYLE = """\
:root{--ink:#1d1d1f;--muted:#55555a;--rule:#d9d9de;--accent:#0b5cad}
*{box-sizing:border-box}
body{font-family:Georgia,"Times New Roman",serif;color:var(--ink);background:#fff;max-width:46rem;
margin:0 auto;overflow-wrap:anywhere;padding:1.5rem 1rem 4rem;line-height:1.55;font-size:1.02rem}
h1,h2,h3{font-family:"Helvetica Neue",Helvetica,Arial,sans-serif;line-height:1.25}
h1{font-size:1.7rem;margin-bottom:.3rem}
h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid var(--rule)}
h3{font-size:1.05rem}
.meta{color:var(--muted);font-size:.9rem}
#abstract{background:#f6f7f9;border-left:4px solid var(--accent);padding:.1rem 1rem .6rem;
margin:1.2rem 0}
#abstract h2{margin-top:.8rem;border-bottom:none}
figure{margin:1.6rem 0}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:.9rem;color:var(--ink);margin-top:.4rem}
figcaption p{margin:.2rem 0}
.label{font-weight:bold;font-family:Helvetica,Arial,sans-serif}
figcaption .prov{font-size:.78rem;color:var(--muted);margin:.3rem 0 0}
.scroll{overflow-x:auto}
figure.wide{width:min(calc(100vw - 2rem),76rem);margin-left:50%;transform:translateX(-50%)}
.scroll:focus{outline:2px solid var(--accent);outline-offset:2px}
table{border-collapse:collapse;font-size:.8rem;width:100%;font-family:Helvetica,Arial,sans-serif}
th,td{border-bottom:1px solid var(--rule);padding:.25rem .4rem;text-align:left;vertical-align:top;
overflow-wrap:normal}
td:last-child{min-width:14rem}
th{background:#f0f1f4}
a{color:var(--accent);text-decoration:underline}
a.cite,a.xref{text-decoration:underline;text-decoration-thickness:1px;text-underline-offset:2px}
code{font-size:.85em;word-break:break-all}
pre{white-space:pre-wrap;font-size:.78rem;background:#f6f7f9;padding:.6rem}
ol.refs li{margin-bottom:.4rem;font-size:.88rem}
nav.toc{font-size:.9rem}
@media (max-width:40rem){body{font-size:.98rem;padding:1rem .7rem}h1{font-size:1.4rem}}
@media print{body{max-width:none;font-size:10.5pt}a{color:inherit}nav.toc{display:none}
figure{break-inside:avoid}h2{break-after:avoid}.scroll{overflow:visible}
figure.wide{width:auto;margin-left:0;transform:none}}
"""


class PaperError(RuntimeError):
    """The paper asks for something the results, figures or sources do not have."""


def esc(text: Any) -> str:
    """Escaped text for HTML content and attribute values."""
    return _html.escape(str(text), quote=True)


def format_value(v: Any, decimals: int | None = None) -> str:
    """How a registry value is printed: thousands separated, decimals as recorded
    (or exactly `decimals` when given)."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if decimals is not None and isinstance(v, (int, float)):
        return f"{v:,.{decimals}f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 1000:
            return f"{int(v):,}"
        text = repr(v)
        places = len(text.split(".")[1]) if "." in text and "e" not in text else 0
        return f"{v:,.{min(places, 4)}f}"
    return str(v)


def compress(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted runs of numbers: [1, 3, 5, 6, 7, 8, 9] -> [(1, 1), (3, 3), (5, 9)].
    A run of two stays two entries ([4, 5] -> [(4, 4), (5, 5)])."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    out: list[tuple[int, int]] = []
    for lo, hi in runs:
        out += [(lo, lo), (hi, hi)] if hi == lo + 1 else [(lo, hi)]
    return out


def compress_text(numbers: Iterable[int], show: Callable[[int], str] = str) -> str:
    """'1, 3, 5–9' for [1, 3, 5, 6, 7, 8, 9]; `show` prints each number (e.g. as a link)."""
    return ", ".join(show(a) if a == b else f"{show(a)}–{show(b)}" for a, b in compress(numbers))


def slug(text: str) -> str:
    s = re.sub(r"[^\w\s-]", "", text.lower()).strip()
    return re.sub(r"[\s_-]+", "-", s) or "section"


def plain(html_text: str) -> str:
    """The text of an HTML fragment (for attribute values such as aria-label)."""
    return _html.unescape(re.sub(r"<[^>]+>", "", html_text)).strip()


def sentence(part: str, text: str | None = None) -> str:
    """`part` followed by a full stop unless its text already ends a sentence."""
    t = (text if text is not None else plain(part)).rstrip()
    return part.rstrip() + ("" if t.endswith((".", "?", "!", "…")) else ".")


def git_info(root: Path = paths.ROOT) -> dict[str, Any]:
    if os.environ.get("KZ_GIT_INFO"):  # a scratch copy made by `make verify`: the checkout's
        return json.loads(os.environ["KZ_GIT_INFO"])

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "HEAD") or ""
    status = git("status", "--porcelain", "--untracked-files=no") if commit else ""
    return {
        "commit": commit or "unknown",
        "short": commit[:10] or "unknown",
        "date": git("log", "-1", "--format=%cs") or "undated",
        # a status git could not give (timed out, failed) is not a clean tree
        "dirty": status is None or bool(status),
    }


def lock_versions(names: list[str], lock: Path = paths.LOCK_FILE) -> dict:
    """The versions that actually ran (the environment snapshot), noting any
    difference from requirements.lock."""
    from pipeline.fingerprint import env_versions

    return env_versions(names)


@dataclass
class Numbering:
    """Labels in order of first appearance (figures, tables, citations)."""

    order: list[str] = field(default_factory=list)

    def number(self, label: str) -> int:
        if label not in self.order:
            self.order.append(label)
        return self.order.index(label) + 1


class Paper:
    """What the Markdown can ask for: results, citations, figures, tables and the
    generated parts of the appendix, each as an HTML fragment."""

    def __init__(
        self,
        results: dict,
        figures_dir: Path,
        pkg: dict,
        params: dict,
        notebooks_dir: Path | None = None,
        notebooks_href: str = "notebooks",
    ):
        self.R = results
        self.figures_dir = Path(figures_dir)
        self.notebooks_dir = Path(notebooks_dir or self.figures_dir.parent / "notebooks")
        self.pkg = pkg
        self.params = params
        self.notebooks_href = notebooks_href
        self.sources = {s["id"]: s for s in pkg["sources"]}
        self.hashes = {
            f"data/raw/{r['path']}": r["hash"].removeprefix("sha256:") for r in pkg["resources"]
        }
        self.git = git_info()
        self.used_keys: set[str] = set()
        self.figs, self.tabs, self.cites = Numbering(), Numbering(), Numbering()
        # the parameters file, when it is not the project's own params.yaml
        pf = str(params.get("params_file") or "params.yaml")
        self.other_params = None if pf == "params.yaml" else pf
        self.params_text = json.dumps(
            params.get("used", {}), indent=1, sort_keys=True, ensure_ascii=False
        )
        self.fig_labels: list[str] = []  # shown in the paper, in order (first pass)
        self.tab_labels: list[str] = []

    @property
    def lock_versions(self) -> dict[str, str]:
        return lock_versions(LOCK_SHOWN)

    # ---------------------------------------------------------- results
    def has(self, key: str) -> bool:
        return key in self.R

    def value(self, key: str) -> Any:
        if key not in self.R:
            raise PaperError(f"the paper quotes result {key!r}, which no notebook recorded")
        self.used_keys.add(key)
        return self.R[key]["value"]

    def formatted(self, key: str, part: str | None = None) -> str:
        """The printed form of a result (part "low"/"high": its interval's bounds):
        years plain, exact counts without '.0', the result's "decimals" if recorded."""
        v = self.value(key)
        entry = self.R[key]
        if part is not None:
            v = self.interval(key)[0 if part == "low" else 1]
        if isinstance(v, (list, dict)):
            raise PaperError(f"result {key!r} is a table; show it with a {{table}} directive")
        if isinstance(v, float) and v.is_integer() and entry["kind"] == "count":
            v = int(v)
        if entry["unit"] == "year" and isinstance(v, (int, float)) and float(v).is_integer():
            return str(int(v))
        return format_value(v, entry.get("decimals"))

    def interval(self, key: str) -> list:
        self.value(key)
        if "interval" not in self.R[key]:
            raise PaperError(f"{{ci}} of result {key!r}, which has no interval")
        return self.R[key]["interval"]

    def num(self, key: str) -> str:
        """The value, after the qualifier its source prints ("more than", "almost")."""
        q = self.R.get(key, {}).get("qualifier")
        span = f'<span class="num" data-key="{esc(key)}">{esc(self.formatted(key))}</span>'
        return f"{esc(q)} {span}" if q else span

    def ci(self, key: str) -> str:
        self.interval(key)
        kind = self.R[key].get("interval_kind") or "interval"
        lo, hi = (
            f'<span class="num" data-key="{esc(key)}#{p}">{esc(self.formatted(key, p))}</span>'
            for p in ("low", "high")
        )
        return (
            f'<span class="ci" data-key="{esc(key)}">(<span class="interval-kind">{esc(kind)}'
            f"</span>: {lo} to {hi})</span>"
        )

    def plural(self, items: list[str]) -> str:
        """`{plural}`key, one, many``: the word for a result's value (`one` when it is
        exactly 1), so that a sentence around a computed count stays grammatical."""
        if len(items) != 3:
            raise PaperError("{plural} takes a result key and two words: key, one, many")
        key, one, many = items
        v = self.value(key)
        return esc(one if isinstance(v, (int, float)) and float(v) == 1 else many)

    def text(self, key: str) -> str:
        v = self.value(key)
        if isinstance(v, (list, dict)):
            raise PaperError(f"result {key!r} is a table; show it with a {{table}} directive")
        return f'<span class="txt" data-key="{esc(key)}">{esc(v)}</span>'

    # ---------------------------------------------------------- citations
    def _source_numbers(self, ids: Iterable[str]) -> dict[int, str]:
        out = {}
        for i in dict.fromkeys(ids):
            if i not in self.sources:
                raise PaperError(f"the paper cites unknown source id {i!r}")
            out[self.cites.number(i)] = i
        return out

    def _cite_links(self, nums: dict[int, str]) -> str:
        def a(n: int) -> str:
            return f'<a class="cite" href="#ref-{esc(nums[n])}">{n}</a>'

        return compress_text(nums, a)

    def _cites_span(self, nums: dict[int, str], brackets: bool = True) -> str:
        ids = " ".join(nums[n] for n in sorted(nums))
        inner = self._cite_links(nums)
        if brackets:
            inner = f"[{inner}]"
        return f'<span class="cites" data-ids="{esc(ids)}">{inner}</span>'

    def cite(self, ids: Sequence[str], limit: int | None = MAX_CITES) -> str:
        """A bracket of reference numbers, sorted and compressed: [1, 3, 5–9]."""
        ids = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
        if not ids:
            return ""
        if limit is not None and len(ids) > limit:
            raise PaperError(
                f"one citation of {len(ids)} sources ({', '.join(ids[:3])}, ...) is more than "
                f"MAX_CITES = {limit}: cite fewer, or refer to the table or figure that lists them"
            )
        return self._cites_span(self._source_numbers(ids))

    def result_ids(self, keys: Sequence[str]) -> list[str]:
        ids: list[str] = []
        for k in keys:
            self.value(k)
            ids += self.R[k]["source_ids"]
        return ids

    def cite_result(self, keys: Sequence[str]) -> str:
        return self.cite(self.result_ids(keys))

    def sources_note(self, ids: Sequence[str]) -> tuple[str, str]:
        """Citations of a figure or table: (bracket after the caption, provenance
        list). More than MAX_CITES sources go to the provenance line as a list."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return "", ""
        if len(ids) <= MAX_CITES:
            return " " + self.cite(ids), ""
        return "", f"Sources: {self._cites_span(self._source_numbers(ids), brackets=False)}. "

    def bibliography(self) -> list[tuple[int, dict]]:
        return [(n, self.sources[i]) for n, i in enumerate(self.cites.order, start=1)]

    # ---------------------------------------------------------- figures & tables
    def fig_meta(self, name: str) -> dict:
        p = self.figures_dir / f"{name}.json"
        if not p.exists():
            raise PaperError(f"figure {name!r} was not made (no {paths.rel(p)})")
        return json.loads(p.read_text())

    def ref(self, label: str) -> str:
        kind, _, name = label.strip().partition(":")
        shown = {"fig": ("figure", self.fig_labels), "tab": ("table", self.tab_labels)}
        if kind not in shown:
            raise PaperError(f"{{numref}}`{label}`: use fig:NAME or tab:KEY")
        word, labels = shown[kind]
        if name not in labels:
            raise PaperError(f"reference to {word} {name!r}, which the paper does not show")
        return (
            f'<a class="xref" href="#{kind}-{esc(name)}">'
            f"{word.capitalize()} {labels.index(name) + 1}</a>"
        )

    def _provenance(self, notebook: str, raw_files: dict[str, str]) -> str:
        raw = ", ".join(
            f"<code>{esc(f)}</code> (sha256 {esc(self.hashes.get(f, h)[:12])}…)"
            for f, h in sorted(raw_files.items())
        )
        commit = self.git["short"] + (" with uncommitted changes" if self.git["dirty"] else "")
        return (
            f'Made by <a href="{esc(self.notebooks_href)}/{esc(notebook)}.html">'
            f"notebooks/{esc(notebook)}.ipynb</a> (executed copy) from {raw}; "
            f"commit <code>{esc(commit)}</code>."
        )

    def figure(self, name: str) -> str:
        meta = self.fig_meta(name)
        n = self.figs.number(name)
        svg_path = self.figures_dir / f"{name}.svg"
        if not svg_path.exists():
            raise PaperError(f"figure {name!r} has no image ({paths.rel(svg_path)})")
        uri = "data:image/svg+xml;base64," + base64.b64encode(svg_path.read_bytes()).decode()
        cites, listed = self.sources_note(meta["source_ids"])
        return (
            f'<figure id="fig-{esc(name)}"><img src="{uri}" alt="{esc(meta["alt"])}" width="700">'
            f'<figcaption><p><span class="label">Figure {n}.</span> {esc(meta["caption"])}'
            f'{cites}</p><p class="prov">{listed}'
            f"{self._provenance(meta['notebook'], meta['raw_files'])}</p></figcaption></figure>\n"
        )

    def table(
        self,
        key: str,
        columns: list[tuple[str, str]],
        caption_html: str,
        units: dict[str, str] | None = None,
    ) -> str:
        rows = self.value(key)
        entry = self.R[key]
        if entry["kind"] != "table" or not isinstance(rows, list):
            raise PaperError(f"{{table}} {key!r}: result {key!r} is not a table")
        units = units or {}
        present = set().union(*(r.keys() for r in rows)) if rows else set()
        for c, _ in columns:
            if c not in present:
                raise PaperError(f"{{table}} {key!r} has no column {c!r}")
        for c in units:
            if c not in dict(columns):
                raise PaperError(f"{{table}} {key!r}: :units: names {c!r}, not a shown column")
        n = self.tabs.number(key)

        def cell(row: dict, col: str) -> str:
            v = row.get(col)
            if v is None or v == "":
                return ""
            if col in ("source_id", "source_ids"):
                ids = v if isinstance(v, list) else [i for i in str(v).split(";") if i]
                return self.cite(ids, limit=None)  # a list of sources, not a sentence
            if isinstance(v, float) and v.is_integer():
                v = int(v)  # counts stored as floats print as whole numbers
            is_year = col == "year" or col.endswith("_year") or units.get(col) == "year"
            if isinstance(v, int) and (is_year or row.get("unit") == "year"):
                return str(v)  # years without separators
            return esc(format_value(v))

        def heading(col: str, text: str) -> str:
            unit = units.get(col)
            return esc(text if unit in (None, "", "year") else f"{text} ({unit})")

        head = "".join(f'<th scope="col">{heading(c, h)}</th>' for c, h in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{cell(r, c)}</td>" for c, _ in columns) + "</tr>\n" for r in rows
        )
        cites, listed = self.sources_note(entry["source_ids"])
        label = f"Table {n}: {plain(caption_html)}"
        prov = f'<p class="prov">{listed.strip()}</p>' if listed else ""
        # a table of many columns is given more than the text's width where the screen has it
        wide = " wide" if len(columns) >= WIDE_TABLE_COLUMNS else ""
        return (
            f'<figure class="table{wide}" id="tab-{esc(key)}"><figcaption><p><span class="label">'
            f"Table {n}.</span> {caption_html}{cites}</p>{prov}</figcaption>\n"
            f'<div class="scroll" tabindex="0" role="region" aria-label="{esc(label)}">'
            f'<table data-key="{esc(key)}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}'
            "</tbody></table></div></figure>\n"
        )

    # ---------------------------------------------------------- appendix
    def notebook_pages(self) -> list[str]:
        """Every executed notebook page next to the paper (names without .html)."""
        return sorted(p.stem for p in self.notebooks_dir.glob("*.html"))

    def notebooks_block(self) -> str:
        pages = self.notebook_pages()
        if not pages:
            raise PaperError(
                f"{{notebooks}}: no executed notebook pages in {paths.rel(self.notebooks_dir)}"
            )
        items = "".join(
            f'<li><a href="{esc(self.notebooks_href)}/{esc(p)}.html">{esc(p)}</a></li>\n'
            for p in pages
        )
        return f'<ul class="notebooks" data-generated="notebooks">\n{items}</ul>\n'

    def environment_block(self) -> str:
        commit = f"<code>{esc(self.git['commit'])}</code>"
        if self.git["dirty"]:
            commit += " (with uncommitted changes)"
        pins = ", ".join(f"<code>{esc(k)} {esc(v)}</code>" for k, v in self.lock_versions.items())
        other = ""
        if self.other_params:
            pf = esc(self.other_params)
            other = (
                f" Its parameters are those of <code>{pf}</code>, not of the project's "
                f"<code>params.yaml</code>: <code>make report PARAMS={pf}</code> rebuilds it."
            )
        return (
            f'<p data-generated="environment">Built from commit {commit} '
            f"of {esc(self.git['date'])} with Python {esc(platform.python_version())} and, "
            f"among others (all pins in <code>requirements.lock</code>): {pins}.{other}</p>\n"
        )

    def checksums(self) -> list[tuple[str, str, int]]:
        return [
            (f"data/raw/{r['path']}", r["hash"].removeprefix("sha256:"), r["bytes"])
            for r in self.pkg["resources"]
        ]

    def checksums_block(self) -> str:
        rows = "".join(
            f"<tr><td><code>{esc(f)}</code></td><td><code>{esc(h)}</code></td>"
            f"<td>{esc(format_value(b))}</td></tr>\n"
            for f, h, b in self.checksums()
        )
        return (
            '<div class="scroll" tabindex="0" role="region" aria-label="Data checksums" '
            'data-generated="checksums"><table>\n<thead><tr><th scope="col">File</th>'
            '<th scope="col">sha256</th><th scope="col">Bytes</th></tr></thead>\n'
            f"<tbody>\n{rows}</tbody></table></div>\n"
        )

    def parameters_block(self) -> str:
        return f'<pre data-generated="parameters">{esc(self.params_text)}</pre>\n'

    def reference(self, s: dict) -> str:
        """One bibliography entry: sentences, each ending in one full stop."""
        parts = [sentence(esc(s["publisher"]), s["publisher"])]
        parts.append(sentence(f"<em>{esc(s['title'])}</em>", s["title"]))
        if s.get("date"):
            parts.append(sentence(esc(s["date"]), s["date"]))
        if s.get("path"):
            parts.append(sentence(f'<a href="{esc(s["path"])}">{esc(s["path"])}</a>'))
        if s.get("repository"):
            parts.append(
                f"Copy read: repository <code>{esc(s['repository'])}</code>, commit "
                f"<code>{esc(s.get('commit', ''))}</code>, "
                f"file <code>{esc(s.get('file', ''))}</code>."
            )
        if s.get("doi"):
            parts.append(sentence(f"doi:{esc(s['doi'])}"))
        parts.append(f"Accessed {esc(s['accessed'])}.")
        terms = s.get("licence", {}).get("title")
        if terms:
            parts.append(sentence("Terms: " + esc(terms), "Terms: " + terms))
        parts.append(f'<span class="meta">[{esc(s["id"])}]</span>')
        return " ".join(parts)

    def bibliography_block(self) -> str:
        return "@@BIBLIOGRAPHY@@"  # filled in after the whole text is rendered

    def bibliography_html(self) -> str:
        items = "".join(
            f'<li id="ref-{esc(s["id"])}">{self.reference(s)}</li>\n'
            for _, s in self.bibliography()
        )
        return f'<ol class="refs" data-generated="bibliography">\n{items}</ol>\n'


# ---------------------------------------------------------------- Markdown


def markdown() -> MarkdownIt:
    """CommonMark without raw HTML, plus front matter, MyST roles, `(label)=` targets
    and colon fences (MyST's % comments and +++ breaks are off: a wrapped line
    starting with % must stay prose)."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.use(front_matter_plugin).use(myst_role_plugin).use(myst_block_plugin)
    md.use(colon_fence_plugin)
    md.block.ruler.disable(["myst_line_comment", "myst_block_break"])
    md.core.ruler.push("source_lines", _source_lines)
    for name, rule in _RULES.items():
        md.add_render_rule(name, rule)
    return md


def _source_lines(state) -> None:
    """Remember each role's line in the source, for error messages."""
    offset = state.env.get("offset", 0)
    for t in state.tokens:
        if t.map:
            t.meta["line"] = offset + t.map[0] + 1
            for c in t.children or []:
                c.meta["line"] = offset + t.map[0] + 1


def _located(token: Token, env: dict, fn, *args) -> str:
    try:
        return fn(*args)
    except PaperError as e:
        if "line" in token.meta and not str(e).startswith(env["where"]):
            raise PaperError(f"{env['where']}, line {token.meta['line']}: {e}") from None
        raise


def split_directive(token: Token) -> tuple[str, str, dict[str, str], str] | None:
    """(name, argument, options, body) of a ```{name} argument fence, else None."""
    m = DIRECTIVE.match(token.info.strip())
    if not m:
        return None
    lines = token.content.splitlines()
    options: dict[str, str] = {}
    while lines and (o := OPTION.match(lines[0].strip())):
        options[o.group(1)] = o.group(2).strip()
        lines.pop(0)
    return m.group(1), m.group(2).strip(), options, "\n".join(lines)


def _pairs(text: str, what: str) -> list[tuple[str, str]]:
    out = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        k, eq, v = item.partition("=")
        if not eq or not k.strip() or not v.strip():
            raise PaperError(f"{what}: expected col=text, got {item!r}")
        out.append((k.strip(), v.strip()))
    return out


def _body_offset(token: Token, env: dict) -> int:
    return env.get("offset", 0) + (token.map[0] + 1 if token.map else 0)


def _directive(md: MarkdownIt, token: Token, env: dict) -> str:
    paper: Paper = env["paper"]
    name, arg, options, body = split_directive(token)  # type: ignore[misc]
    if name in ("if", "ifnot"):
        if not arg:
            raise PaperError(f"{{{name}}} needs a result key")
        if paper.has(arg) == (name == "if"):
            inner = {**env, "offset": _body_offset(token, env)}
            out = md.render(body, inner)
            env.update({k: v for k, v in inner.items() if k != "offset"})
            return out
        return ""
    if name == "figure":
        if body.strip() or options:
            raise PaperError(f"{{figure}} {arg}: the caption comes from the figure's sidecar")
        return paper.figure(arg)
    if name == "table":
        unknown = set(options) - {"columns", "units"}
        if unknown:
            raise PaperError(f"{{table}} {arg}: unknown option(s) {sorted(unknown)}")
        if "columns" not in options:
            raise PaperError(f"{{table}} {arg}: needs a :columns: col=Heading, ... line")
        columns = _pairs(options["columns"], f"{{table}} {arg} :columns:")
        units = dict(_pairs(options.get("units", ""), f"{{table}} {arg} :units:"))
        inner = {**env, "offset": _body_offset(token, env)}
        caption = md.renderInline(" ".join(body.split()), inner)
        return paper.table(arg, columns, caption.strip(), units)
    blocks = {
        "notebooks": paper.notebooks_block,
        "environment": paper.environment_block,
        "checksums": paper.checksums_block,
        "parameters": paper.parameters_block,
        "bibliography": paper.bibliography_block,
    }
    if name in blocks:
        if arg or body.strip():
            raise PaperError(f"{{{name}}} takes no argument and no content")
        return blocks[name]()
    raise PaperError(f"unknown directive {{{name}}}")


def _fence(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    if split_directive(token) is None:
        return self.__class__.fence(self, tokens, idx, options, env)
    return _located(token, env, _directive, env["md"], token, env)


def _role(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    paper: Paper = env["paper"]
    name, content = token.meta["name"], token.content.strip()
    items = [x.strip() for x in content.split(",") if x.strip()]
    roles = {
        "num": lambda: paper.num(content),
        "ci": lambda: paper.ci(content),
        "text": lambda: paper.text(content),
        "plural": lambda: paper.plural(items),
        "cite": lambda: paper.cite(items),
        "cite:result": lambda: paper.cite_result(items),
        "numref": lambda: paper.ref(content),
    }
    if name not in roles:
        return _located(token, env, _raise, f"unknown role {{{name}}}")
    return _located(token, env, roles[name])


def _raise(message: str) -> str:
    raise PaperError(message)


def _target(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    if idx + 1 >= len(tokens) or tokens[idx + 1].type != "heading_open":
        _located(token, env, _raise, f"target ({token.content})= must be followed by a heading")
    env["target"] = token.content.strip()
    return ""


def _unique(env: dict, ident: str) -> str:
    ids: set[str] = env["ids"]
    base, k = ident, 2
    while ident in ids:
        ident, k = f"{base}-{k}", k + 1
    ids.add(ident)
    return ident


def _heading_open(self, tokens, idx, options, env) -> str:
    token, inline = tokens[idx], tokens[idx + 1]
    level = int(token.tag[1])
    if level == 1:
        _located(token, env, _raise, "the title is in the front matter; use ## for sections")
    title_html = self.renderInline(inline.children, options, env)
    explicit = env.pop("target", None)
    ident = _unique(env, explicit or slug(plain(title_html)))
    if level > 2:
        return f'<{token.tag} id="{esc(ident)}">'
    env["toc"].append((ident, title_html))
    close = "</section>\n" if env["section_open"] else ""
    env["section_open"] = True
    return f'{close}<section id="{esc(ident)}">\n<h2>'


def _front_matter(self, tokens, idx, options, env) -> str:
    return ""


_RULES = {
    "fence": _fence,
    "colon_fence": _fence,
    "myst_role": _role,
    "myst_target": _target,
    "heading_open": _heading_open,
    "front_matter": _front_matter,
}


def _front(tokens: list[Token], where: str) -> dict:
    if not tokens or tokens[0].type != "front_matter":
        raise PaperError(f"{where}: no front matter (--- title: ... ---) at the top")
    try:
        meta = yaml.safe_load(tokens[0].content) or {}
    except yaml.YAMLError as e:
        msg = " ".join(str(e).split())
        raise PaperError(f"{where}: front matter is not YAML ({msg})") from None
    if not isinstance(meta, dict) or not meta.get("title"):
        raise PaperError(f"{where}: the front matter has no title")
    unknown = set(meta) - {"title", "description"}
    if unknown:
        raise PaperError(f"{where}: unknown front matter key(s) {sorted(unknown)}")
    return meta


def shown(
    md: MarkdownIt, source: str, paper: Paper, offset: int = 0, tokens: list | None = None
) -> tuple[list, list]:
    """Figures and tables the paper shows, in order (directives inside {if}/{ifnot}
    count only when their condition holds); each may be shown once. `tokens`: the
    source already parsed."""
    figs: list[str] = []
    tabs: list[str] = []
    for t in md.parse(source, {"offset": offset}) if tokens is None else tokens:
        d = split_directive(t) if t.type in ("fence", "colon_fence") else None
        if d is None:
            continue
        name, arg, _, body = d
        if name in ("figure", "table"):
            seen = figs if name == "figure" else tabs
            if arg in seen:
                raise PaperError(f"{{{name}}} {arg!r} is shown twice")
            seen.append(arg)
        elif name in ("if", "ifnot") and paper.has(arg) == (name == "if"):
            f, tb = shown(md, body, paper, offset + (t.map[0] + 1 if t.map else 0))
            for x in f:
                if x in figs:
                    raise PaperError(f"{{figure}} {x!r} is shown twice")
            figs += f
            tabs += tb
    return figs, tabs


def page(meta: dict, body: str, toc: list[tuple[str, str]], paper: Paper) -> str:
    title = esc(" ".join(str(meta["title"]).split()))
    desc = " ".join(str(meta.get("description", "")).split())
    git = paper.git
    built = f"Built from commit <code>{esc(git['short'])}</code>" + (
        " (with uncommitted changes)" if git["dirty"] else ""
    )
    built += f" of {esc(git['date'])}"
    if paper.other_params:
        built += f", with the parameters of <code>{esc(paper.other_params)}</code>"
    built += "."
    nav = " · ".join(f'<a href="#{esc(i)}">{h}</a>' for i, h in toc)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        + (f'<meta name="description" content="{esc(desc)}">\n' if desc else "")
        + f'<meta name="generator" content="kz-civil-society compendium, commit '
        f'{esc(git["commit"])}{" with uncommitted changes" if git["dirty"] else ""}">\n'
        f"<title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n"
        f'<body>\n<main>\n<article>\n<header>\n<h1>{title}</h1>\n<p class="meta">'
        + (f"{esc(desc)} " if desc else "")
        + f"{built}</p>\n</header>\n"
        f'<nav class="toc" aria-label="Contents"><p><strong>Contents:</strong> {nav}</p></nav>\n'
        f"{body}</article>\n</main>\n</body>\n</html>\n"
    )


def render(
    results: dict,
    figures_dir: Path,
    pkg: dict,
    params: dict,
    source: str | None = None,
    notebooks_dir: Path | None = None,
    where: str = "paper/paper.md",
) -> tuple[str, Paper]:
    """Render the Markdown paper (default: paper/paper.md) to one HTML page."""
    if source is None:
        source = SOURCE.read_text(encoding="utf-8")
    md = markdown()
    paper = Paper(results, figures_dir, pkg, params, notebooks_dir=notebooks_dir)
    # parsed once, then read here and rendered (what the parse leaves in its env, such
    # as reference-style link definitions, is there for the render and nested renders)
    env: dict = {}
    tokens = md.parse(source, env)
    meta = _front(tokens, where)
    try:
        paper.fig_labels, paper.tab_labels = shown(md, source, paper, tokens=tokens)
    except PaperError as e:
        raise PaperError(f"{where}: {e}") from None
    env |= {
        "md": md,
        "paper": paper,
        "where": where,
        "toc": [],
        "ids": {f"fig-{f}" for f in paper.fig_labels} | {f"tab-{t}" for t in paper.tab_labels},
        "section_open": False,
    }
    try:
        body = md.renderer.render(tokens, md.options, env)
    except PaperError as e:
        msg = str(e)
        raise PaperError(msg if msg.startswith(where) else f"{where}: {msg}") from None
    if env["section_open"]:
        body += "</section>\n"
    bib = paper.bibliography_html()
    if paper.cites.order and "@@BIBLIOGRAPHY@@" not in body:
        raise PaperError(f"{where}: sources are cited but there is no {{bibliography}}")
    body = body.replace("@@BIBLIOGRAPHY@@", bib)
    html = page(meta, body, env["toc"], paper)
    html = re.sub(r"[ \t]+\n", "\n", html)
    return html, paper


def load_params_used(stamps: Path) -> dict:
    out = {}
    for p in sorted(Path(stamps).glob("*.json")):
        out[p.stem] = json.loads(p.read_text())
    return out


class StaleOutputs(PaperError):
    """An output no longer matches what it was made from."""


def check_fingerprints(build: Path, notebooks: list[str]) -> dict[str, dict]:
    """Every stage's fingerprint must match the current files; return them all."""
    from pipeline import fingerprint, publish

    provenance, stale = {}, []
    for name in notebooks:
        p = build / "provenance" / f"{name}.json"
        try:
            prov = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            stale.append(f"{name} (no fingerprint: it did not run in this build)")
            publish.invalidate(build / "notebooks" / f"{name}.ipynb")
            continue
        why = fingerprint.stale_reasons(prov)
        if why:
            stale.append(f"{name} ({'; '.join(why)})")
            publish.invalidate(build / "notebooks" / f"{name}.ipynb")
        provenance[name] = prov
    if stale:
        raise StaleOutputs(
            "not published, stale outputs: "
            + ", ".join(stale)
            + "; reports/ is unchanged, run `make report` again"
        )
    return provenance


def delivered_files(build: Path, html: str, provenance: dict, results: dict) -> dict[str, bytes]:
    """Everything reports/ receives, with the manifest of their hashes."""
    import hashlib

    from analysis.results import dumps
    from pipeline import publish

    files: dict[str, bytes] = {"paper.html": html.encode("utf-8")}
    files["results.json"] = dumps(results).encode("utf-8")
    for sub in publish.DELIVERED_DIRS:
        for p in sorted((build / sub).glob("*")):
            if p.is_file() and p.suffix in (".svg", ".png", ".json", ".ipynb", ".html"):
                files[f"{sub}/{p.name}"] = p.read_bytes()
    manifest = {
        "files": {k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items())},
        "notebooks": provenance,
    }
    files[publish.MANIFEST] = (
        json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode("utf-8")
    return files


def _entry(f):
    def wrapped(*a, **k):
        from pipeline.cli import entry

        return entry(f)(*a, **k)

    return wrapped


@_entry
def main(argv: list[str] | None = None) -> int:
    from pipeline import merge, publish

    ap = argparse.ArgumentParser(prog="python -m pipeline.paper")
    ap.add_argument("--source", type=Path, default=SOURCE, help="the paper's Markdown")
    ap.add_argument("--build", type=Path, default=paths.BUILD_OUT, help="the build's outputs")
    ap.add_argument("--stamps", type=Path, default=paths.BUILD / "params")
    ap.add_argument("--out", type=Path, default=paths.REPORTS / "paper.html")
    ap.add_argument("notebooks", nargs="*", help="the stages whose outputs the paper uses")
    ap.add_argument(
        "--results",
        nargs="*",
        type=Path,
        default=None,
        help="the per-notebook results files, each of which must exist (make gives them); "
        "default: those the stages have",
    )
    a = ap.parse_args(argv)
    notebooks = a.notebooks or sorted(p.stem for p in (a.build / "notebooks").glob("*.ipynb"))
    try:
        source = a.source.read_text(encoding="utf-8")
    except OSError as e:
        print(f"error: cannot read the paper's source {a.source}: {e.strerror}", file=sys.stderr)
        return 1
    try:
        provenance = check_fingerprints(a.build, notebooks)
        # the notebooks' results merged here (what `make results` writes to
        # .build/out/results.json; the paper does not wait for that step)
        if a.results is None:
            registries = [a.build / "results" / f"{name}.json" for name in notebooks]
            registries = [f for f in registries if f.exists()]
        else:  # (every analysis must have saved its results: Registry.save)
            registries = a.results
            missing = [paths.rel(f) for f in registries if not f.is_file()]
            if missing:
                raise PaperError(f"{missing[0]}: missing (its notebook saved no results)")
        try:
            results = merge.combine(registries)
        except merge.DuplicateResult as e:
            raise PaperError(str(e)) from None
        params_used = load_params_used(a.stamps)
        shared: dict = next(iter(params_used.values()), {})
        named = a.stamps / "file.txt"  # the parameters file, as the snapshot names it
        params_file = named.read_text().strip() if named.exists() else "params.yaml"
        html, paper = render(
            results,
            a.build / "figures",
            data.package(),
            {**shared, "used": params_used, "params_file": params_file},
            source=source,
            notebooks_dir=a.build / "notebooks",
            where=paths.rel(a.source),
        )
    except PaperError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    files = delivered_files(a.build, html, provenance, results)
    publish.stage_and_publish(files, a.out.parent)
    from pipeline import snapshot

    snapshot.confirm()  # a complete build: make may skip the snapshot until an input changes
    print(
        f"[paper] {paths.rel(a.out)} ({len(html.encode()) / 1024:.0f} KiB, "
        f"{len(paper.figs.order)} figures, {len(paper.tabs.order)} tables, "
        f"{len(paper.cites.order)} sources cited), published with "
        f"{len(files) - 1} results, figures and notebook files"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
