"""Figures: nothing drawn outside the canvas, and labels that follow the parameters.

The frames below are fixtures made up for the tests, not data."""

from __future__ import annotations

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


@pytest.mark.parametrize("percent,level", [(48.1, 0.95), (33.3, 0.9)])
def test_granularity_labels_follow_the_parameters(percent, level):
    fig = plots.granularity_figure([81, 100, 1000], [21.0, 19.0, 6.0], 81, percent, level)
    ylabel = fig.axes[0].get_ylabel()
    assert f"{level:.0%} Wilson interval" in ylabel and f"{percent:g}%" in ylabel
    assert "\\n" not in ylabel  # a real line break, not a literal backslash-n
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
def fixture_figure(y=(1.0, 2.0, 3.0), label="fixture", colour="C0", size=None):
    """A small figure of made-up values (a fixture)."""
    fig, ax = plots.new(height_in=size)
    ax.plot([1, 2, 3], list(y), color=colour, label=label)
    ax.set_xlabel("x (fixture)")
    ax.legend()
    return fig


KEY_OF_FIXTURE = """
import sys
from analysis import plots
sys.path.insert(0, {tests!r})
from test_figures import THEME, fixture_figure
plots.apply_theme(THEME)
print(plots.figure_key(fixture_figure()))
"""


def test_a_figures_cache_key_is_the_same_in_every_process_and_follows_what_it_draws():
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = KEY_OF_FIXTURE.format(tests=str(Path(__file__).parent))
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
    with plt.rc_context({"savefig.dpi": 72}):  # what drawing reads from rcParams
        variants.append(plots.figure_key(fixture_figure()))
    assert None not in variants and len({base, *variants}) == 1 + len(variants)


def shown_by_notebook(x, pos):  # a formatter as a notebook would define it (a fixture)
    return f"{x:.0f} units"


def test_a_figure_naming_code_outside_the_drawing_libraries_has_no_key():
    from matplotlib.ticker import FuncFormatter

    fig = fixture_figure()
    fig.axes[0].xaxis.set_major_formatter(FuncFormatter(shown_by_notebook))  # pickled by name
    assert plots.figure_key(fig) is None
    fig = fixture_figure()
    fig.axes[0].xaxis.set_major_formatter(FuncFormatter(lambda x, pos: "x"))  # not picklable
    assert plots.figure_key(fig) is None
    fig = fixture_figure()
    fig.canvas.mpl_connect("draw_event", shown_by_notebook)  # (its pickle leaves it out)
    assert plots.figure_key(fig) is None
    with plt.rc_context({"text.usetex": True}):
        assert plots.figure_key(fixture_figure()) is None


def test_save_takes_a_figure_unchanged_since_the_build_drew_it_from_the_cache(
    tmp_path, monkeypatch
):
    """With a cache (a build's runner sets it), a figure whose key is known is not
    drawn again, and its files are byte for byte those drawn; a changed figure is
    drawn, and replaces its old entry; without a cache, nothing is kept."""
    from analysis import paths

    def save(fig, folder):
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

    cache = tmp_path / "cache"
    monkeypatch.setattr(paths, "FIGURE_CACHE", cache)
    drawn = save(fixture_figure(), tmp_path / "first")
    assert sorted(p.suffix for p in cache.iterdir()) == [".png", ".svg"]
    with monkeypatch.context() as m:
        m.setattr(plots, "_draw", lambda fig, name: pytest.fail("drawn again"))
        assert save(fixture_figure(), tmp_path / "second") == drawn
    entries = set(cache.iterdir())
    changed = save(fixture_figure(label="another"), tmp_path / "third")
    assert (
        changed != drawn and len(set(cache.iterdir())) == 2 and not entries & set(cache.iterdir())
    )
    monkeypatch.setattr(paths, "FIGURE_CACHE", None)
    assert save(fixture_figure(), tmp_path / "fourth") == drawn  # drawn afresh: the same bytes
