"""Check the source articles' quantitative claims against the data.

Each checker returns candidate values found in the data, each tagged:
  - "same":       the quantity as the claim states it (same definition, same period);
  - "definition": the same period under another definition (e.g. both chambers
                  instead of the lower chamber, a planned allocation instead of
                  an outturn, a ratio of two different series);
  - "year":       the same definition in a neighbouring year (informative only).

A candidate may be a bound ("more than 400" is a lower bound; a ratio with a lower
bound below the line an upper bound): it can contradict a claim, never confirm it.

`verdict` turns them into one of five verdicts with a one-line reason:
consistent / consistent with a different definition / not contradicted (the data
give only a bound, and the claim lies within it) / inconsistent / cannot check.
A claim matches a candidate when they agree within the claim's own precision:
the `tolerance` column of the claims table, half a unit of the last significant
digit as the article prints it (so "1.8 billion" allows 50 million either way).

`check_all` checks every claim of the processed `claims` table; `results_of`
turns one checked claim into the `Result`s a notebook records, and `shown`
gives the table the paper prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pandas as pd

from analysis import data
from analysis import parliament as P
from analysis.ngo import shown as to_decimals
from analysis.results import Result

SERIES_NAMES = {
    "ministry_register": "ministry NGO register",
    "moj_noncommercial": "Ministry of Justice, all non-commercial bodies",
    "bns_statistical": "statistics bureau count",
    "early_secondary": "early secondary count",
}
ANNUAL_NAMES = {
    "wdi_2026oct": "World Bank WDI, 2026 vintage",
    "wdi_2021mar": "World Bank WDI, 2021 vintage",
    "ipu_wmn_monthly": "IPU monthly ranking",
    "kazstat_sdg_551": "national statistics, SDG 5.5.1",
}

CONSISTENT = "consistent"
DIFFERENT = "consistent with a different definition"
NOT_CONTRADICTED = "not contradicted"
INCONSISTENT = "inconsistent"
CANNOT = "cannot check"
VERDICTS = (CONSISTENT, DIFFERENT, NOT_CONTRADICTED, INCONSISTENT, CANNOT)
BOUND_WORDS = {"lower": "more than", "upper": "at most"}


@dataclass(frozen=True)
class Candidate:
    """A value found in the data that a claim may be compared with."""

    value: float
    kind: str  # same | definition | year
    what: str  # e.g. "lower chamber (WDI) 1999"
    ref: pd.Series | None = field(default=None, compare=False)  # the data row behind it, if any
    bound: str | None = None  # "lower" or "upper" when the value is only a bound, else None
    sources: tuple[str, ...] = field(default=(), compare=False)  # source ids of its rows

    def within(self, claimed: float, tol: float) -> bool:
        """Whether the claimed value agrees with this candidate: equal within
        `tol`, or on the open side of a bound (within `tol` of it)."""
        if self.bound == "lower":
            return claimed >= self.value - tol - 1e-12
        if self.bound == "upper":
            return claimed <= self.value + tol + 1e-12
        return abs(self.value - claimed) <= tol + 1e-12


@dataclass(frozen=True)
class Verdict:
    """The verdict on one claim, with the value found, the difference and why."""

    verdict: str
    found: float | None
    difference: float | None
    reason: str
    candidates: tuple[Candidate, ...] = field(default=())
    bound: str | None = None  # the found value is only a bound ("lower" or "upper")


def tolerance(claimed: str | float) -> float:
    """Half a unit of the claim's last significant decimal place."""
    exp = Decimal(str(claimed)).normalize().as_tuple().exponent
    return 0.5 * 10.0 ** min(int(exp), 0) if isinstance(exp, int) else 0.5


UNIT_LABELS = {
    "organisations": "organisations",
    "ratio": "times",
    "KZT": "tenge",
    "USD": "US dollars",
    "persons": "people",
    "percent": "%",
    "year": "year",
    "count": "",
}


def decimals_of(tol: float) -> int:
    """Decimals worth printing for a value checked within `tol` (0.05 -> 2, 50 -> 0)."""
    exp = Decimal(str(tol)).normalize().as_tuple().exponent
    return max(0, -int(exp)) if isinstance(exp, int) and tol > 0 else 0


def _fmt(v: float) -> str:
    if v == int(v) and 1800 <= v <= 2100:  # a year
        return str(int(v))
    if abs(v) >= 1e6:
        return f"{v:,.0f}"
    return f"{v:.4g}" if v != int(v) else f"{int(v):,}"


def verdict(
    claimed: float,
    candidates: list[Candidate],
    tol: float | None = None,
    no_data_reason: str = "no comparable value in the data",
) -> Verdict:
    """The verdict on one claimed value given the candidates found in the data:
    consistent (a "same" candidate within `tol`, default the claim's own
    precision), consistent with a different definition, not contradicted (no
    exact value agrees, but a bound of the same or another definition does: it
    cannot confirm the claim), inconsistent (a value matching another year is
    named, as a value of another year, not as proof the claim is mis-dated), or cannot
    check (no candidate; the reason is `no_data_reason`)."""
    tol = tolerance(claimed) if tol is None else tol
    if not candidates:
        return Verdict(CANNOT, None, None, no_data_reason)
    match = {
        k: [c for c in candidates if c.kind == k and c.bound is None and c.within(claimed, tol)]
        for k in ("same", "definition", "year")
    }
    same = [c for c in candidates if c.kind == "same"]
    if match["same"]:
        c = match["same"][0]
        return Verdict(
            CONSISTENT,
            c.value,
            claimed - c.value,
            f"matches {c.what} ({_fmt(c.value)})",
            tuple(candidates),
        )
    if match["definition"]:
        c = match["definition"][0]
        extra = f"; as stated it would be {same[0].what} = {_fmt(same[0].value)}" if same else ""
        return Verdict(
            DIFFERENT,
            c.value,
            claimed - c.value,
            f"matches {c.what} ({_fmt(c.value)}){extra}",
            tuple(candidates),
        )
    bounded = [c for c in candidates if c.bound and c.kind != "year" and c.within(claimed, tol)]
    if bounded:
        c = bounded[0]
        others = [x for x in candidates if x is not c and x.kind != "year"]
        also = (
            "; also in the data for the period, not matching: " + "; ".join(map(_shown, others))
            if others
            else ""
        )
        return Verdict(
            NOT_CONTRADICTED,
            c.value,
            None,
            f"the data give only {'a lower' if c.bound == 'lower' else 'an upper'} bound, "
            f"{c.what}: the claim is {'not below' if c.bound == 'lower' else 'not above'} it, "
            f"but a bound cannot confirm it{also}",
            tuple(candidates),
            bound=c.bound,
        )
    ref = same[0] if same else min(candidates, key=lambda c: abs(c.value - claimed))
    reason = f"{ref.what} is {_fmt(ref.value)}"
    if match["year"]:
        c = match["year"][0]
        reason += f"; the claimed value matches {c.what} instead, a value of another year"
    else:
        others = [c for c in candidates if c is not ref]
        if others:
            near = min(others, key=lambda c: abs(c.value - claimed))
            reason += f"; nearest other: {near.what} = {_fmt(near.value)}"
    defs = [c for c in candidates if c.kind == "definition" and c is not ref]
    if defs and not any(d.what in reason for d in defs):
        reason += "; under another definition: " + "; ".join(
            f"{d.what} = {_fmt(d.value)}" for d in defs
        )
    return Verdict(
        INCONSISTENT, ref.value, claimed - ref.value, reason, tuple(candidates), bound=ref.bound
    )


# ------------------------------------------------------------------ checkers
def _years(refers_to: str) -> tuple[int, int]:
    """'2021' -> (2021, 2021); '1991-1994' -> (1991, 1994); 'early 1990s' -> (1990, 1995)."""
    if m := re.search(r"early (\d{3})0s", refers_to):
        d = int(m.group(1)) * 10
        return d, d + 5
    if m := re.search(r"(\d{4})\s*(?:-|to)\s*(\d{4})", refers_to):
        return int(m.group(1)), int(m.group(2))
    if m := re.search(r"(\d{4})", refers_to):
        return int(m.group(1)), int(m.group(1))
    raise ValueError(f"cannot read years from {refers_to!r}")


def ngo_count_candidates(claim: pd.Series, counts: pd.DataFrame) -> list[Candidate]:
    """Counts of the claim's years (flagged implausible values left out); for a
    claim about active NGOs, the narrower 'active' tier is another definition."""
    y0, y1 = _years(claim["refers_to"])
    active = "active" in claim["quantity"]
    sub = counts[(counts["year"] >= y0) & (counts["year"] <= y1) & (counts["quality"] == "ok")]
    if active:
        sub = sub[sub["status"].str.startswith("active")]
    bounds = {"lower": "more than ", "approximate": "about ", "point": ""}
    return [
        Candidate(
            float(r["count"]),
            "definition" if r["status"] == "active (narrow tier)" else "same",
            f"{bounds[r['bound']]}{int(r['count']):,} {r['status']} NGOs "
            f"({SERIES_NAMES.get(r['series'], r['series'])}, {r['year']})",
            ref=r,
            bound="lower" if r["bound"] == "lower" else None,
            sources=_ids(r["source_id"]),
        )
        for _, r in sub.sort_values(["year", "source_id"]).iterrows()
    ]


def official_fold_candidates(growth: pd.DataFrame) -> list[Candidate]:
    """Growth factors stated by officials or statistics for the register itself
    (`ngo_growth_statements`): another period and definition than the claim's."""
    return [
        Candidate(
            float(r["fold"]),
            "definition",
            f"{'about ' if r['bound'] == 'approximate' else ''}{r['fold']:g}-fold "
            f"{r['from_year']} to {r['to_year']} as stated by "
            f"{'an official' if r['provenance'].startswith('official') else 'a report'}",
            sources=_ids(r["source_id"]),
        )
        for _, r in growth.sort_values("from_year").iterrows()
    ]


def fold_across_series_reason(start: pd.Series, end: pd.Series, growth: pd.DataFrame | None) -> str:
    """Why a fold change joining counts of two series cannot be checked, with the
    officials' own statements of growth (other periods and registers)."""
    said = "; ".join(c.what for c in official_fold_candidates(growth)) if growth is not None else ""
    return (
        f"the ratio joins counts of two definitions, {_ratio_terms(start, end)}, so it is the "
        "growth of neither"
        + (f"; officials state other growth for other periods: {said}" if said else "")
    )


def _ratio_terms(start: pd.Series, end: pd.Series, joined: str = "and") -> str:
    """The two counts of a ratio as its reason names them, the later first:
    "16,000 active (ministry NGO register, 2021) and more than 400 (...)"."""
    s_name = SERIES_NAMES.get(start["series"], start["series"])
    e_name = SERIES_NAMES.get(end["series"], end["series"])
    return (
        f"{int(end['count']):,} {end['status']} ({e_name}, {end['year']}) {joined} "
        f"{'more than ' if start['bound'] == 'lower' else ''}{int(start['count']):,} "
        f"({s_name}, {start['year']})"
    )


def fold_candidates(claim: pd.Series, start: pd.Series, end: pd.Series) -> list[Candidate]:
    """The ratio of the two counts the claim joins; a ratio across two series or
    from a lower bound is another definition, never the same quantity. A lower
    bound below the line makes the ratio an upper bound, above the line a lower
    bound; with lower bounds on both sides it bounds nothing and is left out."""
    low_start, low_end = start["bound"] == "lower", end["bound"] == "lower"
    if low_start and low_end:
        return []
    ratio = float(end["count"]) / float(start["count"])
    kind = (
        "same" if start["series"] == end["series"] and start["bound"] == "point" else "definition"
    )
    what = _ratio_terms(start, end, "divided by") + (
        ", so at most this" if low_start else ", so at least this" if low_end else ""
    )
    bound = "upper" if low_start else "lower" if low_end else None
    ids = _ids(start["source_id"]) + _ids(end["source_id"]) if "source_id" in start else ()
    return [Candidate(ratio, kind, what, bound=bound, sources=ids)]


_STOP = {"state", "to", "for", "of", "the", "ngos", "ngo", "and", "in"}


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z][a-z\-]+", text.lower()) if w not in _STOP}


INSTRUMENT_WORDS = {"grant": "grants", "social order": "social order", "award": "award"}
"""Words of a claimed quantity that name how money reaches NGOs (the funding table's
`instrument`)."""


def funding_candidates(claim: pd.Series, funding: pd.DataFrame) -> list[Candidate]:
    """Funding rows of the claim's period. A claim that names an instrument (grants,
    the social order, awards) is compared with the rows of that instrument (an
    annual amount: the same quantity; a plan or other kind: another definition)
    and with those whose source names none (another definition: the data cannot
    tell whether it was that instrument); any other claim with the rows whose
    programme shares a content word with the claimed quantity."""
    y0, y1 = _years(claim["refers_to"])
    sub = funding[
        (funding["year_start"] == y0) & (funding["year_end"] == y1) & (funding["currency"] == "KZT")
    ]
    quantity = str(claim["quantity"]).lower()
    named = next((v for k, v in INSTRUMENT_WORDS.items() if k in quantity), None)
    if named is not None:
        sub = sub[sub["instrument"].isin([named, "not stated"])]
    else:
        words = _words(claim["quantity"])
        sub = sub[sub["programme"].map(lambda p: bool(_words(p) & words))]
    unnamed = ", by an instrument the source does not name"
    return [
        Candidate(
            float(r["amount"]),
            "same" if r["kind"] == "annual" and r["instrument"] == named else "definition",
            f"{r['kind']} amount: {r['programme']} ({r['period']})"
            + (unnamed if r["instrument"] == "not stated" else ""),
            sources=_ids(r["source_id"]),
        )
        for _, r in sub.iterrows()
    ]


def _lower_chamber(annual: pd.DataFrame, series: str) -> pd.DataFrame:
    """Kazakhstan's yearly lower-chamber shares in one series, indexed by year."""
    return annual[(annual["iso3"] == "KAZ") & (annual["source_id"] == series)].set_index("year")


def parliament_candidates(
    claim: pd.Series, annual: pd.DataFrame, picked: pd.DataFrame, series: str
) -> list[Candidate]:
    """A claim about "parliament": both chambers in the year (the same quantity),
    the lower chamber in the year (another definition: the usual indicator counts
    only the lower chamber), and the lower chamber in the neighbouring years."""
    (y, _) = _years(claim["refers_to"])
    wdi = _lower_chamber(annual, series)
    name = ANNUAL_NAMES.get(series, series)
    out = []
    if y in wdi.index:
        out.append(
            Candidate(
                float(wdi["women_pct"].loc[y]),
                "definition",
                f"lower chamber {y} ({name})",
                sources=(series,),
            )
        )
    both = P.both_chambers_in_year(picked, wdi["women_pct"], y, annual_source=series)
    if both is not None:
        (pct, desc, ids) = both
        out.insert(0, Candidate(pct, "same", f"both chambers {y} ({desc})", sources=ids))
    for yy in (y - 1, y + 1):
        if yy in wdi.index:
            out.append(
                Candidate(
                    float(wdi["women_pct"].loc[yy]),
                    "year",
                    f"lower chamber {yy} ({name})",
                    sources=(series,),
                )
            )
    return out


def count_notes(
    claim: pd.Series,
    cands: list[Candidate],
    annual: pd.DataFrame,
    picked: pd.DataFrame,
    series: str,
    tol: float,
) -> tuple[str, bool]:
    """The both-chambers share counted the other admissible ways: the lower
    chamber's women as elected instead of read from the annual share (which may
    describe the chamber up to a year late), and its seats as filled where the
    annual share implies seats left vacant. A note for the reason, saying for each
    whether the claim's agreement would change, and whether any would; empty and
    False when every way gives the same share."""
    (y, _) = _years(claim["refers_to"])
    wdi = _lower_chamber(annual, series)["women_pct"]
    main = next((c for c in cands if c.kind == "same"), None)
    if main is None:
        return "", False
    claimed = float(claim["claimed_value"])
    notes, changes = [], False
    ways = (
        ("with the women of the latest election instead", False),
        ("with the seats filled instead of those elected", True),
    )
    seen = {round(main.value, 9)}
    for words, filled in ways:
        alt = P.both_chambers_in_year(picked, wdi, y, from_annual=False, seats_filled=filled)
        if alt is None or round(alt[0], 9) in seen:
            continue
        seen.add(round(alt[0], 9))
        agrees = Candidate(alt[0], "same", "").within(claimed, tol)
        change = "would agree" if agrees else "would not agree"
        if agrees == main.within(claimed, tol):
            change = "agrees too" if agrees else "does not agree either"
        else:
            changes = True
        notes.append(f"; {words} ({alt[1]}) it is {_fmt(alt[0])}, and the claim {change}")
    return "".join(notes), changes


def target_year_candidates(claim: pd.Series, events: pd.DataFrame) -> list[Candidate]:
    """Years of 30% commitments: the year an event sets the target (same), and
    the year by which it is to be met (definition: a target year, not a commitment)."""
    out = []
    for _, e in events[events["event"].str.contains("30%")].iterrows():
        text = e["event"]
        if "NOT verified" in text:
            continue
        out.append(Candidate(float(e["year"]), "same", f"30% commitment made in {e['year']}"))
        for by in re.findall(r"by (\d{4})", text):
            out.append(
                Candidate(
                    float(by),
                    "definition",
                    f"the year by which the {e['year']} commitment was to be met",
                )
            )
    return out


# ------------------------------------------------------------------ all claims
def target_level_candidates(events: pd.DataFrame) -> list[Candidate]:
    """The 30% level of women in decision-making set by a policy event: another
    definition than a claim's (a level set by another instrument, in another year,
    known from second-hand reports), never the commitment the claim names."""
    return [
        Candidate(
            30.0,
            "definition",
            f"the 30% level for decision-making roles set by the strategy of {e['year']}, as "
            "reported second-hand (whether the 2016 decree repeats it is not verified)",
            sources=_ids(e["source_ids"]),
        )
        for _, e in events[events["event"].str.contains("30% women in decision-making")].iterrows()
    ]


NGO_RULE = re.compile(r"\bNGOs?\b|non-governmental|assembl", re.IGNORECASE)
FORUM = re.compile(r"\b(?:Civic|Civil) Forum\b")


def ngo_rules(events: pd.DataFrame, year: int) -> pd.DataFrame:
    """The recorded policy events of `year` about NGOs or assemblies (the rules a
    claim of tightening could rest on), forums aside."""
    if events.empty:
        return events
    about = events["event"].str.contains(NGO_RULE) & ~events["event"].str.contains(FORUM)
    return events[about & (events["year"] == year)]


def civic_forum_candidates(events: pd.DataFrame) -> list[Candidate]:
    """The year of the first Civic (later Civil) Forum among the recorded policy
    events, naming the forums recorded after it."""
    if events.empty:
        return []
    forums = events[events["event"].str.contains(FORUM)].sort_values("date")
    if forums.empty:
        return []
    first = forums.iloc[0]
    later = ", ".join(str(y) for y in forums["year"].iloc[1:])
    return [
        Candidate(
            float(first["year"]),
            "same",
            f"the first Civic Forum recorded, {first['date']} ({first['event_id']})"
            + (f"; later forums recorded in {later}" if later else ""),
            sources=_ids(first["source_ids"]),
        )
    ]


def event_year_candidates(claim: pd.Series, events: pd.DataFrame) -> list[Candidate]:
    """The year of the recorded policy event the claim dates (its `event_id`).

    >>> ev = pd.DataFrame({"event_id": ["E25"], "date": ["2013"], "year": [2013],
    ...                    "event": ["Platform set up"], "source_ids": ["s1"]})
    >>> [(c.value, c.what) for c in event_year_candidates(pd.Series({"event_id": "E25"}), ev)]
    [(2013.0, 'Platform set up (E25, 2013)')]
    """
    hit = events[events["event_id"] == claim.get("event_id")]
    return [
        Candidate(
            float(e["year"]),
            "same",
            f"{e['event']} ({e['event_id']}, {e['date']})",
            sources=_ids(e["source_ids"]),
        )
        for _, e in hit.iterrows()
    ]


def index_fall_reason(
    claim: pd.Series, index: pd.DataFrame, rules: pd.DataFrame | None = None
) -> str:
    """Why a claimed year of tightening cannot be dated by an annual index: the
    rules on NGOs the policy events record for that year (`rules`, as `ngo_rules`
    selects them), what the
    index did that year and the next, to the two decimals the paper prints (its
    third decimal is not read as a change, so small falls are not ranked), and
    where its largest fall came (columns `year`, `value`)."""
    s = index.sort_values("year").set_index("year")["value"].astype(float)
    d = s.diff().dropna()
    y = int(float(claim["claimed_value"]))
    falls = d[d < 0]
    top = int(falls.idxmin())

    def pts(x: float) -> str:  # to two decimals, as the paper prints the index
        return f"{to_decimals(x, 2)}" if to_decimals(x, 2) > 0 else "less than 0.01"

    def change(yy: int) -> str:
        if yy not in d.index:
            return f"has no value for {yy}"
        if d.loc[yy] >= 0:
            was, now = to_decimals(s.loc[yy - 1], 2), to_decimals(s.loc[yy], 2)
            return f"did not fall in {yy} ({was} to {now})"
        largest = " (its largest fall)" if yy == top else ""
        return f"fell by {pts(-d.loc[yy])} in {yy}{largest}"

    largest = "" if top in (y, y + 1) else f", and its largest, {pts(-falls.loc[top])}, in {top}"
    if rules is not None and len(rules):
        said = "; ".join(f"{r.event} ({r.event_id})" for r in rules.itertuples())
        recorded = (
            f"the data record for {y}: {said}, which fits the year but cannot show that the "
            "rules as a whole became stricter"
        )
    else:
        recorded = f"the policy events in the data record no rule on NGOs or assemblies for {y}"
    # falls of at least 0.01 in the stored values (the third decimal is not read as a change)
    shown = int((falls <= -0.01 + 1e-9).sum())
    return (
        f"{recorded}; of the "
        f"{shown} falls of 0.01 or more of the V-Dem core civil society index, from "
        f"{int(d.index.min())} to "
        f"{int(d.index.max())}, it {change(y)} and {change(y + 1).removeprefix('has ')}{largest}; "
        "an annual expert index can show when civic space changed, not which law changed it"
    )


def _ids(value: object) -> tuple[str, ...]:
    """Source ids of a row's source-id cell (one id, or several joined by ';')."""
    if not isinstance(value, str):  # (a missing cell: NaN or None)
        return ()
    return tuple(x for x in value.split(";") if x)


def _shown(c: Candidate) -> str:
    """A candidate as the reason names it: a bound by its words, a value with it."""
    return c.what if c.bound else f"{c.what} = {_fmt(c.value)}"


def latest_volunteering(survey_results: pd.DataFrame) -> pd.Series:
    """The latest CAF World Giving Index row of volunteering in the past month."""
    caf = survey_results[survey_results["question_id"] == "CAF_volunteered_time"]
    return caf.sort_values("year").iloc[-1]


def participation_reason(last: pd.Series) -> str:
    """Why a count of participants cannot be checked, with the nearest measure, the
    `latest_volunteering` row (a share of respondents, not scaled to a count of people)."""
    return (
        "no count of people joining such projects in the data; the nearest measure, volunteering "
        f"in the past month, was reported by {last['percent']:g}% of respondents in "
        f"{int(last['year'])} (CAF World Giving Index, national samples), but volunteering is not "
        "the activism the article means, and a share of respondents is not a count of joiners"
    )


CHECKS = (
    "ngo_count",
    "fold",
    "funding",
    "parliament_share",
    "target_year",
    "target_level",
    "index_fall_year",
    "civic_forum_year",
    "event_year",
    "survey_internal",
    "participation",
    "reasoned",
    "none",
)
EVENT_CHECKS = ("civic_forum_year", "event_year")
"""The checks that compare a claimed year with a recorded policy event's."""


def check_all(
    claims: pd.DataFrame,
    *,
    counts: pd.DataFrame,
    funding: pd.DataFrame,
    annual: pd.DataFrame,
    picked: pd.DataFrame,
    events: pd.DataFrame,
    annual_series: str,
    survey_note: str,
    growth: pd.DataFrame | None = None,
    index: pd.DataFrame | None = None,
    survey_results: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Check every claim; return one row per claim with verdict, found value,
    difference and reason. The `check` column of the claims table says how each
    claim is checked (one of CHECKS; for `none`, `how_to_check` says why it
    cannot be). Count claims are checked first, so that a ratio claim can join
    the rows its own article's count claims matched."""
    rows: dict[Any, dict] = {}
    matched: dict[Any, pd.Series] = {}
    kind = claims["check"] if "check" in claims else claims["unit"].map(_check_from_unit)
    order = sorted(claims.index, key=lambda i: kind[i] == "fold")
    for i in order:
        c = claims.loc[i]
        how = kind[i]
        claimed = float(c["claimed_value"])
        tol = float(c["tolerance"]) if "tolerance" in c else tolerance(c["claimed_value"])
        reason_if_none = "no comparable value in the data"
        alternative, count_matters = "", False  # (parliament shares: other counts)
        cands: list[Candidate] = []
        read: set[str] = set()  # source ids of rows a reason without candidates rests on
        if how == "ngo_count":
            cands = ngo_count_candidates(c, counts)
        elif how == "fold":
            mine = [
                matched[j]
                for j in matched
                if claims.loc[j, "article_source_id"] == c["article_source_id"]
            ]
            mine = sorted(mine, key=lambda r: r["year"])
            reason_if_none = "the article's own counts could not both be found in the data"
            if len(mine) >= 2 and mine[0]["series"] != mine[-1]["series"]:
                # a ratio of counts of two definitions is the growth of neither
                reason_if_none = fold_across_series_reason(mine[0], mine[-1], growth)
                read = {i for r in mine for i in _ids(r["source_id"])}
                if growth is not None:
                    read |= {i for v in growth["source_id"] for i in _ids(v)}
            else:
                cands = fold_candidates(c, mine[0], mine[-1]) if len(mine) >= 2 else []
                if growth is not None:
                    cands += official_fold_candidates(growth)
        elif how == "funding":
            cands = funding_candidates(c, funding)
            reason_if_none = (
                f"no funding figure for this programme in {c['refers_to']} "
                "apart from the article itself"
            )
        elif how == "parliament_share":
            cands = parliament_candidates(c, annual, picked, annual_series)
            alternative, count_matters = count_notes(c, cands, annual, picked, annual_series, tol)
        elif how == "target_year":
            cands = target_year_candidates(c, events)
        elif how == "target_level":
            cands = target_level_candidates(events)
        elif how == "index_fall_year" and index is not None:
            rules = ngo_rules(events, int(float(c["claimed_value"])))
            reason_if_none = index_fall_reason(c, index, rules)
            read = {i for v in index["source_id"] for i in _ids(v)}
            read |= {i for v in rules.get("source_ids", []) for i in _ids(v)}
        elif how == "civic_forum_year":
            cands = civic_forum_candidates(events)
            reason_if_none = "the policy events in the data record no Civic Forum"
        elif how == "event_year":
            cands = event_year_candidates(c, events)
            reason_if_none = f"the policy event {c.get('event_id')} is not in the data"
        elif how == "survey_internal":
            reason_if_none = survey_note
        elif how == "participation" and survey_results is not None:
            last = latest_volunteering(survey_results)
            reason_if_none = participation_reason(last)
            read = set(_ids(last["source_id"]))
        else:
            reason_if_none = str(c["how_to_check"])
        v = verdict(claimed, cands, tol, reason_if_none)
        if how == "event_year" and cands:  # (what the claim says of the event is not data)
            v = replace(v, reason=v.reason + "; only the year is compared, not what the claim says")
        # an agreement that another admissible reading would undo: the usual
        # lower-chamber indicator, or another count of the seats or women; for an
        # NGO count, another definition's value in the data (below)
        fragile = False
        if how == "parliament_share":
            v = replace(v, reason=v.reason + alternative)
            lower_agrees = any(x.kind == "definition" and x.within(claimed, tol) for x in cands)
            fragile = v.verdict == CONSISTENT and (count_matters or not lower_agrees)
        # the other definitions' values (a bound among them, which matches nothing)
        unmatched = [
            x for x in cands if x.kind == "definition" and (x.bound or not x.within(claimed, tol))
        ]
        if how == "ngo_count":  # another meaning of the claim's word ('active') that disagrees
            fragile = v.verdict == CONSISTENT and bool(unmatched)
        if unmatched and v.verdict in (CONSISTENT, DIFFERENT):
            also = "; ".join(_shown(x) for x in unmatched)
            v = replace(v, reason=f"{v.reason}; also in the data, not matching: {also}")
        hit = next((x for x in cands if x.ref is not None and abs(x.value - claimed) <= tol), None)
        if hit is not None and hit.ref is not None:
            matched[i] = hit.ref
        rows[i] = {
            "claim_id": c["claim_id"],
            "check": how,
            "quantity": c["quantity"],
            "claimed": claimed,
            "unit": c["unit"],
            "tolerance": tol,
            "found": v.found,
            "found_bound": v.bound,
            "difference": v.difference,
            "verdict": v.verdict,
            "fragile": fragile,
            "reason": v.reason,
            "article_source_id": c["article_source_id"],
            "data_source_ids": sorted({i for x in cands for i in x.sources} | read),
        }
    return pd.DataFrame([rows[i] for i in claims.index])


def _check_from_unit(unit: str) -> str:
    return {
        "organisations": "ngo_count",
        "ratio": "fold",
        "KZT": "funding",
        "percent": "parliament_share",
        "year": "target_year",
    }.get(unit, "none")


# ---------------------------------------------------------------- recording
RAW_FILES = {
    "ngo_count": ["ngo_counts.csv"],
    "fold": ["ngo_counts.csv", "ngo_growth_statements.csv"],
    "funding": ["ngo_state_funding.csv"],
    "target_year": ["policy_events.csv"],
    "target_level": ["policy_events.csv"],
    "index_fall_year": ["civic_space_scores.csv", "policy_events.csv"],
    "civic_forum_year": ["policy_events.csv"],
    "event_year": ["policy_events.csv"],
    "parliament_share": ["women_parliament_annual.csv", "women_parliament_elections.csv"],
    "survey_internal": ["survey_results.csv"],
    "participation": ["survey_results.csv"],
    "reasoned": ["ngo_counts.csv", "ngo_state_funding.csv", "policy_events.csv"],
    "none": [],
}
"""The raw files each kind of check (the `check` column) reads, besides claims.csv."""


def cited_ids(checked_row: Any, known: set[str] | None = None) -> list[str]:
    """The source ids behind one checked claim (a row of `check_all`'s table):
    the article, the sources of the data values its reason compares it with, and
    every data source id the reason names (`known`: the package's source ids by
    default)."""
    known = data.source_ids() if known is None else known
    words = set(re.findall(r"[A-Za-z0-9_]+", str(checked_row.reason)))
    used = set(getattr(checked_row, "data_source_ids", ()) or ()) & known
    return sorted({checked_row.article_source_id} | used | (words & known))


def results_of(checked_row: Any, known: set[str] | None = None) -> dict[str, Result]:
    """The results of one checked claim (a row of `check_all`'s table, e.g. from
    `itertuples()`), keyed `claim_<id>_<what>`: verdict and reason always; the
    value claimed, the value found and the difference where they exist (found
    and difference at the claim's own precision). Each names its raw files and
    source ids (`cited_ids`); the claimed value cites the article only.

    >>> for r in checked.itertuples():
    ...     for key, result in C.results_of(r).items():
    ...         reg.record(key, result)
    """
    r = checked_row
    ids = tuple(cited_ids(r, known))
    src = ("claims.csv", *RAW_FILES[r.check])
    prov: dict[str, Any] = {"sources": src, "source_ids": ids}
    out = {
        f"claim_{r.claim_id}_verdict": Result(
            r.verdict,
            "verdict",
            kind="text",
            description=f"verdict on claim {r.claim_id} ({r.quantity})",
            **prov,
        ),
        f"claim_{r.claim_id}_reason": Result(
            r.reason, "reason", kind="text", description=f"why: claim {r.claim_id}", **prov
        ),
    }
    if pd.notna(r.claimed):
        out[f"claim_{r.claim_id}_claimed"] = Result(
            r.claimed,
            r.unit,
            kind="count",
            sources=("claims.csv",),
            source_ids=(r.article_source_id,),
            description=f"value claimed in {r.article_source_id}",
        )
    dp = decimals_of(r.tolerance)  # the claim's own precision
    if pd.notna(r.found):
        bound = r.found_bound if isinstance(r.found_bound, str) else None
        what = f"{bound} bound" if bound else "value"
        out[f"claim_{r.claim_id}_found"] = Result(
            round(float(r.found), dp),
            r.unit,
            kind="estimate",
            decimals=dp,
            description=f"{what} found in the data for claim {r.claim_id}",
            **prov,
        )
    if pd.notna(r.found) and pd.notna(r.difference):
        out[f"claim_{r.claim_id}_difference"] = Result(
            round(float(r.difference), dp),
            r.unit,
            kind="estimate",
            decimals=dp,
            description=f"claimed minus found, claim {r.claim_id}",
            **prov,
        )
    return out


def shown_value(v: Any, tol: float, bound: str | None = None, difference: bool = False) -> Any:
    """A found value or difference at the claim's own precision, for the table:
    None when missing (and no difference from a bound); a bound as 'more than N'
    (lower) or 'at most N' (upper)."""
    if pd.isna(v) or (bound and difference):
        return None
    v = round(float(v), decimals_of(tol))
    return f"{BOUND_WORDS[bound]} {v:,g}" if bound else v


def shown(checked: pd.DataFrame, claims: pd.DataFrame) -> pd.DataFrame:
    """The claims table the paper prints: one row per checked claim (`check_all`'s
    table) with the claim as stated (from the processed `claims` table), values
    at the claim's own precision and unit labels."""
    lb = [b if isinstance(b, str) else None for b in checked["found_bound"]]
    table = checked.assign(
        found=[
            shown_value(f, t, b)
            for f, t, b in zip(checked["found"], checked["tolerance"], lb, strict=True)
        ],
        difference=[
            shown_value(f, t, b, difference=True)
            for f, t, b in zip(checked["difference"], checked["tolerance"], lb, strict=True)
        ],
        unit=checked["unit"].map(UNIT_LABELS),
    )
    return table.merge(claims[["claim_id", "claim_as_stated"]], on="claim_id").rename(
        columns={"article_source_id": "source_id"}
    )[
        [
            "claim_id",
            "source_id",
            "claim_as_stated",
            "quantity",
            "claimed",
            "unit",
            "found",
            "difference",
            "verdict",
            "reason",
        ]
    ]
