"""One figure style for the compendium, and deterministic saving.

Colour-blind-safe palette, labelled axes with units, a source line naming the
source ids, alt text recorded beside each figure. `save` writes SVG and PNG to
reports/figures/ so that the same inputs give the same bytes (fixed SVG hash
salt, no dates, no software tag) and a JSON sidecar with the alt text, the
source ids and the raw files (with sha256) the figure was made from.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from analysis import data, paths  # noqa: E402
from analysis.io import write_if_changed  # noqa: E402

# Marker per bound: a lower bound is drawn as an upward triangle ("at least").
BOUND_MARKERS = {"point": "o", "approximate": "s", "lower": "^"}
BOUND_LABELS = {"point": "as stated", "approximate": "approximate", "lower": "lower bound"}


def apply_theme(params: dict) -> None:
    fig = params["figure"]
    sns.set_theme(context="notebook", style="whitegrid", palette=fig["palette"])
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
    return sns.color_palette(
        matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][:n]
        if n <= 10
        else "colorblind",
        n,
    )


def new(height_in: float | None = None):
    fig, ax = plt.subplots()
    if height_in:
        fig.set_figheight(height_in)
    return fig, ax


def source_line(fig, source_ids: list[str]) -> None:
    ids = ", ".join(sorted(set(source_ids)))
    fig.text(
        0.01,
        0.01,
        f"Sources: {ids}. Full citations in data/raw/datapackage.json.",
        fontsize=7,
        color="#555555",
        ha="left",
        va="bottom",
        wrap=True,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 1))


def _bytes(fig, fmt: str) -> bytes:
    buf = io.BytesIO()
    meta = {"svg": {"Date": None, "Creator": None}, "png": {"Software": None}}[fmt]
    fig.savefig(buf, format=fmt, metadata=meta)
    return buf.getvalue()


def save(
    fig,
    name: str,
    *,
    alt: str,
    caption: str,
    source_ids: list[str],
    raw_files: list[str],
    notebook: str,
    folder: Path = paths.FIGURES,
):
    """Save `fig` as name.svg/.png with a JSON sidecar; return an SVG to display."""
    from IPython.display import SVG

    pkg = data.package()
    hashes = {r["path"]: r["hash"].removeprefix("sha256:") for r in pkg["resources"]}
    svg = _bytes(fig, "svg")
    write_if_changed(folder / f"{name}.svg", svg)
    write_if_changed(folder / f"{name}.png", _bytes(fig, "png"))
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
    return SVG(svg)


# ---------------------------------------------------------------- figures
SERIES_LABELS = {
    "ministry_register": "Ministry NGO register",
    "moj_noncommercial": "Ministry of Justice, all non-commercial bodies",
    "bns_statistical": "Statistics bureau count",
    "early_secondary": "Early counts (secondary sources, estimates)",
}


def ngo_counts_figure(counts):
    """Counts over time, one colour per series, filled = registered, open = active,
    marker shape = bound (triangle = lower bound). Log scale: 100 to 28,000."""
    fig, ax = new(4.6)
    colours = dict(zip(SERIES_LABELS, palette(4), strict=True))
    for (series, status), grp in counts.groupby(["series", "status"], sort=True):
        grp = grp.sort_values("year")
        c = colours[series]
        if series == "ministry_register":
            ax.plot(
                grp["year"],
                grp["count"],
                color=c,
                lw=1,
                ls="-" if status == "registered" else "--",
                alpha=0.7,
            )
        for bound, g in grp.groupby("bound"):
            ax.scatter(
                g["year"],
                g["count"],
                marker=BOUND_MARKERS[bound],
                s=38,
                zorder=3,
                color=c if status == "registered" else "white",
                edgecolor=c,
                linewidths=1.3,
            )
    ax.set_yscale("log")
    ax.set_ylim(50, 400_000)  # room for the legend above the data
    ax.set_xlabel("Year")
    ax.set_ylabel("Organisations (log scale)")
    ax.set_title("NGO counts in Kazakhstan by measure definition")
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=colours[s], marker="o", ls="", label=lab)
        for s, lab in SERIES_LABELS.items()
    ]
    handles += [
        Line2D([], [], color="grey", marker="o", ls="", label="registered (filled)"),
        Line2D(
            [],
            [],
            color="grey",
            marker="o",
            ls="",
            markerfacecolor="white",
            label="active / operating (open)",
        ),
    ]
    handles += [
        Line2D([], [], color="grey", marker=BOUND_MARKERS[b], ls="", label=BOUND_LABELS[b])
        for b in ("point", "approximate", "lower")
    ]
    ax.legend(handles=handles, loc="upper left", ncol=2, fontsize=7.5)
    source_line(fig, counts["source_id"])
    return fig


def civic_space_figure(ccsi, brk, fh, fh_label, ccsi_label):
    """V-Dem core civil society index with the fitted break, and a Freedom House score."""
    import numpy as np

    fig, (a1, a2) = plt.subplots(
        1,
        2,
        figsize=(matplotlib.rcParams["figure.figsize"][0], 3.8),
        gridspec_kw={"width_ratios": [2, 1]},
    )
    c = palette(3)
    a1.plot(ccsi["year"], ccsi["value"], marker="o", ms=3, color=c[0], label=ccsi_label)
    x0 = np.arange(ccsi["year"].min(), brk.year)
    x1 = np.arange(brk.year, ccsi["year"].max() + 1)
    a1.plot(
        x0,
        brk.level_before + brk.slope_before * (x0 - (brk.year - 1)),
        color=c[1],
        lw=2,
        label=f"fitted segments (break {brk.year})",
    )
    a1.plot(x1, brk.level_after + brk.slope_after * (x1 - brk.year), color=c[1], lw=2)
    a1.set_ylim(0, 1)
    a1.set_xlabel("Year")
    a1.set_ylabel("Index (0-1, higher = more robust)")
    a1.set_title("V-Dem core civil society index")
    a1.legend(loc="lower left")
    a2.bar(fh["year"], fh["value"], color=c[2])
    a2.set_ylim(0, 12)
    a2.set_xlabel("Freedom in the World edition")
    a2.set_ylabel("Score (0-12, higher = freer)")
    a2.set_title(fh_label, fontsize=10)
    source_line(fig, list(ccsi["source_id"]) + list(fh["source_id"]))
    return fig


def activity_areas_figure(areas):
    fig, axes = plt.subplots(1, 2, figsize=(matplotlib.rcParams["figure.figsize"][0], 4.6))
    c = palette(2)
    for ax, (cls, grp), colour in zip(axes, areas.groupby("classification"), c, strict=True):
        grp = grp.sort_values("share_pct")
        labels = [a if len(a) <= 38 else a[:36] + "…" for a in grp["area"]]
        ax.barh(labels, grp["share_pct"], color=colour)
        ax.set_title(f"{cls} classification (sum {grp['share_pct'].sum():.2f}%)", fontsize=10)
        ax.set_xlabel("Share of operating NGOs (%)")
        ax.tick_params(axis="y", labelsize=7)
    source_line(fig, areas["source_id"])
    return fig


def elections_figure(picked, both, other_2023, regimes, target):
    """Women's share per election: lower chamber, Senate, both chambers; regimes shaded."""
    import datetime as dt

    fig, ax = new(4.4)
    c = palette(4)
    lower = picked[picked["chamber"] != "Senate"]
    senate = picked[(picked["chamber"] == "Senate") & (picked["coverage"] == "whole chamber")]
    pct = 100 * lower["women_seats"] / lower["total_seats"]
    ax.plot(
        lower["year"],
        pct,
        marker="o",
        color=c[0],
        label="Lower chamber (Mazhilis; 1994 Supreme Soviet)",
    )
    ax.scatter(
        senate["year"],
        100 * senate["women_seats"] / senate["total_seats"],
        marker="D",
        color=c[1],
        label="Senate (after each renewal)",
        zorder=3,
    )
    ok = both.dropna(subset=["both_pct"])
    ax.scatter(
        ok["year"],
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
            [other_2023["year"]],
            [100 * other_2023["women_seats"] / other_2023["total_seats"]],
            marker="o",
            facecolor="white",
            edgecolor=c[0],
            linewidths=1.5,
            zorder=3,
            label=f"Mazhilis 2023, alternative count ({other_2023['women_seats']} women)",
        )
    ax.axhline(target, color="#444444", ls=":", lw=1)
    ax.text(2024.3, target + 0.6, f"{target:g}% target", fontsize=8, color="#444444", ha="right")
    starts = sorted(
        (dt.date.fromisoformat(v).year if isinstance(v, str) else v.year, k)
        for k, v in regimes.items()
    )
    shade = ["#f2f2f2", "#ffffff"]
    for i, (y0, name) in enumerate(starts):
        y1 = starts[i + 1][0] if i + 1 < len(starts) else 2025
        lo = max(y0, 1993.5) - 0.5 if i else 1993.5
        ax.axvspan(lo, y1 - 0.5, color=shade[i % 2], zorder=0)
        narrow = (y1 - 0.5 - lo) < 4
        ax.text(
            (lo + y1 - 0.5) / 2,
            1,
            name.replace("_", " "),
            ha="center",
            va="bottom",
            fontsize=7,
            color="#555555",
            rotation=90 if narrow else 0,
        )
    ax.set_xlim(1993.5, 2024.5)
    ax.set_ylim(0, 45)
    ax.set_xlabel("Election year")
    ax.set_ylabel("Seats held by women (%)")
    ax.set_title("Women in Kazakhstan's parliament at each election")
    ax.legend(loc="upper left", fontsize=7.5, ncol=2)
    source_line(
        fig,
        list(picked["source_id"]) + ([other_2023["source_id"]] if other_2023 is not None else []),
    )
    return fig


def annual_figure(panel, focus, world, names, target, series_id):
    fig, ax = new(4.2)
    others = [c for c in panel.columns if c not in (focus, world)]
    cols = palette(len(others) + 1)
    for c, colour in zip(others, cols[1:], strict=True):
        ax.plot(panel.index, panel[c], color=colour, lw=1, alpha=0.85, label=names.get(c, c))
    if world in panel:
        ax.plot(
            panel.index,
            panel[world],
            color="#333333",
            lw=1.5,
            ls="--",
            label=names.get(world, world),
        )
    ax.plot(panel.index, panel[focus], color=cols[0], lw=3, label=names.get(focus, focus))
    ax.axhline(target, color="#444444", ls=":", lw=1)
    ax.set_xlabel("Year")
    ax.set_ylabel("Seats held by women, lower chamber (%)")
    ax.set_title(f"{names.get(focus, focus)} and its neighbours: women in the lower chamber")
    ax.legend(ncol=2, fontsize=7.5, loc="upper left")
    source_line(fig, [series_id])
    return fig


def caf_figure(caf, labels):
    fig, ax = new(3.8)
    for (item, grp), colour in zip(
        caf.groupby("question_id", sort=False), palette(caf["question_id"].nunique()), strict=True
    ):
        grp = grp.sort_values("year")
        ax.plot(grp["year"], grp["percent"], marker="o", color=colour, label=labels.get(item, item))
    ax.set_ylim(0, 60)
    ax.set_xlabel("Data year (World Giving Index edition - 1)")
    ax.set_ylabel("Respondents in the past month (%)")
    ax.set_title("Giving in Kazakhstan: CAF World Giving Index")
    ax.legend(loc="upper left", ncol=3, fontsize=8)
    source_line(fig, caf["source_id"])
    return fig


def granularity_figure(ns, widths, smallest):
    fig, ax = new(3.4)
    ax.plot(ns, widths, marker=".", ls="", color=palette(1)[0])
    ax.annotate(
        f"n = {smallest}",
        (ns[0], widths[0]),
        textcoords="offset points",
        xytext=(8, -4),
        fontsize=8,
    )
    ax.set_xlabel("Sample size consistent with all three published percentages")
    ax.set_ylabel("Width of a 95% Wilson interval\\nfor 48.1% (percentage points)")
    ax.set_title("Sensitivity: how wide the intervals could be (not the survey's own)")
    source_line(fig, ["survey_S01"])
    return fig
