"""Figures: nothing drawn outside the canvas, and labels that follow the parameters.

The frames below are fixtures made up for the tests, not data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from analysis import plots

THEME = {"figure": {"width_in": 7.0, "height_in": 4.0, "dpi": 100, "palette": "colorblind"}}


@pytest.fixture(autouse=True)
def theme():
    plots.apply_theme(THEME)
    yield
    plt.close("all")


def test_overflow_is_detected():
    fig, ax = plots.new()
    ax.set_title("fits")
    assert plots.canvas_overflow(fig) == []
    fig.text(0.98, 0.5, "a label that runs off the right edge")
    assert "a label that runs off the right edge" in plots.canvas_overflow(fig)


def test_save_refuses_a_clipped_figure(tmp_path):
    fig, ax = plots.new()
    ax.set_ylabel("y")
    fig.text(-0.1, 0.5, "clipped on the left")
    with pytest.raises(ValueError, match="outside the canvas"):
        plots.save(
            fig,
            "clipped",
            alt="a",
            caption="c",
            source_ids=["ngo_S01"],
            raw_files=[],
            notebook="nb",
            folder=tmp_path,
        )
    assert not list(tmp_path.iterdir())  # nothing written


def test_long_category_labels_are_wrapped_not_cut():
    label = "Protection of the rights and legitimate interests of citizens and organisations"
    wrapped = plots.wrap(label, 24)
    assert wrapped.replace("\n", " ") == label and "…" not in wrapped
    areas = pd.DataFrame(
        {
            "classification": [2023, 2023, 2025],
            "area": [label, "Health", "Education and culture"],
            "share_pct": [20.0, 9.3, 23.0],
            "source_id": ["ngo_S01", "ngo_S01", "ngo_S20"],
        }
    )
    fig = plots.activity_areas_figure(areas)
    assert plots.canvas_overflow(fig) == []


@pytest.mark.parametrize("percents,every_from", [([48.1, 29.6], 700), ([33.3], None)])
def test_granularity_figure_follows_the_percentages(percents, every_from):
    from analysis import survey

    ranges = survey.consistent_share_by_range([3, 700, 800, 999, 1000], 1000)  # (fixture sizes)
    fig = plots.granularity_figure(ranges, percents, every_from)
    ax = fig.axes[0]
    assert all(f"{p:g}%" in ax.get_title() for p in percents)
    assert "\\n" not in ax.get_ylabel()  # a real line break, not a literal backslash-n
    assert len(ax.patches) == len(ranges) and ax.get_ylim() == (0, 100)
    legend = ax.get_legend()
    marked = [t.get_text() for t in legend.get_texts()] if legend else []
    assert marked == ([f"every size from n = {every_from}"] if every_from else [])
    assert plots.canvas_overflow(fig) == []


def test_annual_figure_leaves_missing_years_as_gaps():
    panel = pd.DataFrame(
        {"KAZ": [10.0, 12.0, 20.0], "WLD": [15.0, 16.0, 25.0]}, index=[2000, 2001, 2005]
    )
    fig = plots.annual_figure(
        panel, "KAZ", "WLD", {"KAZ": "Kazakhstan", "WLD": "World"}, 30, "wdi_2026oct"
    )
    line = next(ln for ln in fig.axes[0].lines if ln.get_label() == "Kazakhstan")
    x, y = line.get_data()
    assert list(x) == [2000, 2001, 2002, 2003, 2004, 2005]
    assert pd.isna(y[2]) and pd.isna(y[4])  # no line bridges 2001-2005
    assert plots.canvas_overflow(fig) == []


# ---------------------------------------------------------------- the build's figure cache
@pytest.fixture
def build(tmp_path, monkeypatch):
    """A build folder with an environment snapshot (a fixture: made-up versions)."""
    from analysis import paths

    folder = tmp_path / "build"
    folder.mkdir()
    (folder / "env.json").write_text(json.dumps({"installed": {"matplotlib": "0.0-fixture"}}))
    monkeypatch.setattr(paths, "BUILD", folder)
    return folder


def fixture_figure(y=(1.0, 2.0, 3.0), label="fixture", colour="C0", size=None):
    """A small figure of made-up values (a fixture)."""
    fig, ax = plots.new(height_in=size)
    ax.plot([1, 2, 3], list(y), color=colour, label=label)
    ax.set_xlabel("x (fixture)")
    ax.legend()
    return fig


KEY_OF_FIXTURE = """
import sys
from pathlib import Path
from analysis import paths, plots
sys.path.insert(0, {tests!r})
from test_figures import THEME, fixture_figure
paths.BUILD = Path({build!r})
plots.apply_theme(THEME)
print(plots.figure_key(fixture_figure()))
"""


@pytest.mark.slow
def test_a_figures_cache_key_is_the_same_in_every_process_and_follows_what_it_draws(build):
    import subprocess
    import sys

    import numpy as np
    import seaborn as sns

    code = KEY_OF_FIXTURE.format(tests=str(Path(__file__).parent), build=str(build))
    keys = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    base = plots.figure_key(fixture_figure())
    assert keys == {base} and len(base) == 64
    assert plots.figure_key(fixture_figure()) == base  # (another pyplot number: the same)
    variants = [
        plots.figure_key(fixture_figure(y=(1.0, 2.0, 3.5))),  # one value
        plots.figure_key(fixture_figure(label="another")),  # a text
        plots.figure_key(fixture_figure(colour="C1")),  # a style
        plots.figure_key(fixture_figure(size=3.0)),  # the size
    ]
    # what drawing reads elsewhere: rcParams, named colours, numpy's print options,
    # the installed packages
    with plt.rc_context({"savefig.dpi": 72}):
        variants.append(plots.figure_key(fixture_figure()))
    try:
        sns.set_color_codes("dark")
        variants.append(plots.figure_key(fixture_figure(colour="g")))
        sns.set_color_codes("deep")
        variants.append(plots.figure_key(fixture_figure(colour="g")))
    finally:
        plots.apply_theme(THEME)  # (the theme's own colour codes again)
    assert plots.figure_key(fixture_figure()) == base
    with np.printoptions(precision=3):
        variants.append(plots.figure_key(fixture_figure()))
    (build / "env.json").write_text(json.dumps({"installed": {"matplotlib": "0.1-fixture"}}))
    variants.append(plots.figure_key(fixture_figure()))
    assert None not in variants and len({base, *variants}) == 1 + len(variants)


def shown_by_notebook(x, pos):  # a formatter as a notebook would define it (a fixture)
    return f"{x:.0f} units"


def test_a_figure_naming_code_outside_the_drawing_libraries_has_no_key(build):
    import functools

    from matplotlib.ticker import FuncFormatter

    for formatter in (
        shown_by_notebook,  # pickled by name
        functools.cache(shown_by_notebook),  # the same, through a cache's reduction
        lambda x, pos: "x",  # not picklable
    ):
        fig = fixture_figure()
        fig.axes[0].xaxis.set_major_formatter(FuncFormatter(formatter))
        assert plots.figure_key(fig) is None, formatter
    fig = fixture_figure()
    fig.canvas.mpl_connect("draw_event", shown_by_notebook)  # (its pickle leaves it out)
    assert plots.figure_key(fig) is None
    fig = fixture_figure()
    fig.axes[0].set_title("drawn by TeX", usetex=True)
    assert plots.figure_key(fig) is None
    with plt.rc_context({"text.usetex": True}):
        assert plots.figure_key(fixture_figure()) is None
    assert plots.figure_key(fixture_figure()) is not None


def save_fixture(fig, folder):
    plots.save(
        fig,
        "fixture",
        alt="a",
        caption="c",
        notebook="nb",
        source_ids=["ngo_S01"],
        raw_files=[],
        folder=folder,
    )
    return (folder / "fixture.png").read_bytes(), (folder / "fixture.svg").read_bytes()


def test_save_takes_a_figure_unchanged_since_the_build_drew_it_from_the_cache(
    tmp_path, monkeypatch, build
):
    """With a cache (a build's runner sets it), a figure whose key is known is not
    drawn again, and its files are byte for byte those drawn; a changed figure is
    drawn, and replaces its old entry; a damaged entry is drawn again and replaced;
    without a cache, nothing is kept."""
    from analysis import paths

    cache = tmp_path / "cache"
    monkeypatch.setattr(paths, "FIGURE_CACHE", cache)
    drawn = save_fixture(fixture_figure(), tmp_path / "first")
    [entry] = cache.iterdir()
    with monkeypatch.context() as m:
        m.setattr(plots, "_draw", lambda fig, name: pytest.fail("drawn again"))
        assert save_fixture(fixture_figure(), tmp_path / "second") == drawn
    changed = save_fixture(fixture_figure(label="another"), tmp_path / "third")
    [other] = cache.iterdir()
    assert changed != drawn and other != entry
    for damage in (b"", other.read_bytes()[:-1], b"x" + other.read_bytes()[1:]):
        other.write_bytes(damage)
        assert save_fixture(fixture_figure(label="another"), tmp_path / "fourth") == changed
        assert other.read_bytes() != damage  # kept anew
    monkeypatch.setattr(paths, "FIGURE_CACHE", None)
    assert save_fixture(fixture_figure(), tmp_path / "fifth") == drawn  # drawn afresh
    assert list(cache.iterdir()) == [other]


def test_a_figure_that_warned_when_drawn_is_drawn_every_time(tmp_path, monkeypatch, build):
    """Drawing a glyph the font lacks warns; a cached copy would not warn again (the
    executed notebook would depend on the build's history): such a figure is not kept,
    and warns at every save. The text is a fixture."""
    from analysis import paths

    monkeypatch.setattr(paths, "FIGURE_CACHE", tmp_path / "cache")
    for _ in range(2):
        fig = fixture_figure(label="\u4e2d")  # (not in DejaVu Sans)
        with pytest.warns(UserWarning, match="missing from font"):
            save_fixture(fig, tmp_path / "out")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_a_figure_that_logged_when_drawn_is_drawn_every_time_and_its_log_shown(
    tmp_path, monkeypatch, capfd, build
):
    """A warning logged while drawing (as matplotlib logs a missing font) is printed as
    without the cache's watch (logging's last resort, when no handler is set up), and
    the figure is not kept. The drawing is a fixture."""
    import logging

    from analysis import paths

    monkeypatch.setattr(paths, "FIGURE_CACHE", tmp_path / "cache")
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # (pytest's own, removed)
    draw = plots._draw

    def logged(fig, name):
        logging.getLogger("matplotlib.fixture").warning("fixture: drawn with a fallback")
        return draw(fig, name)

    monkeypatch.setattr(plots, "_draw", logged)
    save_fixture(fixture_figure(), tmp_path / "out")
    assert "fixture: drawn with a fallback" in capfd.readouterr().err
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_alt_texts_are_computed_from_the_rows_drawn():
    """The alt texts give the values of the rows the figures draw (fixture rows),
    never numbers typed beside them."""
    caf = pd.DataFrame(  # fixture rows
        {
            "question_id": ["q"] * 3,
            "year": [2009, 2010, 2013],
            "percent": [8.0, 20.0, 39.0],
            "source_id": ["s"] * 3,
        }
    )
    alt = plots.caf_alt(caf, {"q": "donated"})
    assert alt == (
        "Line chart 2009-2013: donated from 8% to 39% (between 8% and 39%); no data for 2011, 2012."
    )
    areas = pd.DataFrame(
        {"classification": [2023] * 3, "area": ["a", "b", "c"], "share_pct": [5.5, 20.05, 1.0]}
    )
    assert plots.activity_areas_alt(areas, listed=2).endswith(
        "2023: b 20.05%, a 5.5%, the others 1% or less; the shares sum to 26.55%."
    )
    counts = pd.DataFrame(
        {
            "year": [2016, 2017, 2023],
            "series": ["ministry_register"] * 3,
            "status": ["registered"] * 3,
            "count": [20000, 19680, 23335],
            "bound": ["lower", "point", "point"],
            "quality": ["implausible", "ok", "ok"],
        }
    )
    alt = plots.ngo_counts_alt(counts)
    assert "registered: 19,680 to 23,335 from 2017 to 2023" in alt
    assert "1 published value(s) crossed out" in alt
