"""Women's representation in parliament: elections, seats by tier, annual series.

Seats are a census of who sits in parliament, not a sample: the analyses are
descriptive (counts, shares, differences) and carry no interval.
Units: seats; shares in percent (0-100).

Date convention. Sources give some dates as a month only ("2004-09"). Such a
date is read as the END of its month (a year-only date as the end of its year).
The both-chambers share at an election uses the parliament as composed after
the election: the Senate composition in force at the end of the month in which
the lower chamber was elected, so a Senate renewal in the same month counts.
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pandas as pd

LOWER = {"Supreme Soviet (unicameral)", "Mazhilis"}


def end_date(text: str) -> dt.date:
    """'2004-09-19' as is; '2004-09' -> 2004-09-30; '2004' -> 2004-12-31."""
    parts = [int(x) for x in str(text).split("-")]
    if len(parts) == 3:
        return dt.date(*parts)
    if len(parts) == 2:
        y, m = parts
        return dt.date(y, m, calendar.monthrange(y, m)[1])
    return dt.date(parts[0], 12, 31)


def pick_elections(
    elections: pd.DataFrame, preferred_sources: list[str], women_2023: int
) -> pd.DataFrame:
    """One row per chamber, election and composition (the `women_parliament_elections` table).

    Where sources disagree, the Mazhilis 2023 row is chosen by its number of
    women (`women_2023`, 18 or 19); other elections by the order of
    `preferred_sources`. Adds `date` (election date, month-only read as the
    end of the month), `effective` (date from which the composition holds:
    `in_force_from` when given, else `date`) and `alternatives` (how many other
    rows the election has).
    """
    df = _dated(elections)
    rank = {s: i for i, s in enumerate(preferred_sources)}
    df["_rank"] = df["source_id"].map(rank).fillna(len(rank))
    is_m23 = (df["chamber"] == "Mazhilis") & (df["year"] == 2023)
    if is_m23.any() and women_2023 not in set(df.loc[is_m23, "women_seats"]):
        raise ValueError(f"no Mazhilis 2023 row with {women_2023} women")
    df.loc[is_m23 & (df["women_seats"] == women_2023), "_rank"] = -1
    key = ["chamber", "election_date", "in_force_from"]
    df["alternatives"] = df.groupby(key)["source_id"].transform("size") - 1
    df = df.sort_values([*key, "_rank", "source_id"], kind="stable")
    out = df.drop_duplicates(key).drop(columns="_rank")
    return out.sort_values(["effective", "chamber"]).reset_index(drop=True)


def _dated(elections: pd.DataFrame) -> pd.DataFrame:
    """The elections table with `date` and `effective` (see `pick_elections`)."""
    df = elections.copy()
    df["in_force_from"] = df["in_force_from"].fillna("")
    df["date"] = df["election_date"].map(end_date)
    df["effective"] = [
        end_date(f) if f else d for f, d in zip(df["in_force_from"], df["date"], strict=True)
    ]
    return df


def both_chambers_other_counts(elections: pd.DataFrame, picked: pd.DataFrame) -> pd.DataFrame:
    """The both-chambers share after each lower-chamber election under the other
    counts the data hold: another source's row for the same lower-chamber election
    or for the same Senate composition (rows covering the whole chamber at that date),
    and, where the Senate used was renewed in the election's own month (so the renewal
    may have come after the election), the composition before it. One row per other
    count: `year`, `both_pct` (as
    `both_chambers` counts it), `other_pct`, `how` (in words), and the `chamber`,
    `election_date` and `source_id` of the other row."""
    every = _dated(elections)
    key = ["chamber", "election_date", "in_force_from"]
    rows = []
    for _, m in picked[picked["chamber"] == "Mazhilis"].iterrows():
        s, _ = _senate_at(picked, end_date(m["date"].strftime("%Y-%m")))
        if s is None:
            continue
        both = _combined_pct(m, s)
        others = []  # (lower-chamber row, Senate row, the other row, how)
        for row, chamber in ((m, "lower chamber"), (s, "Senate")):
            same = (every[key] == row[key]).all(axis=1) & (every["source_id"] != row["source_id"])
            for _, r in every[same & (every["coverage"] == "whole chamber")].iterrows():
                pair = (r, s) if chamber == "lower chamber" else (m, r)
                others.append((*pair, r, f"another source's count of the {chamber}"))
        # a renewal dated to the election's own month may have come after it (a change of
        # seats made by law and first seen that month, `in_force_from`, was in place: not)
        renewed, held = s["effective"], m["date"]
        if (renewed.year, renewed.month) == (held.year, held.month) and not s["in_force_from"]:
            before = picked[
                (picked["chamber"] == "Senate")
                & (picked["effective"] < s["effective"])
                & (picked["coverage"] == "whole chamber")
            ].sort_values("effective", kind="stable")
            if len(before):
                b = before.iloc[-1]
                before_it = "the Senate before the one renewed in the election's month"
                others.append((m, b, b, before_it))
        for lw, ls, r, how in others:
            rows.append(
                {
                    "year": int(m["year"]),
                    "both_pct": both,
                    "other_pct": _combined_pct(lw, ls),
                    "how": f"{how}, {r['women_seats']}/{r['total_seats']}",
                    "chamber": r["chamber"],
                    "election_date": r["election_date"],
                    "source_id": r["source_id"],
                }
            )
    cols = ["year", "both_pct", "other_pct", "how", "chamber", "election_date", "source_id"]
    return pd.DataFrame(rows, columns=cols)


def _combined_pct(lower: pd.Series, senate: pd.Series) -> float:
    """Women's share of both chambers (percent) from a lower-chamber and a Senate row."""
    women = lower["women_seats"] + senate["women_seats"]
    return float(100 * women / (lower["total_seats"] + senate["total_seats"]))


def _senate_at(picked: pd.DataFrame, when: dt.date) -> tuple[pd.Series | None, str]:
    """The whole-chamber Senate composition in force at `when`, or None with the reason."""
    senate = picked[(picked["chamber"] == "Senate") & (picked["effective"] <= when)]
    senate = senate.sort_values("effective", kind="stable")
    if senate.empty:
        return None, "no Senate at that date"
    last = senate.iloc[-1]
    if last["coverage"] != "whole chamber":
        return None, (
            f"Senate composition after the {last['election_date']} partial renewal not found"
        )
    return last, f"Senate {last['women_seats']}/{last['total_seats']} in force from " + (
        last["in_force_from"] or str(last["election_date"])
    )


def both_chambers(picked: pd.DataFrame) -> pd.DataFrame:
    """Women in both chambers after each lower-chamber election.

    The Senate composition is the one in force at the end of the election's
    month (see the module's date convention). Unknown (NaN, with `senate_note`)
    where there was no Senate or a partial renewal's full composition is missing.
    """
    rows = []
    for _, m in picked[picked["chamber"].isin(LOWER)].iterrows():
        row = {
            "election_date": m["election_date"],
            "date": m["date"],
            "year": m["year"],
            "chamber": m["chamber"],
            "lower_women": m["women_seats"],
            "lower_seats": m["total_seats"],
            "senate_women": np.nan,
            "senate_seats": np.nan,
            "both_pct": np.nan,
        }
        s, note = (None, "no Senate at that date")
        if m["chamber"] == "Mazhilis":
            s, note = _senate_at(picked, end_date(m["date"].strftime("%Y-%m")))
        if s is not None:
            row.update(
                senate_women=s["women_seats"],
                senate_seats=s["total_seats"],
                both_pct=_combined_pct(m, s),
            )
        row["senate_note"] = note
        rows.append(row)
    return pd.DataFrame(rows)


def rows_of(picked: pd.DataFrame, year: int, senate: bool = False) -> pd.DataFrame:
    """The rows a result about the lower-chamber election of `year` rests on (its
    provenance): that election's row and, with `senate`, the Senate composition
    `both_chambers` joins to it."""
    rows = picked[picked["chamber"].isin(LOWER) & (picked["year"] == year)]
    if senate and not rows.empty:
        m = rows.iloc[-1]
        s, _ = _senate_at(picked, end_date(m["date"].strftime("%Y-%m")))
        if s is not None:  # (a row of `picked`: selected by its label, dtypes kept)
            rows = picked.loc[[*rows.index, s.name]]
    return rows


def seats_by_tier(tiers: pd.DataFrame) -> pd.DataFrame:
    """Seats and women's seats by election and tier (the `women_parliament_tiers` table),
    with the women's share where the women's count of the tier is known."""
    out = tiers.sort_values(["election_date", "tier"]).reset_index(drop=True).copy()
    known = out["women_seats"].notna()
    out["women_pct"] = np.where(
        known, 100 * out["women_seats"].astype(float) / out["seats"].astype(float), np.nan
    )
    return out


def system_of(tiers_of_one_election: pd.DataFrame) -> str:
    """'single-member districts', 'party lists' or 'mixed', from the elected tiers."""
    elected = set(tiers_of_one_election["tier"]) - {"Assembly of People of Kazakhstan"}
    if elected == {"single-member districts", "party lists"}:
        return "mixed"
    if len(elected) == 1:
        return elected.pop()
    raise ValueError(f"unknown combination of tiers: {sorted(elected)}")


def systems(tiers: pd.DataFrame) -> list[tuple[float, str]]:
    """(first year, system) for each change of electoral system of the lower chamber."""
    out: list[tuple[float, str]] = []
    for date, grp in tiers.groupby("election_date", sort=True):
        name = system_of(grp)
        if not out or out[-1][1] != name:
            d = end_date(str(date))
            out.append((d.year + (d.timetuple().tm_yday - 1) / 365.25, name))
    return out


def election_table(lower: pd.DataFrame, both: pd.DataFrame, tiers: pd.DataFrame) -> pd.DataFrame:
    """One row per lower-chamber election: seats and women in all, by tier (as
    'women / seats', '? / seats' where the tier's women are not known), the
    system, and both chambers. Human column values, ready for the paper."""
    rows = []
    for _, m in lower.sort_values("date").iterrows():
        t = tiers[tiers["election_date"] == m["election_date"]].set_index("tier")
        b = both[both["election_date"] == m["election_date"]]

        def cell(tier: str, t: pd.DataFrame = t) -> str:
            if tier not in t.index:
                return "none"
            w = t["women_seats"].loc[tier]
            return f"{'?' if pd.isna(w) else int(w)} / {int(t['seats'].loc[tier])}"

        rows.append(
            {
                "election": str(m["election_date"]),
                "chamber": m["chamber"],
                "system": system_of(t.reset_index()) if len(t) else "not recorded",
                "seats": int(m["total_seats"]),
                "women": int(m["women_seats"]),
                "women_pct": round(100 * m["women_seats"] / m["total_seats"], 1),
                "single_member": cell("single-member districts") if len(t) else "?",
                "party_list": cell("party lists") if len(t) else "?",
                "assembly": cell("Assembly of People of Kazakhstan") if len(t) else "?",
                "both_pct": None
                if b.empty or pd.isna(b["both_pct"].iloc[0])
                else round(float(b["both_pct"].iloc[0]), 1),
                "source_id": m["source_id"],
            }
        )
    return pd.DataFrame(rows)


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


def dating(annual: pd.DataFrame, yearly: str, january: str, decimals: int = 1) -> pd.DataFrame:
    """Which date in the year a series with one undated value a year (`yearly`, the
    World Bank's) describes, read against a series dated to January (`january`, the
    IPU's files for January, published to `decimals` places).

    One row per country-year with a `yearly` value and `january` values for both
    that January and the next: `match` is "no change" when the two Januaries agree,
    else "next January" or "same January" (the value rounded to `decimals` equals
    that January's), or "neither" (another date, or another count of seats). A "next
    January" value already shows a change made during its year, a "same January" one
    does not. Where the January file's day is not known (the 1st or the 31st), an
    election in January may fall on either side."""
    cols = ["iso3", "year", "women_pct"]
    y = annual[annual["source_id"] == yearly][cols].rename(columns={"women_pct": "value"})
    j = annual[annual["source_id"] == january][cols].rename(columns={"women_pct": "same"})
    nxt = j.assign(year=j["year"] - 1).rename(columns={"same": "next"})
    m = y.merge(j, on=["iso3", "year"]).merge(nxt, on=["iso3", "year"])
    value, same, later = (m[c].round(decimals) for c in ("value", "same", "next"))
    match = np.select(
        [same == later, value == later, value == same],
        ["no change", "next January", "same January"],
        "neither",
    )
    return m.assign(match=match).sort_values(["iso3", "year"]).reset_index(drop=True)


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
    picked: pd.DataFrame,
    lower_pct: pd.Series,
    year: int,
    from_annual: bool = True,
    annual_source: str | None = None,
    seats_filled: bool = False,
) -> tuple[float, str, tuple[str, ...]] | None:
    """Women's share of both chambers at the end of `year` with how it was counted and
    the source ids of the rows and series it rests on, or None if unknown.

    Mazhilis: the seats of the latest election on or before the year's end; the
    women are read from the annual lower-chamber share when it maps to a whole
    number of seats (this catches by-election changes; the source ids then include
    `annual_source`, the share's series), else (and always with
    `from_annual=False`) the election count. With `seats_filled`, where the annual
    share is instead the election's women over fewer seats than were elected (a
    whole number: seats left vacant), those seats filled are counted. Senate: the
    whole-chamber composition in force at the year's end.
    """
    end = dt.date(year, 12, 31)
    lower = picked[(picked["chamber"] == "Mazhilis") & (picked["effective"] <= end)]
    s, _ = _senate_at(picked, end)
    if lower.empty or s is None:
        return None
    m = lower.iloc[-1]
    seats, women, how = int(m["total_seats"]), int(m["women_seats"]), "election count"
    if (from_annual or seats_filled) and year in lower_pct.index:
        share = float(lower_pct.loc[year])
        k = share * seats / 100
        filled = 100 * women / share if share > 0 else float("nan")
        if from_annual and abs(k - round(k)) < 0.01:
            women, how = int(round(k)), "annual share x seats"
        elif seats_filled and abs(filled - round(filled)) < 0.01 and round(filled) < seats:
            seats, how = int(round(filled)), "seats filled, by the annual share"
    pct = 100 * (women + int(s["women_seats"])) / (seats + int(s["total_seats"]))
    desc = (
        f"Mazhilis {women}/{seats} ({how}) + Senate {int(s['women_seats'])}/"
        f"{int(s['total_seats'])} in force at the end of {year}"
    )
    ids = {str(m["source_id"]), str(s["source_id"])}
    if how != "election count" and annual_source is not None:
        ids.add(annual_source)
    return pct, desc, tuple(sorted(ids))


def seat_fits(share: pd.Series, lower: pd.DataFrame, spread: float = 0.15) -> pd.DataFrame:
    """Each yearly lower-chamber share (`share`, percent, indexed by year, as
    published to full precision) read as women over seats: the seats of the latest
    election on or before the year (`lower`: picked lower-chamber elections with
    `effective`, `total_seats`), whether the share is a whole number of women over
    them (`whole`), and otherwise the seat counts within `spread` of them that it
    does fit (`fits`: (seats, women) pairs; fewer seats: some left vacant; more: a
    count the chamber did not have). A published share that fits no seat count says
    nothing about seats, and `fits` is empty."""
    rows = []
    lower = lower.sort_values("effective")
    for year, pct in share.dropna().items():
        y = int(str(year))
        held = lower[lower["effective"] <= dt.date(y, 12, 31)]
        if held.empty:
            continue
        seats = int(held.iloc[-1]["total_seats"])
        women = float(pct) * seats / 100
        whole = abs(women - round(women)) < 1e-6
        fits = []
        if not whole:
            for n in range(int(seats * (1 - spread)), int(seats * (1 + spread)) + 1):
                w = float(pct) * n / 100
                if abs(w - round(w)) < 1e-6:
                    fits.append((n, int(round(w))))
        rows.append({"year": y, "seats": seats, "whole": whole, "fits": fits})
    return pd.DataFrame(rows, columns=["year", "seats", "whole", "fits"])


def fits_text(misfits: pd.DataFrame) -> str:
    """The years of `seat_fits` whose share is no whole number of women over the
    chamber's seats, in words."""

    def one(r: pd.Series) -> str:
        fit = " or ".join(f"{w} women of {n} seats" for n, w in r["fits"])
        return f"{r['year']}: {fit or 'no seat count nearby'}, where the chamber has {r['seats']}"

    return "; ".join(one(r) for _, r in misfits.iterrows())
