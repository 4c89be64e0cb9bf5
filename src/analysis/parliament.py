"""Women's representation in parliament: elections, a binomial model, annual series.

Units: seats; shares in percent (0-100); odds ratios are ratios of odds per
unit of the regressor (per decade for time).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

LOWER = {"Supreme Soviet (unicameral)", "Mazhilis"}


def _date(row) -> dt.date:
    """Election date with unknown month/day placed at the end of the known period."""
    y, m, d = int(row["year"]), row["month"], row["day"]
    if pd.isna(m):
        return dt.date(y, 12, 31)
    if pd.isna(d):
        nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
        return nxt - dt.timedelta(days=1)
    return dt.date(y, int(m), int(d))


def pick_elections(
    elections: pd.DataFrame, preferred_sources: list[str], women_2023: int
) -> pd.DataFrame:
    """One row per chamber and election.

    Where sources disagree, the Mazhilis 2023 row is chosen by its number of
    women (`women_2023`, 18 or 19); other elections by the order of
    `preferred_sources`. Adds `date` (a datetime.date) and `alternatives`
    (how many other rows the election has).
    """
    df = elections.copy()
    df["date"] = df.apply(_date, axis=1)
    rank = {s: i for i, s in enumerate(preferred_sources)}
    df["_rank"] = df["source_id"].map(rank).fillna(len(rank))
    is_m23 = (df["chamber"] == "Mazhilis") & (df["year"] == 2023)
    if is_m23.any() and women_2023 not in set(df.loc[is_m23, "women_seats"]):
        raise ValueError(f"no Mazhilis 2023 row with {women_2023} women")
    df.loc[is_m23 & (df["women_seats"] == women_2023), "_rank"] = -1
    df["alternatives"] = df.groupby(["chamber", "election_date"])["source_id"].transform("size") - 1
    df = df.sort_values(["chamber", "election_date", "_rank", "source_id"], kind="stable")
    out = df.drop_duplicates(["chamber", "election_date"]).drop(columns="_rank")
    return out.sort_values(["date", "chamber"]).reset_index(drop=True)


def assign_regime(dates, regimes: dict[str, dt.date | str]) -> list[str]:
    """Electoral regime in force at each date: the last regime starting on or before it."""
    starts = {k: dt.date.fromisoformat(v) if isinstance(v, str) else v for k, v in regimes.items()}
    order = sorted(starts.items(), key=lambda kv: kv[1])
    out = []
    for d in dates:
        names = [name for name, start in order if start <= d]
        if not names:
            raise ValueError(f"no electoral regime starts before {d}")
        out.append(names[-1])
    return out


def both_chambers(picked: pd.DataFrame) -> pd.DataFrame:
    """Women in both chambers at each lower-chamber election.

    The Senate composition is the latest whole-chamber Senate row on or before
    the election. If a partial Senate renewal with unknown full composition
    happened in between (2023), the combined share is unknown (NaN) and
    `senate_note` says why.
    """
    senate = picked[picked["chamber"] == "Senate"].sort_values("date")
    rows = []
    for _, m in picked[picked["chamber"].isin(LOWER)].iterrows():
        before = senate[senate["date"] <= m["date"]]
        whole = before[before["coverage"] == "whole chamber"]
        row = {
            "election_date": m["election_date"],
            "year": m["year"],
            "chamber": m["chamber"],
            "lower_women": m["women_seats"],
            "lower_seats": m["total_seats"],
        }
        if m["chamber"] != "Mazhilis" or whole.empty:
            row.update(
                senate_women=np.nan,
                senate_seats=np.nan,
                both_pct=np.nan,
                senate_note="no Senate at that date"
                if m["chamber"] != "Mazhilis"
                else "no Senate composition on record",
            )
        elif (before["coverage"] != "whole chamber").any() and before.iloc[-1][
            "coverage"
        ] != "whole chamber":
            row.update(
                senate_women=np.nan,
                senate_seats=np.nan,
                both_pct=np.nan,
                senate_note=f"Senate composition after the {before.iloc[-1]['election_date']}"
                " partial renewal not found",
            )
        else:
            s = whole.iloc[-1]
            row.update(
                senate_women=s["women_seats"],
                senate_seats=s["total_seats"],
                both_pct=100
                * (m["women_seats"] + s["women_seats"])
                / (m["total_seats"] + s["total_seats"]),
                senate_note=f"Senate as of {s['election_date']} ({s['source_id']})",
            )
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class BinomialFit:
    table: pd.DataFrame  # term, odds_ratio, low, high, p_value
    n_elections: int
    deviance: float
    df_resid: int


def binomial_model(picked: pd.DataFrame, confidence: float = 0.95) -> BinomialFit:
    """GLM (binomial, logit) of women's seats on time (per decade) and regime.

    Lower-chamber elections only; the first regime in time is the reference.
    """
    import statsmodels.api as sm

    df = picked[picked["chamber"].isin(LOWER)].sort_values("date")
    years = df["year"].astype(float).to_numpy()
    X = pd.DataFrame({"const": 1.0, "decade": (years - years.min()) / 10}, index=df.index)
    regimes = list(dict.fromkeys(df["regime"]))  # order of first appearance
    for r in regimes[1:]:
        X[f"regime: {r}"] = (df["regime"] == r).astype(float)
    women = df["women_seats"].astype(float).to_numpy()
    men = df["total_seats"].astype(float).to_numpy() - women
    fit = sm.GLM(np.column_stack([women, men]), X, family=sm.families.Binomial()).fit()
    ci = fit.conf_int(alpha=1 - confidence)
    tab = pd.DataFrame(
        {
            "term": X.columns,
            "odds_ratio": np.exp(fit.params.values),
            "low": np.exp(ci[0].values),
            "high": np.exp(ci[1].values),
            "p_value": fit.pvalues.values,
        }
    )
    return BinomialFit(
        table=tab[tab["term"] != "const"].reset_index(drop=True),
        n_elections=len(df),
        deviance=float(fit.deviance),
        df_resid=int(fit.df_resid),
    )


def annual_panel(annual: pd.DataFrame, series: str, countries: list[str]) -> pd.DataFrame:
    """Wide table year x country of one series."""
    sub = annual[(annual["source_id"] == series) & (annual["iso3"].isin(countries))]
    return sub.pivot(index="year", columns="iso3", values="women_pct")[
        [c for c in countries if c in set(sub["iso3"])]
    ]


def vintage_differences(annual: pd.DataFrame, a: str, b: str, tol: float = 1e-9) -> pd.DataFrame:
    """Country-years where two vintages of a series differ."""
    x = annual[annual["source_id"] == a][["iso3", "year", "women_pct"]]
    y = annual[annual["source_id"] == b][["iso3", "year", "women_pct"]]
    m = x.merge(y, on=["iso3", "year"], suffixes=(f"_{a}", f"_{b}"))
    diff = m[f"women_pct_{b}"] - m[f"women_pct_{a}"]
    return m[diff.abs() > tol].assign(difference=diff[diff.abs() > tol]).reset_index(drop=True)


def gaps(series: pd.Series, target: float, parity: float) -> pd.DataFrame:
    """Percentage points to the target and to parity, by year (negative = above)."""
    return pd.DataFrame(
        {
            "women_pct": series,
            "gap_to_target_pp": target - series,
            "gap_to_parity_pp": parity - series,
        }
    )


def both_chambers_in_year(
    picked: pd.DataFrame, lower_pct: pd.Series, year: int
) -> tuple[float, str] | None:
    """Women's share of both chambers at the end of `year`, or None if unknown.

    Mazhilis: the seats of the latest election on or before the year's end; the
    women are read from the annual lower-chamber share when it maps to a whole
    number of seats (this catches by-election changes), else the election count.
    Senate: the latest whole-chamber Senate row on or before the year's end;
    unknown if a partial renewal with unknown composition came later.
    """
    end = dt.date(year, 12, 31)
    lower = picked[(picked["chamber"] == "Mazhilis") & (picked["date"] <= end)]
    senate = picked[(picked["chamber"] == "Senate") & (picked["date"] <= end)]
    if lower.empty or senate.empty or senate.iloc[-1]["coverage"] != "whole chamber":
        return None
    m, s = lower.iloc[-1], senate.iloc[-1]
    seats, women, how = int(m["total_seats"]), int(m["women_seats"]), "election count"
    if year in lower_pct.index:
        k = float(lower_pct.loc[year]) * seats / 100
        if abs(k - round(k)) < 0.01:
            women, how = int(round(k)), "annual share x seats"
    pct = 100 * (women + int(s["women_seats"])) / (seats + int(s["total_seats"]))
    desc = (
        f"Mazhilis {women}/{seats} ({how}) + Senate {int(s['women_seats'])}/"
        f"{int(s['total_seats'])} as of {s['election_date']}"
    )
    return pct, desc
