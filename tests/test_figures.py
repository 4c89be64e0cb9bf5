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
