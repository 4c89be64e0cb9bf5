"""One figure style for the compendium, and deterministic saving.

Colour-blind-safe palette, labelled axes with units, a source line naming the
source ids, alt text recorded beside each figure. `save` writes SVG and PNG to
reports/figures/ so that the same inputs give the same bytes (fixed SVG hash
salt, no dates, no software tag) and a JSON sidecar with the alt text, the
source ids and the raw files (with sha256) the figure was made from.
"""

from __future__ import annotations

import copyreg
import io
import json
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from analysis import data, paths  # noqa: E402
from analysis.io import write_atomic, write_if_changed  # noqa: E402

# Marker per bound: a lower bound is drawn as an upward triangle ("at least").
BOUND_MARKERS = {"point": "o", "approximate": "s", "lower": "^"}
BOUND_LABELS = {"point": "as stated", "approximate": "approximate", "lower": "lower bound"}
PALE_ALPHA = 0.35  # the fill of a count whose status its source does not state


def apply_theme(params: dict) -> None:
    """Set the compendium's figure style (seaborn theme, sizes, fonts, a fixed SVG
    hash salt) from a notebook's params: `params["figure"]` holds `palette`,
    `width_in`, `height_in` and `dpi`. Call it once, before the first figure."""
    fig = params["figure"]
    try:
        sns.set_theme(context="notebook", style="whitegrid", palette=fig["palette"])
    except ValueError as e:  # (a name the schema cannot check without seaborn)
        from analysis.params import ParamsError

        raise ParamsError(f"key 'shared.figure.palette': {e}") from None
    matplotlib.rcParams.update(
        {
            "figure.figsize": (fig["width_in"], fig["height_in"]),
            "figure.dpi": 100,
            "savefig.dpi": fig["dpi"],
            "svg.hashsalt": "kz-civil-society",
            "svg.fonttype": "none",
            "axes.titleweight": "bold",
            "axes.titlesize": 12,
            "axes.labelsize": 10,
            "legend.fontsize": 9,
            "legend.frameon": False,
            "font.family": "DejaVu Sans",
        }
    )


def palette(n: int) -> list:
    """`n` colours of the theme's colour-blind-safe palette (after `apply_theme`)."""
    return sns.color_palette(
        matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][:n] if n <= 10 else "colorblind",
        n,
    )


def new(height_in: float | None = None, ncols: int = 1, **kw):
    """A new figure and its axes, in the compendium's size (set by `apply_theme`),
    with constrained layout, so titles, labels and legends fit inside the canvas.

    height_in: the figure's height in inches (default: the theme's);
    ncols: side-by-side panels (then `ax` is an array of axes);
    kw: passed to `matplotlib.pyplot.subplots` (e.g. `sharey=True`).
    Returns (fig, ax). Finish with `source_line` and `save`.

    >>> fig, ax = plots.new(height_in=3.5)
    """
    fig, ax = plt.subplots(1, ncols, layout="constrained", **kw)
    if height_in:
        fig.set_figheight(height_in)
    return fig, ax


def _publisher(source: dict) -> str:
    name = source.get("publisher", source["id"])
    for sep in (";", " (", ","):
        name = name.split(sep)[0]
    return name.strip()


def source_line(fig, source_ids: list[str]) -> None:
    """Write a short data line at the bottom left of `fig`: "Data: <publishers>."
    when the source ids resolve to at most three publishers, otherwise
    "Data: N published sources, cited in the caption." (the paper cites them by
    number in the caption).

    source_ids: the source ids of the rows drawn (e.g. `counts["source_id"]`;
    duplicates are fine, ids unknown to the data package are ignored).

    >>> plots.source_line(fig, ccsi["source_id"])
    """
    pkg = {s["id"]: s for s in data.package()["sources"]}
    ids = sorted(set(source_ids))
    names = sorted({_publisher(pkg[i]) for i in ids if i in pkg})
    text = (
        "Data: " + "; ".join(names) + "."
        if 0 < len(names) <= 3
        else f"Data: {len(ids)} published sources, cited in the caption."
    )
    fig.supxlabel(text, fontsize=7, color="#555555", x=0.01, ha="left")


def wrap(label: str, width: int = 28) -> str:
    """Break a long category label over lines (never truncate it)."""
    import textwrap

    return "\n".join(textwrap.wrap(str(label), width)) or str(label)


def canvas_overflow(fig, renderer=None) -> list[str]:
    """What extends beyond the figure canvas once drawn (empty list = all fits).

    Checks every drawn text (titles, labels, legends, annotations, the data
    line) and each axis with its drawn tick labels. With a `renderer` (in a
    draw event: the draw that just ended), the figure as that draw laid it out;
    without, it lays the figure out first (a draw that paints nothing).
    """
    from matplotlib.text import Text

    if renderer is None:
        fig.draw_without_rendering()  # the layout a draw makes, without painting pixels
        renderer = fig.canvas.get_renderer()
    box = fig.bbox

    def outside(e) -> bool:
        return e.x0 < box.x0 - 1 or e.y0 < box.y0 - 1 or e.x1 > box.x1 + 1 or e.y1 > box.y1 + 1

    out = []
    ticklabels = {id(t) for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels()}
    for t in fig.findobj(Text):
        if id(t) in ticklabels or not t.get_visible() or not t.get_text().strip():
            continue
        if outside(t.get_window_extent(renderer)):
            out.append(t.get_text())
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            e = axis.get_tightbbox(renderer)
            if e is not None and outside(e):
                out.append(f"{name} axis of '{ax.get_title()}'")
    return out


def _bytes(fig, fmt: str) -> bytes:
    buf = io.BytesIO()
    meta = {"svg": {"Date": None, "Creator": None}, "png": {"Software": None}}[fmt]
    fig.savefig(buf, format=fmt, metadata=meta)
    return buf.getvalue()


# ---------------------------------------------------------------- figure cache
# A params change reruns its whole notebook, and drawing is most of a notebook's time
# (~0.35 s a figure): in a build, a figure whose drawing depends on nothing that
# changed is not drawn again. Its key is a sha256 of what the drawing depends on: the
# figure itself (pickled: its data, artists, texts, sizes and styles), the rcParams,
# matplotlib's named colours, numpy's print options, the locale, the font files its
# texts use (with their fallbacks), this module (the saving and the canvas check),
# Python's version and every installed package's (the build's environment snapshot).
# A figure is drawn every time when its pickle names code outside the drawing
# libraries (a formatter function defined in a notebook: its body could change under
# the same name) or calls such code when drawn (a callback, which its pickle leaves
# out); when it uses TeX or custom mathtext fonts; when it cannot be pickled; and when
# drawing it warned or logged (a cached copy would not say it again). What the key
# cannot see: a notebook that changes matplotlib's own code (a monkeypatch).
CACHE_FORMAT = b"kz-figure-cache 2\n"
KEYED_MODULES = frozenset(
    {
        "matplotlib",
        "mpl_toolkits",
        "numpy",
        "pandas",
        "builtins",
        "copyreg",
        "collections",
        "_codecs",
        "functools",
        "itertools",
        "operator",
        "enum",
        "weakref",
        "datetime",
    }
)


class _NotKeyable(Exception):
    pass


def _keyed(module: object, what: object) -> None:
    if str(module or "").split(".")[0] not in KEYED_MODULES:
        raise _NotKeyable(f"{module}.{what}")


def figure_key(fig) -> str | None:
    """The figure's cache key (hex sha256), or None when it cannot have one."""
    import functools
    import hashlib
    import locale
    import pickle
    import pickletools
    import sys

    import numpy as np
    from matplotlib import colors, font_manager
    from matplotlib.cbook import CallbackRegistry
    from matplotlib.text import Text
    from matplotlib.transforms import TransformNode

    rc = matplotlib.rcParams
    if rc["text.usetex"] or rc["mathtext.fontset"] == "custom":
        return None

    def without(obj, name):  # (pickled as it is, but for one attribute)
        return (
            copyreg.__newobj__,
            (type(obj),),
            {k: v for k, v in obj.__getstate__().items() if k != name},
        )

    class KeyPickler(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, np.ufunc):  # (pickled by its module's name, as data)
                _keyed(getattr(obj, "__module__", None), obj.__name__)
            elif isinstance(obj, TransformNode):
                # without its parents: invalidation links, to whatever else (even
                # garbage) uses it, by id(), another number in every process
                return without(obj, "_parents")
            elif isinstance(obj, CallbackRegistry):
                # it leaves out what it cannot pickle: a notebook's function called at
                # each draw could change the drawing unseen; only the libraries' own
                for ref in (r for signal in obj.callbacks.values() for r in signal.values()):
                    func = ref()
                    while isinstance(func, functools.partial):
                        func = func.func
                    func = getattr(func, "__func__", func)
                    _keyed(getattr(func, "__module__", None), getattr(func, "__qualname__", func))
            elif obj is fig:  # (pyplot's number for it, which depends on the figures open)
                return without(obj, "_number")
            return NotImplemented

    buf = io.BytesIO()
    try:
        # protocol 2: whatever is pickled by name (classes, functions, and objects
        # whose reduction is a name, such as a cached function) is a GLOBAL opcode
        KeyPickler(buf, protocol=2, fix_imports=False).dump(fig)
        for op, arg, _ in pickletools.genops(buf.getvalue()):
            if op.name in ("GLOBAL", "INST"):
                _keyed(*str(arg).split(" ", 1))
        texts = fig.findobj(Text)
        if any(t.get_usetex() or t.get_math_fontfamily() == "custom" for t in texts):
            return None
        fonts = sorted(  # each text's fonts, with the fallbacks for glyphs the first lacks
            {
                f
                for t in texts
                for f in font_manager.fontManager._find_fonts_by_props(t.get_fontproperties())
            }
        )
        font_stats = [(f, st.st_size, st.st_mtime_ns) for f in fonts for st in [Path(f).stat()]]
        installed = json.loads((paths.BUILD / "env.json").read_text(encoding="utf-8"))["installed"]
    except Exception:  # noqa: BLE001 - not picklable, names other code, no snapshot: no key
        return None
    h = hashlib.sha256(CACHE_FORMAT)
    for part in (
        Path(__file__).read_bytes(),
        repr([sys.version, sorted(installed.items())]).encode(),
        repr(sorted(rc.items())).encode(),
        repr(sorted(colors.get_named_colors_mapping().items())).encode(),
        repr(sorted(np.get_printoptions().items())).encode(),
        repr(locale.setlocale(locale.LC_ALL)).encode(),
        repr(font_stats).encode(),
        buf.getvalue(),
    ):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def _entry(name: str, key: str) -> Path:
    return paths.FIGURE_CACHE / f"{name}.{key}.bin"  # type: ignore[operator]


def _cached(name: str, key: str | None) -> tuple[bytes, bytes] | None:
    """The figure's PNG and SVG kept under `key`, if the entry is intact."""
    import hashlib

    if paths.FIGURE_CACHE is None or key is None:
        return None
    try:
        blob = _entry(name, key).read_bytes()
    except OSError:
        return None
    digest, size, body = blob[:32], int.from_bytes(blob[32:40], "big"), blob[40:]
    if hashlib.sha256(body).digest() != digest or size > len(body):
        return None  # (damaged: drawn again, and kept anew)
    return body[:size], body[size:]


def _keep(name: str, key: str | None, png: bytes, svg: bytes) -> None:
    """Keep the figure's files under its key, as one entry with its sha256 (only the
    last drawing of each figure is kept)."""
    import hashlib
    import re

    if paths.FIGURE_CACHE is None or key is None:
        return
    body = png + svg
    blob = hashlib.sha256(body).digest() + len(png).to_bytes(8, "big") + body
    try:
        paths.FIGURE_CACHE.mkdir(parents=True, exist_ok=True)
        write_atomic(_entry(name, key), blob)
        ours = re.compile(re.escape(name) + r"\.[0-9a-f]{64}\.(bin|png|svg)")  # (and format 1)
        for old in paths.FIGURE_CACHE.iterdir():
            if ours.fullmatch(old.name) and old.name != _entry(name, key).name:
                old.unlink(missing_ok=True)
    except OSError:  # (a cache that cannot be written: the figure is drawn next time)
        pass


@contextmanager
def _noticed():
    """Whether anything warned or logged (WARNING or above) meanwhile; warnings and log
    records are shown as they would have been."""
    import logging
    import warnings

    said: list[object] = []

    class Noticed(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record)
            # as if this handler were not there: with no other handler on its way,
            # logging's last resort prints the record (to stderr)
            others, logger = 0, logging.getLogger(record.name)
            while logger:
                others += sum(h is not self for h in logger.handlers)
                logger = logger.parent if logger.propagate else None  # type: ignore[assignment]
            last = logging.lastResort
            if not others and last is not None and record.levelno >= last.level:
                last.handle(record)

    handler = Noticed(logging.WARNING)
    logging.getLogger().addHandler(handler)
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            yield said
    finally:
        logging.getLogger().removeHandler(handler)
        for w in caught:  # (shown, even when drawing failed)
            said.append(w)
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)


def _draw(fig, name: str) -> tuple[bytes, bytes]:
    """The figure's PNG and SVG; refuses a figure with text outside its canvas."""
    # One layout for both files: the PNG's draw lays the figure out (constrained
    # layout) and is checked as it ends (no extra draw); the SVG is drawn with that
    # layout kept, so both show the same figure. (No layout engine at all for the SVG:
    # with even a placeholder one, savefig first makes a draw that paints nothing.)
    drawn: list[list[str]] = []  # what each draw left outside (savefig may draw twice)
    check = fig.canvas.mpl_connect(
        "draw_event", lambda event: drawn.append(canvas_overflow(fig, event.renderer))
    )
    try:
        png = _bytes(fig, "png")
    finally:
        fig.canvas.mpl_disconnect(check)
    clipped = drawn[-1] if drawn else canvas_overflow(fig)  # (no event: a draw of its own)
    if clipped:
        raise ValueError(f"figure {name}: text outside the canvas: {clipped}")
    engine = fig.get_layout_engine()
    rc = matplotlib.rcParams  # (with an automatic layout in rcParams, None would make one)
    auto = rc["figure.autolayout"] or rc["figure.constrained_layout.use"]
    fig.set_layout_engine("none" if auto else None)
    try:
        svg = _bytes(fig, "svg")
    finally:
        fig.set_layout_engine(engine)
    return png, svg


def save(
    fig,
    name: str,
    *,
    alt: str,
    caption: str,
    notebook: str,
    of=None,
    source_ids=None,
    raw_files: list[str] | None = None,
    folder: Path = paths.FIGURES,
):
    """Save `fig` as name.svg/.png with a JSON sidecar; return an SVG to display.

    The sidecar records the alt text, the caption, the notebook, the source ids
    and the raw files (with sha256) the figure was drawn from: `of` gives the
    rows drawn (frames read by `processed.read`, or a list of them), from which
    both are derived; `source_ids` and `raw_files` (names in data/raw/) name
    them explicitly instead. Refuses a figure with text outside its canvas.

    >>> plots.save(fig, "fig_ngo_areas", notebook="02_ngo", of=areas, caption=..., alt=...)
    """
    from IPython.display import SVG

    if of is not None:
        from analysis.results import provenance

        files, ids = provenance(of)
        raw_files = files if raw_files is None else raw_files
        source_ids = ids if source_ids is None else source_ids
    if source_ids is None or raw_files is None:
        raise ValueError(f"figure {name}: pass the rows drawn (of=) or source_ids= and raw_files=")

    key = figure_key(fig) if paths.FIGURE_CACHE is not None else None
    cached = _cached(name, key)  # (a build's figure as drawn, if nothing it depends on changed)
    if cached:
        png, svg = cached
    else:
        with _noticed() as said:
            png, svg = _draw(fig, name)
        _keep(name, None if said else key, png, svg)
    pkg = data.package()
    hashes = {r["path"]: r["hash"].removeprefix("sha256:") for r in pkg["resources"]}
    write_if_changed(folder / f"{name}.svg", svg)
    write_if_changed(folder / f"{name}.png", png)
    meta = {
        "name": name,
        "alt": alt,
        "caption": caption,
        "notebook": notebook,
        "source_ids": sorted(set(source_ids)),
        "raw_files": {f"data/raw/{f}": hashes[f] for f in sorted(raw_files)},
    }
    write_if_changed(
        folder / f"{name}.json",
        json.dumps(meta, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
    )
    plt.close(fig)
    return SVG(svg, metadata={"alt": alt})  # (the notebook page gives the image this alt text)


# ---------------------------------------------------------------- figures
SERIES_LABELS = {
    "ministry_register": "Ministry NGO register",
    "moj_noncommercial": "Ministry of Justice, all non-commercial bodies",
    "bns_statistical": "Statistics bureau count",
    "early_secondary": "Early counts (secondary sources, estimates)",
}


def ngo_counts_figure(counts):
    """Counts over time, one colour per series, filled = registered, open = active,
    pale = status not stated, marker shape = bound (triangle = lower bound), a cross =
    flagged implausible. Markers only: the years between published figures have no data. Log scale.

    counts: the processed `ngo_counts` table as `processed.read` returns it (all
    series, statuses and quality flags; the figure selects). Returns the figure."""
    from matplotlib.colors import to_rgba
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, ax = new(4.8)
    colours = dict(zip(SERIES_LABELS, palette(4), strict=True))
    ok = counts[counts["quality"] == "ok"]
    pale = {s: to_rgba(c, PALE_ALPHA) for s, c in colours.items()}  # status not stated
    for (series, status), grp in ok.groupby(["series", "status"], sort=True):
        c = colours[series]
        for bound, g in grp.groupby("bound"):
            ax.scatter(
                g["year"],
                g["count"],
                marker=BOUND_MARKERS[bound],
                s=38 if status != "active (narrow tier)" else 22,
                zorder=3,
                color={"registered": c, "not stated": pale[series]}.get(status, "white"),
                edgecolor=c,
                linewidths=1.3,
            )
    narrow = ok[ok["status"] == "active (narrow tier)"]
    for year, count in zip(narrow["year"], narrow["count"], strict=True):
        # a narrower tier of the active ones, not a fall of the active count: say so on it
        ax.annotate(
            f"'active' in a narrower sense, {year}",
            (year, count),
            xytext=(-7, 0),
            textcoords="offset points",
            fontsize=7,
            ha="right",
            va="center",
            color="#444444",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"},
        )
    bad = counts[counts["quality"] != "ok"]
    # beside, not over, the point of the same year (the cross marks a value, not a place)
    ax.scatter(bad["year"] - 0.45, bad["count"], marker="x", s=36, color="#a00000", zorder=4)
    ax.set_yscale("log")
    ax.set_ylim(50, 400_000)  # room for the legend above the data
    ax.set_xlabel("Year")
    ax.set_ylabel("Organisations (log scale)")
    ax.set_title("NGO counts in Kazakhstan by measure definition")
    # three codes, each said in its legend label: colour = series (patches), fill =
    # status, shape = bound (a filled circle is both "filled" and "circle": the labels
    # name which of the two the entry stands for)
    handles: list = [Patch(color=colours[s], label=lab) for s, lab in SERIES_LABELS.items()]
    handles += [
        Line2D([], [], color="grey", marker="o", ls="", label="filled: registered"),
        Line2D(
            [],
            [],
            color="grey",
            marker="o",
            ls="",
            markerfacecolor="white",
            label="open: active / operating",
        ),
    ]
    if (ok["status"] == "not stated").any():
        handles.append(
            Line2D(
                [],
                [],
                color="grey",
                marker="o",
                ls="",
                markerfacecolor=to_rgba("grey", PALE_ALPHA),
                label="pale: status not stated",
            )
        )
    shape = {"o": "circle", "s": "square", "^": "triangle"}
    handles += [
        Line2D(
            [],
            [],
            color="grey",
            marker=BOUND_MARKERS[b],
            ls="",
            label=f"{shape[BOUND_MARKERS[b]]}: {BOUND_LABELS[b]}",
        )
        for b in ("point", "approximate", "lower")
    ]
    if not bad.empty:
        handles.append(
            Line2D(
                [], [], color="#a00000", marker="x", ls="", label="flagged implausible (not used)"
            )
        )
    ax.legend(handles=handles, loc="upper left", ncol=2, fontsize=7.5)
    source_line(fig, counts["source_id"])
    return fig


def civic_space_figure(ccsi, profile, fh, fh_label, ccsi_label):
    """V-Dem core civil society index (annual values, its step and its lowest years
    marked) and a Freedom House score by edition. No fitted line.

    ccsi, fh: one index's rows of `civic_space_scores` each (`year`, `value`,
    `source_id`), sorted by year; profile: `ngo.index_profile` of ccsi; the labels
    name the two indices. Returns the figure."""
    fig, (a1, a2) = new(4.0, ncols=2, gridspec_kw={"width_ratios": [2, 1]})
    c = palette(3)
    a1.plot(ccsi["year"], ccsi["value"], marker="o", ms=3, color=c[0], label=ccsi_label)
    a1.annotate(
        f"largest fall: {profile.step_year}",
        (profile.step_year, ccsi.set_index("year").loc[profile.step_year, "value"]),
        xytext=(10, 28),
        textcoords="offset points",
        fontsize=8,
        arrowprops={"arrowstyle": "->", "color": "#555555"},
    )
    a1.annotate(
        f"lowest: {profile.span(profile.low_years) or profile.low_year}",
        (profile.low_year, profile.low),
        xytext=(-40, -28),
        textcoords="offset points",
        fontsize=8,
        arrowprops={"arrowstyle": "->", "color": "#555555"},
    )
    a1.set_ylim(0, 1)
    a1.set_xlabel("Year")
    a1.set_ylabel("Index (0-1, higher = more robust)")
    a1.set_title("V-Dem core civil society index", fontsize=10)
    a2.bar(fh["year"], fh["value"], color=c[2])
    a2.set_ylim(0, 12)
    a2.set_xlabel("FIW edition")
    a2.set_ylabel("Score (0-12, higher = freer)")
    a2.set_title(wrap(fh_label, 30), fontsize=9)
    source_line(fig, list(ccsi["source_id"]) + list(fh["source_id"]))
    return fig


def ngo_counts_alt(counts) -> str:
    """The alt text of `ngo_counts_figure`, from the same rows: each series and
    status with its range of counts and years, and what is flagged."""
    ok = counts[counts["quality"] == "ok"]
    parts = []
    for series, label in SERIES_LABELS.items():
        for status, g in ok[ok["series"] == series].groupby("status", sort=True):
            lo, hi = int(g["count"].min()), int(g["count"].max())
            y0, y1 = int(g["year"].min()), int(g["year"].max())
            span = f"in {y0}" if y0 == y1 else f"from {y0} to {y1}"
            values = f"{lo:,}" if lo == hi else f"{lo:,} to {hi:,}"
            some = " (lower bounds among them)" if (g["bound"] == "lower").any() else ""
            parts.append(f"{label}, {status}: {values} {span}{some}")
    flagged = counts[counts["quality"] != "ok"]
    crossed = (
        f"; {len(flagged)} published value(s) crossed out as implausible" if len(flagged) else ""
    )
    return (
        f"Scatter plot on a log scale of NGO counts from {int(counts['year'].min())} to "
        f"{int(counts['year'].max())}, one colour per series (not comparable with each other): "
        + "; ".join(parts)
        + crossed
        + "."
    )


def activity_areas_alt(areas, listed: int = 4) -> str:
    """The alt text of `activity_areas_figure`: per classification, the `listed`
    largest shares as published, the largest of the rest and the sum."""
    out = []
    for cls, grp in areas.groupby("classification"):
        grp = grp.sort_values("share_pct", ascending=False)
        shown, rest = grp.iloc[:listed], grp["share_pct"].iloc[listed:]
        top = ", ".join(f"{r.area} {r.share_pct:g}%" for r in shown.itertuples())
        others = f", the others {rest.max():g}% or less" if len(rest) else ""
        total = round(float(grp["share_pct"].sum()), 2)
        out.append(f"{cls}: {top}{others}; the shares sum to {total:g}%")
    return "Horizontal bar charts, one per classification. " + ". ".join(out) + "."


def caf_alt(caf, labels) -> str:
    """The alt text of `caf_figure`: each item's range, first and last values, and
    the data years without a value."""
    y0, y1 = int(caf["year"].min()), int(caf["year"].max())
    parts = []
    for item, grp in caf.groupby("question_id", sort=False):
        pct = grp.sort_values("year")["percent"]
        parts.append(
            f"{labels.get(item, item)} from {pct.iloc[0]:g}% to {pct.iloc[-1]:g}% "
            f"(between {pct.min():g}% and {pct.max():g}%)"
        )
    missing = sorted(set(range(y0, y1 + 1)) - set(caf["year"].astype(int)))
    gap = f"; no data for {', '.join(map(str, missing))}" if missing else ""
    return f"Line chart {y0}-{y1}: " + "; ".join(parts) + gap + "."


def activity_areas_figure(areas):
    """Published shares by area, one panel per classification; labels wrapped, never cut.

    areas: the processed `ngo_activity_areas` table. Returns the figure."""
    fig, axes = new(5.6, ncols=2)
    c = palette(2)
    for ax, (cls, grp), colour in zip(axes, areas.groupby("classification"), c, strict=True):
        grp = grp.sort_values("share_pct")
        ax.barh([wrap(a, 24) for a in grp["area"]], grp["share_pct"], color=colour)
        total = grp["share_pct"].sum()
        ax.set_title(f"{cls} classification\n(shares sum to {total:.0f}%)", fontsize=9)
        ax.set_xlabel("Share of operating NGOs (%)")
        ax.tick_params(axis="y", labelsize=6.5)
    source_line(fig, areas["source_id"])
    return fig


def _decimal_year(d) -> float:
    return d.year + (d.timetuple().tm_yday - 1) / 365.25


def elections_figure(lower, senate, both, other_2023, systems, target):
    """Women's share after each election, held as a step until the next one.

    `lower`: one row per lower-chamber election (chamber, date, women_seats,
    total_seats); `senate`: whole-chamber Senate compositions; `both`: the
    both-chambers share at each Mazhilis election; `systems`: (first year,
    name) of each electoral system, shaded. The 1994 Supreme Soviet is a
    different body and is not joined to the Mazhilis line.
    """
    fig, ax = new(4.6)
    c = palette(4)
    end = 2025.0
    for chamber, marker, label in [
        ("Supreme Soviet (unicameral)", "v", "Supreme Soviet (1994, unicameral)"),
        ("Mazhilis", "o", "Mazhilis (lower chamber)"),
    ]:
        g = lower[lower["chamber"] == chamber].sort_values("date")
        if g.empty:
            continue
        x = [_decimal_year(d) for d in g["date"]]
        y = list(100 * g["women_seats"] / g["total_seats"])
        ax.step(
            x + [end if chamber == "Mazhilis" else _decimal_year(g["date"].iloc[-1]) + 1.7],
            y + [y[-1]],
            where="post",
            color=c[0],
            lw=1.8 if chamber == "Mazhilis" else 1,
        )
        ax.scatter(x, y, marker=marker, color=c[0], zorder=3, label=label)
    # when each composition held: after a renewal, or from a change of its seats made
    # without an election (`in_force_from`), drawn open
    changed = (senate["in_force_from"] != "").to_numpy()  # (`pick_elections` fills it)
    for rows, face, label in (
        (senate[~changed], c[1], "Senate (whole chamber, after a renewal)"),
        (senate[changed], "white", "Senate (seats changed without an election)"),
    ):
        if rows.empty:
            continue
        ax.scatter(
            [_decimal_year(d) for d in rows["effective"]],
            100 * rows["women_seats"] / rows["total_seats"],
            marker="D",
            facecolor=face,
            edgecolor=c[1],
            linewidths=1.5,
            label=label,
            zorder=3,
        )
    ok = both.dropna(subset=["both_pct"])
    ax.scatter(
        [_decimal_year(d) for d in ok["date"]],
        ok["both_pct"],
        marker="s",
        facecolor="white",
        edgecolor=c[2],
        linewidths=1.5,
        label="Both chambers",
        zorder=3,
    )
    if other_2023 is not None:
        ax.scatter(
            [_decimal_year(other_2023["date"])],
            [100 * other_2023["women_seats"] / other_2023["total_seats"]],
            marker="o",
            facecolor="white",
            edgecolor=c[0],
            linewidths=1.5,
            zorder=3,
            label=f"Mazhilis 2023, other count ({other_2023['women_seats']} women)",
        )
    ax.axhline(target, color="#444444", ls=":", lw=1)
    ax.text(end - 0.2, target + 0.6, f"{target:g}%", fontsize=8, color="#444444", ha="right")
    shade = ["#f0f0f0", "#ffffff"]
    for i, (y0, name) in enumerate(systems):
        y1 = systems[i + 1][0] if i + 1 < len(systems) else end
        ax.axvspan(y0, y1, color=shade[i % 2], zorder=0)
        ax.text(
            (y0 + y1) / 2, 44, wrap(name, 14), ha="center", va="top", fontsize=6.5, color="#444444"
        )
    ax.set_xlim(1993.5, end)
    ax.set_ylim(0, 45)
    ax.set_xlabel("Year (steps hold each election's result until the next)")
    ax.set_ylabel("Seats held by women (%)")
    ax.set_title("Women in Kazakhstan's parliament, election by election")
    ax.legend(loc="upper left", fontsize=7, ncol=2, bbox_to_anchor=(0.0, 0.93))
    other = [other_2023["source_id"]] if other_2023 is not None else []
    source_line(fig, list(lower["source_id"]) + list(senate["source_id"]) + other)
    return fig


def annual_figure(panel, focus, world, names, target, series_label):
    """Annual shares, drawn as steps (a yearly value holds until the next: seats
    change at elections, not gradually); years without a value stay gaps (the panel is reindexed
    to every year, so no line bridges a missing year).

    panel: `parliament.annual_panel` (year x iso3); focus, world: iso3 codes;
    names: iso3 -> country name; target: the reference line in percent;
    series_label: the source id of the series. Returns the figure."""
    fig, ax = new(4.4)
    panel = panel.reindex(range(int(panel.index.min()), int(panel.index.max()) + 1))
    others = [c for c in panel.columns if c not in (focus, world)]
    cols = palette(len(others) + 1)
    for c, colour in zip(others, cols[1:], strict=True):
        ax.plot(
            panel.index,
            panel[c],
            color=colour,
            lw=1,
            marker=".",
            ms=3,
            alpha=0.85,
            label=names.get(c, c),
            drawstyle="steps-post",
        )
    if world in panel:
        ax.plot(
            panel.index,
            panel[world],
            color="#333333",
            lw=1.5,
            ls="--",
            label=names.get(world, world),
            drawstyle="steps-post",
        )
    ax.plot(
        panel.index,
        panel[focus],
        color=cols[0],
        lw=3,
        marker=".",
        ms=5,
        label=names.get(focus, focus),
        drawstyle="steps-post",
    )
    ax.axhline(target, color="#444444", ls=":", lw=1)
    ax.set_xlabel("Year")
    ax.set_ylabel("Seats held by women,\nlower chamber (%)")
    ax.set_title(
        f"{names.get(focus, focus)} and comparators: women in the lower chamber", fontsize=10
    )
    ax.legend(ncol=2, fontsize=7.5, loc="upper left")
    source_line(fig, [series_label])
    return fig


def caf_figure(caf, labels):
    """CAF World Giving Index items by data year; years without an edition stay gaps.

    caf: the CAF rows of the processed `survey_results` table; labels:
    question_id -> legend label. Returns the figure."""
    fig, ax = new(4.0)
    years = range(int(caf["year"].min()), int(caf["year"].max()) + 1)
    for (item, grp), colour in zip(
        caf.groupby("question_id", sort=False), palette(caf["question_id"].nunique()), strict=True
    ):
        s = grp.set_index("year")["percent"].reindex(years)
        ax.plot(s.index, s.values, marker="o", color=colour, label=labels.get(item, item))
    ax.set_ylim(0, 60)
    ax.set_xlabel("Data year (World Giving Index edition minus one)")
    ax.set_ylabel("Share who did this in the past month (%)")
    ax.set_title("Giving in Kazakhstan: CAF World Giving Index")
    ax.legend(loc="upper left", ncol=3, fontsize=8)
    source_line(fig, caf["source_id"])
    return fig


def granularity_figure(ranges, percents, every_from):
    """The share of sample sizes in each range that reproduce every published
    percentage (`survey.consistent_share_by_range`): arithmetic on rounding, no
    sampling model. every_from: `survey.every_size_from`, marked. Returns the figure."""
    fig, ax = new(3.2)
    ax.bar(
        ranges["first"], ranges["percent"], width=ranges["sizes"] * 0.9, align="edge",
        color=palette(1)[0],
    )  # fmt: skip
    if every_from is not None:
        label = f"every size from n = {every_from}"
        ax.axvline(every_from, color="0.3", lw=0.8, ls="--", label=label)
        ax.legend(loc="upper left", frameon=False, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_xlim(0, ranges["last"].max() + 1)
    width = int(ranges["sizes"].max())
    ax.set_xlabel(f"Sample size (ranges of {width})")
    ax.set_ylabel("Sizes that reproduce all\nthe percentages (%)")
    shown = ", ".join(f"{p:g}%" for p in percents)
    ax.set_title(f"Which sample sizes can give {shown}", fontsize=10)
    source_line(fig, ["survey_S01"])
    return fig
