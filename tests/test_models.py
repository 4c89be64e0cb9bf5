"""Unit tests of the analysis helpers with tiny hand-made frames and known answers.
All frames here are fixtures written for the tests, not real data."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from analysis import claims as C
from analysis import ngo, survey
from analysis import parliament as P


# ---------------------------------------------------------------- ngo
def test_growth_of_a_known_exponential():
    years = np.arange(2000, 2011)
    values = 1000 * 1.05 ** (years - 2000)
    g = ngo.loglinear_growth(years, values)
    assert g.rate == pytest.approx(0.05, abs=1e-12)
    assert g.low == pytest.approx(0.05, abs=1e-9) and g.high == pytest.approx(0.05, abs=1e-9)
    assert (g.n, g.first_year, g.last_year) == (11, 2000, 2010)


def test_growth_interval_covers_the_truth_with_noise():
    rng = np.random.default_rng(1)
    years = np.arange(2000, 2020)
    values = 500 * np.exp(0.03 * (years - 2000) + rng.normal(0, 0.02, len(years)))
    g = ngo.loglinear_growth(years, values)
    assert g.low < math.expm1(0.03) < g.high


def test_growth_needs_three_points():
    with pytest.raises(ValueError):
        ngo.loglinear_growth([2000, 2001], [1, 2])


def test_one_per_year_prefers_exact_figures():
    counts = pd.DataFrame(
        {
            "year": [2020, 2020, 2020, 2021],
            "series": ["s"] * 4,
            "status": ["registered"] * 4,
            "count": [22000, 21900, 22100, 1],
            "bound": ["lower", "point", "approximate", "lower"],
            "source_id": ["a", "b", "c", "d"],
        }
    )
    out = ngo.one_per_year(counts, "s", "registered")
    assert list(out["source_id"]) == ["b", "d"]


def test_active_share_flags_bounds():
    counts = pd.DataFrame(
        {
            "year": [2023, 2023, 2020, 2020],
            "series": ["r"] * 4,
            "status": ["registered", "active", "registered", "active"],
            "count": [200, 150, 100, 80],
            "bound": ["point", "point", "lower", "point"],
            "source_id": ["x", "x", "y", "y"],
        }
    )
    s = ngo.active_share(counts, "r").set_index("year")
    assert s.loc[2023, "active_share"] == pytest.approx(0.75)
    assert not s.loc[2023, "indicative"] and s.loc[2020, "indicative"]


def test_fold_change():
    assert ngo.fold_change(400, 16000) == 40
    with pytest.raises(ValueError):
        ngo.fold_change(0, 1)


def test_linear_trend_known_slope():
    t = ngo.linear_trend(range(2000, 2010), [0.5 - 0.01 * i for i in range(10)])
    assert t.slope_per_decade == pytest.approx(-0.1)


def test_best_break_finds_a_constructed_break():
    years = np.arange(1990, 2020)
    values = np.where(years < 2005, 0.6, 0.35) + 0.0005 * (years - 1990)
    b = ngo.best_break(years, values)
    assert b.year == 2005
    # fitted level the year before (2004) minus the level at the break (2005)
    assert b.level_before - b.level_after == pytest.approx(0.25 - 0.0005, abs=1e-9)


def test_association_spearman():
    a = pd.DataFrame({"year": [1, 2, 3, 4], "count": [10, 20, 30, 40]})
    b = pd.DataFrame({"year": [1, 2, 3, 4, 5], "value": [0.4, 0.3, 0.2, 0.1, 0.0]})
    r = ngo.association(a, b)
    assert r.rho == pytest.approx(-1) and r.n == 4


# ---------------------------------------------------------------- survey
def test_wilson_textbook_value():
    # Wilson 95% interval for 81/263 = (0.2553, 0.3662) (Newcombe 1998, Table I style check)
    lo, hi = survey.wilson(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)


def test_wilson_intervals_only_where_n_is_stated():
    df = pd.DataFrame(
        {
            "survey_id": ["A", "B", "C", "A"],
            "question_id": ["q", "q", "q", "IDX"],
            "response": ["yes"] * 4,
            "percent": [50.0, 50.0, 50.0, 20.0],
            "n": pd.array([100, None, 1000, 100], dtype="Int64"),
        }
    )
    out = survey.with_intervals(df, 0.95, ["IDX"], ["C"])
    assert out.loc[0, "approx_count"] == 50 and out.loc[0, "ci_low"] < 50 < out.loc[0, "ci_high"]
    assert out.loc[0, "interval_note"].startswith("approximate")
    assert pd.isna(out.loc[1, "ci_low"]) and "n not stated" in out.loc[1, "interval_note"]
    assert pd.isna(out.loc[2, "ci_low"]) and "non-probability" in out.loc[2, "interval_note"]
    assert pd.isna(out.loc[3, "ci_low"]) and "not a proportion" in out.loc[3, "interval_note"]


def test_granularity_on_constructed_percentages():
    # 1/3 = 33.3%, 2/3 = 66.7%: n = 3 is the smallest size giving both
    assert survey.consistent_sample_sizes([33.3, 66.7], n_max=12) == [3, 6, 9, 12]
    # 12.5% needs k/n = 1/8 exactly at 1 decimal only for multiples of 8 up to 16 ...
    assert survey.consistent_sample_sizes([12.5], n_max=16) == [8, 16]


def test_granularity_tie_rule():
    # 43.25 (346/800) rounds to 43.3 half-up but to 43.2 half-even
    up = survey.consistent_sample_sizes([43.2], n_max=800)
    even = survey.consistent_sample_sizes([43.2], n_max=800, rounding="half_even")
    assert 800 not in up and 800 in even
    with pytest.raises(ValueError):
        survey.consistent_sample_sizes([1.0], rounding="bankers")


def test_round_fraction():
    from fractions import Fraction

    assert survey.round_fraction(Fraction(4825, 100), 1) == Fraction(483, 10)
    assert survey.round_fraction(Fraction(4825, 100), 1, "half_even") == Fraction(482, 10)


def test_two_proportion_test_symmetry():
    r = survey.two_proportion_test(50, 100, 40, 100)
    assert r.difference_pp == 10 and 0.1 < r.p_value < 0.2
    assert survey.two_proportion_test(40, 100, 50, 100).z == pytest.approx(-r.z)


def test_comparable_pairs_need_n_on_both_sides():
    df = pd.DataFrame(
        {
            "survey_id": ["S1", "S2", "S3", "S1"],
            "year": [2020, 2021, 2022, 2020],
            "question_id": ["q", "q", "q", "other"],
            "response": ["yes"] * 4,
            "percent": [50.0, 55.0, 60.0, 10.0],
            "n": pd.array([1000, 1000, None, 1000], dtype="Int64"),
        }
    )
    pairs = survey.comparable_pairs(df, [])
    assert list(pairs["testable"]) == [True, False]
    assert "n not stated" in pairs.loc[1, "reason"]


# ---------------------------------------------------------------- parliament
def elections_fixture():
    return pd.DataFrame(
        {
            "chamber": ["Mazhilis", "Mazhilis", "Senate", "Mazhilis", "Mazhilis", "Senate"],
            "election_date": [
                "2000-01-10",
                "2005-01",
                "2004-06",
                "2010-03-01",
                "2010-03-01",
                "2009-09",
            ],
            "year": [2000, 2005, 2004, 2010, 2010, 2009],
            "month": [1, 1, 6, 3, 3, 9],
            "day": [10, None, None, 1, 1, None],
            "total_seats": [100, 100, 40, 100, 100, 20],
            "women_seats": [10, 20, 4, 30, 31, 2],
            "women_pct": [10, 20, 10, 30, 31, 10],
            "coverage": ["whole chamber"] * 5 + ["seats elected in this renewal"],
            "source_id": ["a", "a", "a", "a", "b", "c"],
            "note": [""] * 6,
        }
    )


def test_pick_elections_and_regimes():
    df = elections_fixture()
    df.loc[(df.year == 2010), "year"] = 2023  # the 2023 rule applies to Mazhilis 2023
    picked = P.pick_elections(df, ["a", "b"], women_2023=31)
    m23 = picked[(picked.chamber == "Mazhilis") & (picked.year == 2023)]
    assert len(m23) == 1 and int(m23.women_seats.iloc[0]) == 31
    regimes = {"old": "1990-01-01", "new": "2005-01-01"}
    assert P.assign_regime([dt.date(2004, 12, 31), dt.date(2005, 1, 1)], regimes) == ["old", "new"]
    with pytest.raises(ValueError):
        P.pick_elections(df, ["a"], women_2023=99)


def test_both_chambers_and_unknown_after_partial_renewal():
    picked = P.pick_elections(elections_fixture(), ["a", "b"], women_2023=18)
    both = P.both_chambers(picked).set_index("election_date")
    assert both.loc["2005-01", "both_pct"] == pytest.approx(100 * 24 / 140)
    assert math.isnan(both.loc["2010-03-01", "both_pct"])  # partial renewal in 2009
    assert "partial renewal" in both.loc["2010-03-01", "senate_note"]


@pytest.mark.filterwarnings("ignore:Perfect separation or prediction")  # exact fit by design
def test_binomial_model_recovers_known_odds():
    # fixture: constant share 20% under A, 50% under B; no time trend
    df = pd.DataFrame(
        {
            "chamber": ["Mazhilis"] * 4,
            "year": [2000, 2001, 2002, 2003],
            "date": [dt.date(y, 1, 1) for y in (2000, 2001, 2002, 2003)],
            "women_seats": [20, 20, 50, 50],
            "total_seats": [100] * 4,
            "regime": ["A", "A", "B", "B"],
        }
    )
    df2 = df.assign(year=[2000, 2003, 2000, 2003])  # time orthogonal to regime
    fit = P.binomial_model(df2).table.set_index("term")
    assert fit.loc["regime: B", "odds_ratio"] == pytest.approx((0.5 / 0.5) / (0.2 / 0.8))
    assert fit.loc["decade", "odds_ratio"] == pytest.approx(1.0)


def test_gaps_and_vintages():
    g = P.gaps(pd.Series([20.0, 35.0], index=[2000, 2001]), 30, 50)
    assert list(g["gap_to_target_pp"]) == [10, -5]
    annual = pd.DataFrame(
        {
            "iso3": ["K"] * 4,
            "year": [2000, 2001] * 2,
            "women_pct": [10.0, 11.0, 10.0, 12.0],
            "source_id": ["a", "a", "b", "b"],
        }
    )
    d = P.vintage_differences(annual, "a", "b")
    assert list(d["year"]) == [2001] and d["difference"].iloc[0] == pytest.approx(1.0)


# ---------------------------------------------------------------- claims
def test_tolerance_is_half_a_unit_of_the_claim():
    assert C.tolerance("11.2") == pytest.approx(0.05)
    assert C.tolerance("400") == pytest.approx(0.5)
    assert C.tolerance(1800000000) == pytest.approx(0.5)


def test_verdict_logic():
    same = C.Candidate(10.4, "same", "lower chamber 1999")
    both = C.Candidate(11.21, "definition", "both chambers 1999")
    later = C.Candidate(15.89, "year", "lower chamber 2007")
    assert C.verdict(10.4, [same, both]).verdict == C.CONSISTENT
    v = C.verdict(11.2, [same, both])
    assert v.verdict == C.DIFFERENT and v.found == 11.21 and "both chambers" in v.reason
    v = C.verdict(15.9, [same, later])
    assert v.verdict == C.INCONSISTENT and "mis-dated" in v.reason
    assert v.difference == pytest.approx(15.9 - 10.4)
    assert C.verdict(12.7, [same, both]).verdict == C.INCONSISTENT
    assert C.verdict(1.0, []).verdict == C.CANNOT


def test_fold_across_series_is_a_different_definition():
    start = pd.Series(
        {"count": 400, "series": "early", "bound": "lower", "year": 1994, "status": "active"}
    )
    end = pd.Series(
        {"count": 16000, "series": "register", "bound": "point", "year": 2021, "status": "active"}
    )
    (c,) = C.fold_candidates(pd.Series(dtype=object), start, end)
    assert c.value == 40 and c.kind == "definition"
