"""NGO sector and civic space: counts, rates, growth, and the civic-space indices.

Pure functions on the validated frames of `analysis.data`. Units: counts are
organisations; rates are organisations per `per` people; growth rates are
fractions per year; index values are in the index's own points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

BOUND_ORDER = {"point": 0, "approximate": 1, "lower": 2}


def one_per_year(counts: pd.DataFrame, series: str, status: str) -> pd.DataFrame:
    """One count per year of one series and status.

    Where several sources report the same year, prefer a figure stated without
    qualifier, then an approximate one, then a lower bound; ties go to the
    source id that sorts first (deterministic, and the choice is shown).
    """
    sub = counts[(counts["series"] == series) & (counts["status"] == status)].copy()
    if sub.empty:
        return sub
    sub["_rank"] = sub["bound"].map(BOUND_ORDER)
    sub = sub.sort_values(["year", "_rank", "source_id"], kind="stable")
    return sub.drop_duplicates("year").drop(columns="_rank").reset_index(drop=True)


def active_share(counts: pd.DataFrame, series: str = "ministry_register") -> pd.DataFrame:
    """Active / registered, where one source gives both for the same year.

    `indicative` is True when either number is a lower bound or approximate
    (a ratio of bounds is not a bound of the ratio).
    """
    sub = counts[counts["series"] == series]
    wide = sub.pivot_table(
        index=["year", "source_id"], columns="status", values="count", aggfunc="first"
    )
    bounds = sub.pivot_table(
        index=["year", "source_id"], columns="status", values="bound", aggfunc="first"
    )
    both = wide.dropna(subset=["registered", "active"]).copy()
    both["active_share"] = both["active"].astype(float) / both["registered"].astype(float)
    both["indicative"] = (bounds.loc[both.index, ["registered", "active"]] != "point").any(axis=1)
    return both.reset_index()[
        ["year", "source_id", "registered", "active", "active_share", "indicative"]
    ]


@dataclass(frozen=True)
class Growth:
    rate: float  # annual growth rate (fraction per year)
    low: float
    high: float
    n: int  # observations (years)
    first_year: int
    last_year: int
    slope: float  # log-points per year


def loglinear_growth(years, values, confidence: float = 0.95) -> Growth:
    """Fit log(value) = a + b·year by OLS; growth rate = exp(b) - 1 with its CI."""
    import statsmodels.api as sm

    y = np.log(np.asarray(values, dtype=float))
    x = np.asarray(years, dtype=float)
    if len(x) < 3:
        raise ValueError("a log-linear trend needs at least 3 observations")
    fit = sm.OLS(y, sm.add_constant(x - x.min())).fit()
    lo, hi = fit.conf_int(alpha=1 - confidence)[1]
    b = fit.params[1]
    return Growth(
        rate=math.expm1(b),
        low=math.expm1(lo),
        high=math.expm1(hi),
        n=len(x),
        first_year=int(x.min()),
        last_year=int(x.max()),
        slope=float(b),
    )


def fold_change(start: float, end: float) -> float:
    if start <= 0:
        raise ValueError("fold change needs a positive start value")
    return float(end) / float(start)


def areas_summary(areas: pd.DataFrame) -> pd.DataFrame:
    """Total of the published shares per classification (a total below 100 means
    categories are missing from the source, not an error of ours)."""
    return (
        areas.groupby("classification", as_index=False).agg(total_pct=("share_pct", "sum"))
    )


# ---------------------------------------------------------------- civic space
@dataclass(frozen=True)
class Trend:
    slope_per_decade: float
    low: float
    high: float
    p_value: float
    n: int


def linear_trend(years, values, confidence: float = 0.95) -> Trend:
    """OLS trend of an index on the year, in index points per decade."""
    import statsmodels.api as sm

    x = np.asarray(years, dtype=float)
    fit = sm.OLS(np.asarray(values, dtype=float), sm.add_constant(x - x.min())).fit()
    lo, hi = fit.conf_int(alpha=1 - confidence)[1]
    return Trend(
        slope_per_decade=10 * fit.params[1],
        low=10 * lo,
        high=10 * hi,
        p_value=float(fit.pvalues[1]),
        n=len(x),
    )


@dataclass(frozen=True)
class Break:
    year: int  # first year of the new regime
    sup_f: float  # F statistic of the best split (not a standard F test)
    level_before: float  # fitted value the year before the break
    level_after: float  # fitted value at the break year
    slope_before: float  # points per year
    slope_after: float
    cusum_stat: float
    cusum_p: float


def best_break(years, values, min_segment: int = 4) -> Break:
    """Single structural break in level and slope, chosen by least squares.

    For each candidate year b, fit value ~ year + D + D·(year-b) with D = [year >= b]
    and keep the b with the smallest residual sum of squares. `sup_f` compares it
    with one straight line; its null distribution is Andrews' sup-F, not F, so
    no p-value is given for it. The OLS-CUSUM test (statsmodels) is reported as
    a check of parameter stability.
    """
    import statsmodels.api as sm
    from statsmodels.stats.diagnostic import breaks_cusumolsresid

    x = np.asarray(years, dtype=float)
    y = np.asarray(values, dtype=float)
    n = len(x)
    base = sm.OLS(y, sm.add_constant(x)).fit()
    best = None
    for b in x[min_segment : n - min_segment + 1]:
        d = (x >= b).astype(float)
        X = np.column_stack([np.ones(n), x, d, d * (x - b)])
        fit = sm.OLS(y, X).fit()
        if best is None or fit.ssr < best[1].ssr - 1e-12:
            best = (b, fit)
    if best is None:
        raise ValueError("series too short for a break search")
    b, fit = best
    sup_f = ((base.ssr - fit.ssr) / 2) / (fit.ssr / (n - 4)) if fit.ssr > 0 else math.inf
    c0, c1, c2, c3 = fit.params
    stat, p, _ = breaks_cusumolsresid(base.resid, ddof=2)
    return Break(
        year=int(b),
        sup_f=float(sup_f),
        level_before=float(c0 + c1 * (b - 1)),
        level_after=float(c0 + c1 * b + c2),
        slope_before=float(c1),
        slope_after=float(c1 + c3),
        cusum_stat=float(stat),
        cusum_p=float(p),
    )


@dataclass(frozen=True)
class Association:
    rho: float
    p_value: float
    n: int
    years: tuple[int, ...]


def association(counts_by_year: pd.DataFrame, index_by_year: pd.DataFrame) -> Association:
    """Spearman rank correlation of counts and an index over the years both have."""
    from scipy.stats import spearmanr

    m = counts_by_year[["year", "count"]].merge(index_by_year[["year", "value"]], on="year")
    if len(m) < 3:
        raise ValueError("fewer than 3 common years")
    res = spearmanr(m["count"].astype(float), m["value"].astype(float))
    return Association(
        rho=float(res.statistic),
        p_value=float(res.pvalue),
        n=len(m),
        years=tuple(int(y) for y in m["year"]),
    )
