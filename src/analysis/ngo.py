"""NGO sector and civic space: counts, rates, growth, and the civic-space indices.

Pure functions on the processed tables as `processed.read` returns them
(`ngo_counts`, `ngo_register_status`, `ngo_activity_areas`, `ngo_state_funding`,
`civic_space_scores`).
Units: counts are organisations; rates are organisations per `per` people;
growth rates are fractions per year; index values are in the index's own points.
Frames they return keep the provenance of their input (`processed.derived`),
so their rows can be passed to `Registry.record`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

from analysis import processed
from analysis.results import Result

BOUND_ORDER = {"point": 0, "approximate": 1, "lower": 2}
PROVENANCE_ORDER = {
    "official table": 0,
    "official statement": 1,
    "secondary report": 2,
    "secondary literature": 3,
}


def reference_counts(counts: pd.DataFrame, year: int) -> pd.DataFrame:
    """The ministry register's exact registered and active counts of `year` (the
    parameter `reference_year`), indexed by status; a year without both is refused
    naming the key and the years that have them."""
    reg = counts[(counts["series"] == "ministry_register") & (counts["bound"] == "point")]
    statuses = reg.groupby("year")["status"].agg(set)
    both = {int(str(y)) for y, s in statuses.items() if {"registered", "active"} <= s}
    if year not in both:
        from analysis.params import ParamsError

        raise ParamsError(
            f"key 'ngo.reference_year': {year} has no exact registered and active count in "
            f"the ministry register (years with both: {', '.join(map(str, sorted(both)))})"
        )
    return reg[reg["year"] == year].set_index("status")


QUALIFIERS = {"lower": "more than", "approximate": "about"}
"""The words printed before a count with that `bound` (a point count has none)."""


def qualifier(row: pd.Series) -> str | None:
    """The words the paper prints before a count (`Registry.record`'s `qualifier`),
    from its bound: "more than" a lower bound, "about" an approximate figure."""
    return QUALIFIERS.get(str(row["bound"]))


def when(row: pd.Series) -> str:
    """A figure's year in words: "about 2024" where the year is inferred
    (`year_certain` false), else the year."""
    certain = bool(row.get("year_certain", True))
    return str(int(row["year"])) if certain else f"about {int(row['year'])}"


def one_per_year(counts: pd.DataFrame, series: str, status: str) -> pd.DataFrame:
    """One count per year of one series and status, from the `ngo_counts` table.

    Rows flagged `quality == "implausible"` are left out. Where several sources
    report the same year, an official figure wins (official table, then official
    statement, then a secondary report, then secondary literature); among equals
    a figure stated without qualifier is preferred to an approximate one, and
    that to a lower bound; ties go to the source id that sorts first. Figures that
    tie in all of these and give the same count are one figure stated at several
    dates: `first_month` and `last_month` span all their `date_window`s.
    """
    sub = counts[
        (counts["series"] == series) & (counts["status"] == status) & (counts["quality"] == "ok")
    ].copy()
    if sub.empty:
        return sub
    sub["_p"] = sub["provenance"].map(PROVENANCE_ORDER)
    sub["_b"] = sub["bound"].map(BOUND_ORDER)
    none, true = pd.Series(None, index=sub.index), pd.Series(True, index=sub.index)
    as_of = sub["as_of"] if "as_of" in sub.columns else none
    certain = sub["year_certain"] if "year_certain" in sub.columns else true
    after = sub["not_before"] if "not_before" in sub.columns else none
    windows = [
        date_window(a, int(y), bool(c), status, nb)
        for a, y, c, nb in zip(as_of, sub["year"], certain, after, strict=True)
    ]
    sub["first_month"] = [w[0] for w in windows]
    sub["last_month"] = [w[1] for w in windows]
    tie = ["year", "_p", "_b", "count"]
    sub["first_month"] = sub.groupby(tie)["first_month"].transform("min")
    sub["last_month"] = sub.groupby(tie)["last_month"].transform("max")
    sub = sub.sort_values(["year", "_p", "_b", "source_id"], kind="stable")
    return sub.drop_duplicates("year").drop(columns=["_p", "_b"]).reset_index(drop=True)


def active_share(counts: pd.DataFrame, series: str = "ministry_register") -> pd.DataFrame:
    """Active / registered, where one source gives both for the same year.

    `indicative` is True when either number is a lower bound or approximate
    (a ratio of two bounds is neither a bound nor an estimate of the ratio).
    """
    sub = counts[(counts["series"] == series) & (counts["quality"] == "ok")]
    wide = sub.pivot_table(
        index=["year", "source_id"], columns="status", values="count", aggfunc="first"
    )
    bounds = sub.pivot_table(
        index=["year", "source_id"], columns="status", values="bound", aggfunc="first"
    )
    both = wide.dropna(subset=["registered", "active"]).copy()
    both["active_share"] = both["active"].astype(float) / both["registered"].astype(float)
    both["indicative"] = (bounds.loc[both.index, ["registered", "active"]] != "point").any(axis=1)
    out = both.reset_index()[
        ["year", "source_id", "registered", "active", "active_share", "indicative"]
    ]
    return processed.derived(out, counts)


def growth_range(per_year: pd.DataFrame, min_span: int) -> pd.DataFrame:
    """Compound annual growth between every pair of published endpoints.

    `per_year` is one count per year of one series and status, as returned by
    `one_per_year` (the raw `ngo_counts` table mixes series, statuses and
    sources: a year given twice is refused). A figure is dated to its month where
    its `as_of` gives one date to the month or day, else only to its year
    (`date_window`), so the span of a pair lies between `shortest_years` and
    `longest_years` (`start_when` and `end_when` give the years in words, `when`).
    Every pair at least `min_span` calendar years apart is
    returned; it is `counted` if even its shortest span is at least `min_span`
    years. `rate_min` and `rate_max` are the rates (end / start) ** (1 / years) - 1,
    as fractions per year, over the longest and the shortest span (the other way
    round for a fall), and `reads_as` says what they can say given the bounds of the
    pair's ends (`reading`). No interval: the counts are a census of a register,
    stated in rounded figures, not a sample. The spread of the rates over the
    endpoints and their dates is the honest measure of uncertainty.
    ValueError if no pair is counted.
    """
    _one_per_year_check(per_year, "growth_range")
    rows = []
    data = per_year.sort_values("year").reset_index(drop=True)
    for i in range(len(data)):
        a = data.iloc[i]
        a_first, a_last = _window(a)
        for _, b in data.iloc[i + 1 :].iterrows():
            span = int(b["year"]) - int(a["year"])
            if span < min_span:
                continue
            b_first, b_last = _window(b)
            shortest, longest = (b_first - a_last) / 12, (b_last - a_first) / 12
            rates = [_annual(a["count"], b["count"], years) for years in (shortest, longest)]
            rows.append(
                {
                    "start_year": int(a["year"]),
                    "start": int(a["count"]),
                    "start_bound": a["bound"],
                    "start_source": a["source_id"],
                    "end_year": int(b["year"]),
                    "end": int(b["count"]),
                    "end_bound": b["bound"],
                    "end_source": b["source_id"],
                    "years": span,
                    "start_when": when(a),
                    "end_when": when(b),
                    "shortest_years": shortest,
                    "longest_years": longest,
                    "counted": shortest >= min_span,
                    "rate_min": min(rates),
                    "rate_max": max(rates),
                    "reads_as": reading(a["bound"], b["bound"]),
                }
            )
    if not any(r["counted"] for r in rows):
        raise ValueError(f"no pair of figures at least {min_span} years apart")
    return pd.DataFrame(rows)


def pairs_text(pairs: pd.DataFrame) -> str:
    """Pairs of `growth_range` in words: their years, shortest span and what their
    rates say (an estimate, a limit, or nothing, as in `reading`).

    >>> pairs_text(pd.DataFrame({"start_when": ["2017"], "end_when": ["2023"],
    ...     "shortest_years": [65 / 12], "longest_years": [65 / 12], "reads_as": ["estimate"],
    ...     "rate_min": [0.0317], "rate_max": [0.0317]}))
    '2017 to 2023, 5.4 years apart, 3.2% a year'
    """

    def says(r: pd.Series) -> str:
        if (limit := _limit_words(r)) is not None:
            return f"{limit}% a year"
        if r["reads_as"] == "no information":
            return "no rate (lower bounds at both ends)"
        low, high = f"{100 * r['rate_min']:.1f}%", f"{100 * r['rate_max']:.1f}%"
        return f"{low} a year" if low == high else f"{low} to {high} a year"

    return "; ".join(
        f"{r['start_when']} to {r['end_when']}, "
        + ("" if r["shortest_years"] == r["longest_years"] else "at least ")
        + f"{_down(r['shortest_years']):.1f} years apart, {says(r)}"
        for _, r in pairs.iterrows()
    )


def same_figures(counts: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The rows of `counts` that `one_per_year` merged into the `chosen` rows: the
    same series, status, year, count, bound, provenance and quality (one figure
    stated by several sources, dated by all of them). A selection of `counts`, so
    that a result recorded from it cites every source behind the figures."""
    cols = ["series", "status", "year", "count", "bound", "provenance", "quality"]
    keys = set(chosen[cols].itertuples(index=False, name=None))
    return counts[[k in keys for k in counts[cols].itertuples(index=False, name=None)]]


def pairs_table(rates: pd.DataFrame, min_span: int) -> pd.DataFrame:
    """Every pair of `growth_range` as the paper's table prints it: its years (in
    words, `when`), its two counts ("more than" a lower bound, "about" an
    approximate one), its span ("5.4", or "5.2-8.1" between its shortest and
    longest), its rates in percent a year over those spans, what they say, and
    whether the pair counts at `min_span` years."""

    def count(n: int, bound: str) -> str:
        word = QUALIFIERS.get(str(bound))
        return f"{word} {n:,}" if word else f"{n:,}"

    def between(lo: float, hi: float, fmt: str) -> str:
        a, b = format(lo, fmt), format(hi, fmt)
        return a if a == b else f"{a}\u2013{b}"

    def says(r: pd.Series) -> str:
        limit = _limit_words(r)
        return limit or ("nothing" if r["reads_as"] == "no information" else "an estimate")

    rows = [r for _, r in rates.iterrows()]
    return pd.DataFrame(
        {
            "pair": [f"{r['start_when']} \u2192 {r['end_when']}" for r in rows],
            "counts": [
                f"{count(r['start'], r['start_bound'])} \u2192 {count(r['end'], r['end_bound'])}"
                for r in rows
            ],
            "span": [
                f"{r['shortest_years']:.1f}"  # dated to the month at both ends: one span
                if r["shortest_years"] == r["longest_years"]
                else between(_down(r["shortest_years"]), _up(r["longest_years"]), ".1f")
                for r in rows
            ],
            "rate": [between(100 * r["rate_min"], 100 * r["rate_max"], ".1f") for r in rows],
            "reads_as": [says(r) for r in rows],
            "counts_at_min": ["yes" if r["shortest_years"] >= min_span else "no" for r in rows],
        }
    )


def _limit_words(r: pd.Series) -> str | None:
    """A `growth_range` row that is a limit, in words, in percent a year over the span
    that makes it widest ("at most 2.9", "at least 1.9"); None for an estimate or
    for nothing."""
    if r["reads_as"] == "upper limit":
        return f"at most {100 * r['rate_max']:.1f}"
    if r["reads_as"] == "lower limit":
        return f"at least {100 * r['rate_min']:.1f}"
    return None


def _down(years: float) -> float:
    """A shortest span to one decimal, rounded down (it is a minimum)."""
    return math.floor(10 * years + 1e-9) / 10


def _up(years: float) -> float:
    """A longest span to one decimal, rounded up (it is a maximum)."""
    return math.ceil(10 * years - 1e-9) / 10


def _annual(start: float, end: float, years: float) -> float:
    """Compound annual growth from `start` to `end` over `years`."""
    return (float(end) / float(start)) ** (1 / years) - 1


def date_window(
    as_of: object,
    year: int,
    year_certain: bool = True,
    status: str | None = None,
    not_before: object = None,
) -> tuple[int, int]:
    """The first and last month (counted as year * 12 + month - 1) that a figure
    of `year` can describe: any month from the year before to the year after where
    its year is inferred (`year_certain` false: an undated source); else its month
    where `as_of` gives one date to the month or day ("2017-11-21", "2023-04
    (...)"), or one date per status and `status` names one of them ("2020-04
    (active); 2020-09-17 (registered)"); else any month of `year` (only a year,
    part of a year, or more than one date). A `not_before` month ("2016-09": the
    source bounds an inferred date from below) moves the window's start to it.

    >>> date_window("2017-11-21", 2017), date_window("2016 (Sep-Dec)", 2016)
    ((24214, 24214), (24192, 24203))
    >>> date_window("c. 2024 (article undated)", 2024, year_certain=False)
    (24276, 24311)
    >>> date_window("2020-04 (active); 2020-09-17 (registered)", 2020, status="registered")
    (24248, 24248)
    >>> date_window("2016 (undated)", 2016, year_certain=False, not_before="2016-09")
    (24200, 24215)
    """
    if not year_certain:
        first, last = (year - 1) * 12, (year + 1) * 12 + 11
    else:
        month = _month(as_of, status)
        first, last = (month, month) if month is not None else (year * 12, year * 12 + 11)
    bound = _month(not_before)
    return (max(first, bound), last) if bound is not None and bound <= last else (first, last)


def _window(row: pd.Series) -> tuple[int, int]:
    """A `one_per_year` row's window (its `first_month`/`last_month`), or `date_window`."""
    if pd.notna(row.get("first_month")) and pd.notna(row.get("last_month")):
        return int(row["first_month"]), int(row["last_month"])
    return date_window(
        row.get("as_of"),
        int(row["year"]),
        bool(row.get("year_certain", True)),
        row.get("status"),
        row.get("not_before"),
    )


_DATE = r"(\d{4})-(\d{2})(?:-\d{2})?"


def _month(as_of: object, status: str | None = None) -> int | None:
    if not isinstance(as_of, str):
        return None
    parts = [p.strip() for p in as_of.split(";")]
    if len(parts) > 1:  # one date per status: the one labelled with this row's status
        for p in parts:
            m = re.fullmatch(_DATE + r" \(([a-z]+)\)", p)
            if m is not None and status is not None and m.group(3) == status:
                return int(m.group(1)) * 12 + int(m.group(2)) - 1
        return None
    m = re.fullmatch(_DATE + r"(?: \(([^()]*)\))?", as_of.strip())
    if m is None or (m.group(3) and re.search(r"\d{4}-\d{2}", m.group(3))):
        return None
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


def reading(start_bound: str, end_bound: str) -> str:
    """What a growth rate between two counts says, given their bounds.

    A count stated as a lower bound ("more than 20,000") may be larger. At the
    start, a larger count means slower growth, so the rate is an upper limit
    ("at most"); at the end, faster growth, so a lower limit ("at least"); at
    both ends the two pull apart and the rate says nothing. Otherwise it is an
    estimate (an approximate one where either end is approximate: the bound
    columns of `growth_range` say which).

    >>> reading("lower", "point"), reading("point", "lower"), reading("lower", "lower")
    ('upper limit', 'lower limit', 'no information')
    """
    start, end = start_bound == "lower", end_bound == "lower"
    if start and end:
        return "no information"
    if start:
        return "upper limit"
    if end:
        return "lower limit"
    return "estimate"


def _one_per_year_check(per_year: pd.DataFrame, who: str) -> None:
    dup = per_year["year"][per_year["year"].duplicated()]
    if len(dup):
        raise ValueError(
            f"{who} needs one count per year (ngo.one_per_year(counts, series, status)); "
            f"years given more than once: {sorted(int(y) for y in set(dup))}"
        )


def fold_change(start: float, end: float) -> float:
    """end / start (a ratio of two counts; the start must be positive)."""
    if start <= 0:
        raise ValueError("fold change needs a positive start value")
    return float(end) / float(start)


@dataclass(frozen=True)
class Statuses:
    """What the register's "active" is, from one page that gives all its statuses."""

    registered: int
    active: int
    set_aside: dict[str, int]  # the other statuses, as the page labels them
    reported: int  # NGOs that reported to the NGO database on time
    page: pd.DataFrame = field(compare=False, repr=False)  # its rows of `ngo_counts`

    @property
    def residual(self) -> int:
        """registered - active - the set-aside ones (0 if the parts add up)"""
        return self.registered - self.active - sum(self.set_aside.values())

    @property
    def reported_of_active_pct(self) -> float:
        """the on-time reporting count as a share of the active count"""
        return 100 * self.reported / self.active


def register_statuses(counts: pd.DataFrame, statuses: pd.DataFrame) -> Statuses:
    """The registered and active counts of the page that `statuses` (the processed
    `ngo_register_status` table: one source) comes from, the statuses it sets
    aside, and the on-time reporting count. ValueError if the table has more than
    one source or the page's exact counts are not in `counts`."""
    sources = set(statuses["source_id"])
    if len(sources) != 1:
        raise ValueError(f"ngo_register_status should come from one page, not {sorted(sources)}")
    page = counts[
        counts["source_id"].isin(sources)
        & (counts["series"] == "ministry_register")
        & (counts["bound"] == "point")
    ]
    by_status = page.set_index("status")["count"]
    if not {"registered", "active"} <= set(by_status.index) or by_status.index.duplicated().any():
        raise ValueError(f"ngo_counts lacks one exact registered and active count from {sources}")
    reporting = statuses["status"] == "reported to the NGO database on time"
    others = statuses.loc[~reporting].set_index("status")["count"]
    return Statuses(
        int(by_status["registered"]),
        int(by_status["active"]),
        {str(k): int(v) for k, v in others.items()},
        int(statuses.loc[reporting, "count"].sum()),
        page,
    )


def areas_summary(areas: pd.DataFrame) -> pd.DataFrame:
    """Total of the published shares per classification (a total below 100 means
    categories are missing from the source, not an error of ours).

    areas: the processed `ngo_activity_areas` table (columns `classification`,
    `share_pct`)."""
    return areas.groupby("classification", as_index=False).agg(total_pct=("share_pct", "sum"))


SCALES = {"billion KZT": 1e9, "million KZT": 1e6, "KZT": 1.0}


def amount(funding: pd.DataFrame, funding_id: str, unit: str = "billion KZT") -> Result:
    """One published amount of the processed `ngo_state_funding` table, in `unit`
    (a key of SCALES), ready to record: an exact published figure (kind "count"),
    with the row it came from as provenance.

    >>> reg.record("funding_grants_2016_kzt_m", ngo.amount(funding, "F06", "million KZT"),
    ...            description="state grants for NGOs in 2016 (outturn)")
    """
    rows = funding[funding["funding_id"] == funding_id]
    if len(rows) != 1:
        raise ValueError(f"funding_id {funding_id!r}: {len(rows)} rows, expected one")
    row = rows.iloc[0]
    return Result(float(row["amount"]) / SCALES[unit], unit=unit, kind="count", of=(row,))


# ---------------------------------------------------------------- civic space
@dataclass(frozen=True)
class IndexProfile:
    """What an index series did, described without a model (points of the index)."""

    first_year: int
    first: float
    peak_year: int  # first year at the maximum
    peak: float
    step_year: int  # year of the largest one-year fall
    step: float  # that fall (negative)
    low_year: int  # first year at the minimum
    low: float
    last_year: int
    last: float
    low_years: tuple[int, ...] = ()  # the years at the minimum as shown (`decimals`)
    peak_years: tuple[int, ...] = ()  # the years at the maximum as shown

    def span(self, years: tuple[int, ...]) -> str:
        """Years in words: "2017", "2016\u20132018" (consecutive) or "2016, 2018"."""
        ys = sorted(years)
        if len(ys) > 1 and ys == list(range(ys[0], ys[-1] + 1)):
            return f"{ys[0]}\u2013{ys[-1]}"
        return ", ".join(map(str, ys))


def shown(value: float, decimals: int) -> Decimal:
    """A published value as printed to `decimals` (half up, from its decimal form:
    0.315 is 0.32, where binary rounding gives 0.31)."""
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP)


def index_profile(years, values, decimals: int = 2) -> IndexProfile:
    """Peak, largest one-year fall, minimum and latest value of an annual index.

    years, values: one index's years and values (e.g. the `year` and `value`
    columns of `civic_space_scores` for one `index_id`; a year given twice is
    refused). A level series with a step and a U-shape is not a line: no trend is fitted,
    and no interval is given (consecutive years of an expert-coded index are
    strongly autocorrelated, so an OLS interval would be far too narrow).
    `low_years` and `peak_years` are the years whose value, to `decimals` (the
    precision the text prints), equals the minimum or maximum: a difference in the
    third decimal of an expert-coded index is not read as a lower or higher year.
    """
    s = pd.Series(np.asarray(values, dtype=float), index=np.asarray(years, dtype=int)).sort_index()
    if s.index.duplicated().any():
        raise ValueError(
            "index_profile needs one value per year: select one index of civic_space_scores "
            "(scores.query('index_id == ...'))"
        )
    if len(s) < 3:
        raise ValueError("an index profile needs at least 3 years")
    diff = s.diff().dropna()
    step_year = int(diff.idxmin())
    return IndexProfile(
        first_year=int(s.index[0]),
        first=float(s.iloc[0]),
        peak_year=int(s.idxmax()),
        peak=float(s.max()),
        step_year=step_year,
        step=float(diff.loc[step_year]),
        low_year=int(s.idxmin()),
        low=float(s.min()),
        last_year=int(s.index[-1]),
        last=float(s.iloc[-1]),
        low_years=_years_at(s, s.min(), decimals),
        peak_years=_years_at(s, s.max(), decimals),
    )


def _years_at(s: pd.Series, value: float, decimals: int) -> tuple[int, ...]:
    """The years of `s` whose value, shown to `decimals`, is `value` shown so."""
    return tuple(int(str(y)) for y, v in s.items() if shown(v, decimals) == shown(value, decimals))


def common_years(counts_by_year: pd.DataFrame, index_by_year: pd.DataFrame) -> pd.DataFrame:
    """The years with both a count and an index value, side by side (columns `year`,
    `count`, `bound`, `value`).

    No correlation is computed from them: over a handful of years, with counts
    stated as lower bounds (their order by size unknown) and series that both drift
    upwards, a rank correlation describes the drift, not a link.

    counts_by_year: one count per year (`one_per_year`; a year given twice is
    refused); index_by_year: one index's rows of `civic_space_scores`."""
    _one_per_year_check(counts_by_year, "common_years")
    _one_per_year_check(index_by_year, "common_years (index)")
    both = counts_by_year[["year", "count", "bound"]].merge(
        index_by_year[["year", "value"]], on="year"
    )
    return both.reset_index(drop=True)
