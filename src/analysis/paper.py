"""Assemble reports/paper.html from the results registry, the figures and the
data package.

The paper's text is a Jinja template (templates/paper.html.j2) rendered with
autoescaping on: text that comes from data (titles, notes, reasons, source
names) is always escaped. Numbers enter the text only through `num()`, which
reads the results registry; figures, tables and citations are numbered in the
order they first appear, and cross-references resolve by label.

    python -m analysis.paper [--build .build/out] [--out reports/paper.html] [NN_name ...]

It checks every stage's fingerprint first (nothing stale is published), then
publishes the paper with the results, figures and executed notebooks it was
made from, together (analysis.publish).

The output is one self-contained HTML file (styles inline, figures as data
URIs, no script, no external request), deterministic for the same inputs (the
date shown is the commit date), and written atomically.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from analysis import data, paths

TEMPLATES = Path(__file__).with_name("templates")
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
    "jinja2",
]


class PaperError(RuntimeError):
    """The paper asks for something the results or figures do not have."""


def format_value(v: Any) -> str:
    """How a registry value is printed: thousands separated, decimals as recorded."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 1000:
            return f"{int(v):,}"
        text = repr(v)
        decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 0
        return f"{v:,.{min(decimals, 4)}f}"
    return str(v)


def git_info(root: Path = paths.ROOT) -> dict[str, str]:
    if os.environ.get("KZ_GIT_INFO"):  # a scratch copy made by `make verify`: the checkout's
        return json.loads(os.environ["KZ_GIT_INFO"])

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD")
    return {
        "commit": commit or "unknown",
        "short": commit[:10] or "unknown",
        "date": git("log", "-1", "--format=%cs") or "undated",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def lock_versions(names: list[str], lock: Path = paths.LOCK_FILE) -> dict:
    """The versions that actually ran (the environment snapshot), noting any
    difference from requirements.lock."""
    from analysis.fingerprint import env_versions

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
    def __init__(
        self,
        results: dict,
        figures_dir: Path,
        pkg: dict,
        params: dict,
        notebooks_href: str = "notebooks",
    ):
        self.R = results
        self.figures_dir = figures_dir
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
        self.lock_versions = lock_versions(LOCK_SHOWN)
        self.params_text = json.dumps(
            params.get("used", {}), indent=1, sort_keys=True, ensure_ascii=False
        )
        self.fig_labels: list[str] = []  # declared, from the first pass
        self.tab_labels: list[str] = []

    # ---------------------------------------------------------- results
    def has(self, key: str) -> bool:
        return key in self.R

    def value(self, key: str) -> Any:
        if key not in self.R:
            raise PaperError(f"the paper quotes result {key!r}, which no notebook recorded")
        self.used_keys.add(key)
        return self.R[key]["value"]

    def num(self, key: str, scale: float = 1) -> Markup:
        return Markup('<span class="num" data-key="{}">{}</span>').format(
            key, self.formatted(key, scale)
        )

    def formatted(self, key: str, scale: float = 1) -> str:
        """The printed form of a result: years plain, exact counts without '.0'."""
        v = self.value(key)
        entry = self.R[key]
        if scale != 1:
            v = v * scale
        if isinstance(v, float) and v.is_integer() and entry["kind"] == "count":
            v = int(v)
        if entry["unit"] == "year" and isinstance(v, int):
            return str(v)
        return format_value(v)

    def ci(self, key: str) -> Markup:
        self.value(key)
        entry = self.R[key]
        if "interval" not in entry:
            raise PaperError(f"result {key!r} has no interval")
        lo, hi = entry["interval"]
        kind = "CI" if "confidence" in entry["interval_kind"] else "interval"
        if "approximate" in entry["interval_kind"]:
            kind = "approximate Wilson interval"
        return Markup(
            '<span class="ci">({pct}% {kind}: <span class="num" data-key="{k}#low">'
            '{lo}</span> to <span class="num" data-key="{k}#high">{hi}</span>)</span>'
        ).format(
            pct=self.num("confidence_level_pct"),
            kind=kind,
            k=key,
            lo=format_value(lo),
            hi=format_value(hi),
        )

    def text(self, key: str) -> str:
        return str(self.value(key))

    # ---------------------------------------------------------- citations
    def cite(self, *ids: str) -> Markup:
        ids = tuple(sorted(set(ids), key=lambda i: (i not in self.cites.order, i)))
        if not ids:
            return Markup("")
        parts = []
        for i in ids:
            if i not in self.sources:
                raise PaperError(f"the paper cites unknown source id {i!r}")
            n = self.cites.number(i)
            parts.append(Markup('<a class="cite" href="#ref-{}">{}</a>').format(i, n))
        return Markup("[") + Markup(", ").join(parts) + Markup("]")

    def cite_result(self, *keys: str) -> Markup:
        ids: list[str] = []
        for k in keys:
            self.value(k)
            ids += self.R[k]["source_ids"]
        return self.cite(*ids)

    def bibliography(self) -> list[tuple[int, dict]]:
        return [(n, self.sources[i]) for n, i in enumerate(self.cites.order, start=1)]

    # ---------------------------------------------------------- figures & tables
    def fig_meta(self, name: str) -> dict:
        p = self.figures_dir / f"{name}.json"
        if not p.exists():
            raise PaperError(f"figure {name!r} was not made (no {paths.rel(p)})")
        return json.loads(p.read_text())

    def has_figure(self, name: str) -> bool:
        return (self.figures_dir / f"{name}.json").exists()

    def ref(self, label: str) -> Markup:
        kind, _, name = label.partition(":")
        if kind == "fig":
            if name not in self.fig_labels:
                raise PaperError(f"reference to figure {name!r}, which the paper does not show")
            return Markup('<a class="xref" href="#fig-{}">Figure {}</a>').format(
                name, self.fig_labels.index(name) + 1
            )
        if kind == "tab":
            if name not in self.tab_labels:
                raise PaperError(f"reference to table {name!r}, which the paper does not show")
            return Markup('<a class="xref" href="#tab-{}">Table {}</a>').format(
                name, self.tab_labels.index(name) + 1
            )
        raise PaperError(f"unknown reference kind in {label!r}")

    def figure(self, name: str) -> Markup:
        meta = self.fig_meta(name)
        n = self.figs.number(name)
        svg = (self.figures_dir / f"{name}.svg").read_bytes()
        uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
        raw = Markup(", ").join(
            Markup("<code>{}</code> (sha256 {}…)").format(f, self.hashes.get(f, h)[:12])
            for f, h in sorted(meta["raw_files"].items())
        )
        nb = meta["notebook"]
        commit = self.git["short"] + (" with uncommitted changes" if self.git["dirty"] else "")
        return Markup(
            '<figure id="fig-{name}"><img src="{uri}" alt="{alt}" width="700">'
            '<figcaption><span class="label">Figure {n}.</span> {caption} {cites}</figcaption>'
            '<p class="prov">Made by <a href="{href}/{nb}.html">notebooks/{nb}.ipynb</a> '
            "(executed copy) from {raw}; commit <code>{commit}</code>.</p></figure>"
        ).format(
            name=name,
            uri=uri,
            alt=meta["alt"],
            n=n,
            caption=meta["caption"],
            cites=self.cite(*meta["source_ids"]),
            href=self.notebooks_href,
            nb=nb,
            raw=raw,
            commit=commit,
        )

    def table(self, key: str, columns: list[tuple[str, str]], caption: str) -> Markup:
        rows = self.value(key)
        n = self.tabs.number(key)
        head = Markup("").join(Markup("<th>{}</th>").format(h) for _, h in columns)
        body = Markup("")

        def cell(row: dict, col: str) -> str:
            v = row.get(col)
            if v is None:
                return ""
            if isinstance(v, float) and v.is_integer():
                v = int(v)  # counts stored as floats print as whole numbers
            if isinstance(v, int) and row.get("unit") == "year":
                return str(v)
            return format_value(v)

        for r in rows:
            cells = Markup("").join(Markup("<td>{}</td>").format(cell(r, c)) for c, _ in columns)
            body += Markup("<tr>{}</tr>").format(cells)
        return Markup(
            '<figure class="table" id="tab-{key}"><figcaption><span class="label">Table {n}.'
            '</span> {caption} {cites}</figcaption><div class="scroll"><table data-key="{key}">'
            "<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></figure>"
        ).format(key=key, n=n, caption=caption, cites=self.cite_result(key), head=head, body=body)

    # ---------------------------------------------------------- appendix
    def checksums(self) -> list[tuple[str, str, int]]:
        return [
            (f"data/raw/{r['path']}", r["hash"].removeprefix("sha256:"), r["bytes"])
            for r in self.pkg["resources"]
        ]


def render(
    results: dict, figures_dir: Path, pkg: dict, params: dict, template: str = "paper.html.j2"
) -> tuple[str, Paper]:
    """Render the paper; two passes so cross-references know every number."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    tpl = env.get_template(template)
    first = Paper(results, figures_dir, pkg, params)
    first.fig_labels = first.tab_labels = _Any()
    tpl.render(p=first, escape=escape)
    paper = Paper(results, figures_dir, pkg, params)
    paper.fig_labels, paper.tab_labels = list(first.figs.order), list(first.tabs.order)
    html = tpl.render(p=paper, escape=escape)
    html = re.sub(r"[ \t]+\n", "\n", html)
    return html, paper


class _Any(list):
    """First pass: every label is accepted (numbers are not known yet)."""

    def __contains__(self, item) -> bool:
        return True

    def index(self, item, *args) -> int:
        return 0


def load_params_used(stamps: Path) -> dict:
    out = {}
    for p in sorted(Path(stamps).glob("*.json")):
        out[p.stem] = json.loads(p.read_text())
    return out


class StaleOutputs(PaperError):
    """An output no longer matches what it was made from."""


def check_fingerprints(build: Path, notebooks: list[str]) -> dict[str, dict]:
    """Every stage's fingerprint must match the current files; return them all."""
    from analysis import fingerprint, publish

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


def delivered_files(build: Path, html: str, provenance: dict) -> dict[str, bytes]:
    """Everything reports/ receives, with the manifest of their hashes."""
    import hashlib

    from analysis import publish

    files: dict[str, bytes] = {"paper.html": html.encode("utf-8")}
    files["results.json"] = (build / "results.json").read_bytes()
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
        from analysis.cli import entry

        return entry(f)(*a, **k)

    return wrapped


@_entry
def main(argv: list[str] | None = None) -> int:
    from analysis import publish
    from analysis import results as results_mod

    ap = argparse.ArgumentParser(prog="python -m analysis.paper")
    ap.add_argument("--build", type=Path, default=paths.BUILD_OUT, help="the build's outputs")
    ap.add_argument("--stamps", type=Path, default=paths.BUILD / "params")
    ap.add_argument("--out", type=Path, default=paths.REPORTS / "paper.html")
    ap.add_argument("notebooks", nargs="*", help="the stages whose outputs the paper uses")
    a = ap.parse_args(argv)
    notebooks = a.notebooks or sorted(p.stem for p in (a.build / "notebooks").glob("*.ipynb"))
    try:
        provenance = check_fingerprints(a.build, notebooks)
        results = json.loads((a.build / "results.json").read_text())
        merged = {}
        for name in notebooks:
            f = a.build / "results" / f"{name}.json"
            if f.exists():
                merged.update(results_mod.load(f))
        if merged != results:
            raise StaleOutputs(
                f"{paths.rel(a.build / 'results.json')} does not match the notebooks' results: "
                "run `make report` again"
            )
        params_used = load_params_used(a.stamps)
        shared = next(iter(params_used.values()), {})
        html, paper = render(
            results, a.build / "figures", data.package(), {**shared, "used": params_used}
        )
    except PaperError as e:
        print(f"error: {e}", file=__import__("sys").stderr)
        return 1
    files = delivered_files(a.build, html, provenance)
    publish.stage_and_publish(files, a.out.parent)
    print(
        f"[paper] {paths.rel(a.out)} ({len(html.encode()) / 1024:.0f} KiB, "
        f"{len(paper.figs.order)} figures, {len(paper.tabs.order)} tables, "
        f"{len(paper.cites.order)} sources cited), published with "
        f"{len(files) - 1} results, figures and notebook files"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
