"""Public attitudes: survey percentages with honest uncertainty.

Survey percentages are weighted and rounded and the sources print no counts.
Only a probability sample whose producer publishes its design, with a stated n
that is the item's base, gets an interval: a Wilson interval from the count
round(p·n), labelled approximate. A sample only described as representative
(quotas, an unpublished design) has no sampling model, and no interval.

The functions take the processed `survey_results` and `surveys` tables as
`processed.read` returns them; `with_intervals` keeps their provenance, and
`item` returns one published percentage as a `Result` ready to record.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from analysis import processed
from analysis.results import Result


def wilson(count: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion (fractions, 0-1)."""
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(count, n, alpha=1 - confidence, method="wilson")
    return float(lo), float(hi)


# the one sampling class with a sampling model to compute an interval from: a
# probability sample whose design its producer publishes. A sample the producer only
# calls "representative" (quotas, an unpublished design) gets none.
INTERVAL_SAMPLING = "probability sample, design stated"


def is_share(results: pd.DataFrame, no_interval_questions: list[str]) -> pd.Series:
    """Whether each published figure is a percentage of respondents to one question:
    not an index or a mean (the items in `no_interval_questions`, matched by prefix)."""
    prefixes = tuple(no_interval_questions)
    return (
        ~results["question_id"].astype(str).str.startswith(prefixes)
        if prefixes
        else (pd.Series(True, index=results.index))
    )


def sample_base(results: pd.DataFrame, surveys: pd.DataFrame) -> pd.Series:
    """What each figure's survey says of the item's sample size: "stated" (a number
    that is the item's base), "lower bound" (stated as 'more than n'), "not this
    item's base" (the question was not asked of everyone) or "not stated"."""
    sv = surveys.set_index("survey_id") if "survey_id" in surveys.columns else surveys
    lower = results["survey_id"].map(sv["n_is_lower_bound"].astype(bool))
    base = pd.Series("stated", index=results.index)
    base[lower] = "lower bound"
    base[~results["n_applies"].astype(bool)] = "not this item's base"
    base[results["n"].isna()] = "not stated"
    return base


def with_intervals(
    results: pd.DataFrame,
    surveys: pd.DataFrame,
    confidence: float,
    no_interval_questions: list[str],
) -> pd.DataFrame:
    """Add approximate counts and Wilson intervals (percent) where a sampling model holds.

    `results` is the `survey_results` table and `surveys` the `surveys` table
    (indexed by survey_id or with a survey_id column). An interval needs all of:
    a probability sample whose design the source states (INTERVAL_SAMPLING: not
    one it only calls representative, not landline-only, not non-probability, not
    undescribed), a stated n that is the base of the item
    (`n_applies`), a percentage stated without qualifier, and an item that is a
    share of respondents (not in `no_interval_questions`). `interval_note` says
    why a row has none.
    """
    sv = surveys.set_index("survey_id") if "survey_id" in surveys.columns else surveys
    out = results.copy()
    lo: list[float] = []
    hi: list[float] = []
    cnt: list = []  # ints and pd.NA
    note: list[str] = []
    sampling_of = sv["sampling_class"].to_dict()
    share = is_share(results, no_interval_questions).to_list()
    # (plain dicts: iterrows builds a Series a row)
    for r, one in zip(out.to_dict("records"), share, strict=True):
        sampling = sampling_of[r["survey_id"]]
        if not one:
            why = "not a share of respondents (an index or a mean)"
        elif sampling != INTERVAL_SAMPLING:
            why = f"sampling: {sampling}" + (
                ", design not published" if sampling == "described as representative" else ""
            )
        elif pd.isna(r["n"]):
            why = "n not stated"
        elif not bool(r["n_applies"]):
            why = "the stated n is not this item's base (question not asked of everyone)"
        elif pd.notna(r["qualifier"]) and str(r["qualifier"]):
            why = f"percentage stated as '{r['qualifier']}' a value"
        else:
            why = ""
        if why:
            lo.append(np.nan)
            hi.append(np.nan)
            cnt.append(pd.NA)
            note.append(why)
            continue
        n = int(r["n"])
        k = int(round(float(r["percent"]) / 100 * n))
        a, b = wilson(k, n, confidence)
        lo.append(100 * a)
        hi.append(100 * b)
        cnt.append(k)
        note.append(interval_kind(confidence, n))
    out["approx_count"] = pd.array(cnt, dtype="Int64")
    out["ci_low"], out["ci_high"], out["interval_note"] = lo, hi, note
    return processed.derived(out, results, surveys)


def item(
    with_ci: pd.DataFrame,
    survey_id: str,
    question_id: str,
    response: str | None = None,
    what: str = "",
) -> Result:
    """One published percentage as a `Result`: its qualifier ("almost"), its
    decimals as published, and its interval where one holds (else none); the
    description is `what` followed by the survey, year and interval note.

    with_ci: the table `with_intervals` returns (so the result names both raw
    files, survey_results.csv and surveys.csv, and the row's source id).
    `response` picks a row when the question has several; otherwise the first.

    >>> reg.record("kaziss_trust_president", survey.item(
    ...     ci, "KAZISS_2022_02", "KAZISS22_trust_president", what="trust the President"))
    """
    rows = with_ci[(with_ci["survey_id"] == survey_id) & (with_ci["question_id"] == question_id)]
    if response is not None:
        rows = rows[rows["response"] == response]
    if rows.empty:
        raise KeyError(f"no survey result {survey_id} / {question_id} / {response}")
    row = rows.iloc[0]
    has_ci = pd.notna(row["ci_low"])
    value = float(row["percent"])
    return Result(
        value,
        unit="percent",
        of=(row,),
        decimals=0 if value.is_integer() else 1,
        qualifier=row["qualifier"] if pd.notna(row["qualifier"]) else None,
        interval=(round(row["ci_low"], 1), round(row["ci_high"], 1)) if has_ci else None,
        interval_kind=row["interval_note"] if has_ci else None,
        description=f"{what} ({survey_id}, {int(row['year'])}; {row['interval_note']})",
    )


@dataclass(frozen=True)
class Steps:
    """The year-to-year changes of one annual series (see `largest_step`)."""

    largest: float  # the largest absolute change between consecutive years, in points
    year: int  # the later year of that change


def largest_step(rows: pd.DataFrame) -> Steps:
    """The largest change of an annual percentage between consecutive years (columns
    `year`, `percent`; one row per year): a series' endpoints say little where it
    jumps by as much as their difference. A change across a missing year is not a
    year-to-year change and is not counted."""
    s = rows.set_index("year")["percent"].astype(float).sort_index()
    if s.index.duplicated().any():
        raise ValueError("largest_step needs one value per year")
    steps = s.diff()[s.index.to_series().diff() == 1]
    if steps.empty:
        raise ValueError("no two consecutive years")
    year = int(steps.abs().idxmax())
    return Steps(largest=abs(float(steps[year])), year=year)


def interval_kind(confidence: float, n: int) -> str:
    """The exact label of a survey interval."""
    return (
        f"approximate {confidence:.0%} Wilson interval assuming simple random sampling, n = {n:,}"
    )


def round_fraction(x: Fraction, decimals: int, rounding: str = "half_up") -> Fraction:
    """Round an exact fraction to `decimals` decimals (ties: half_up or half_even)."""
    scale = 10**decimals
    scaled = x * scale
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (
        rest == Fraction(1, 2) and (rounding == "half_up" or floor % 2 == 1)
    ):
        floor += 1
    return Fraction(floor, scale)


def consistent_share_by_range(ns: list[int], n_max: int, ranges: int = 20) -> pd.DataFrame:
    """Sample sizes 1..n_max in `ranges` equal ranges (the last may be shorter): for
    each, its first and last size, how many sizes it holds, how many of them are in
    `ns` (`consistent_sample_sizes`) and their share in percent. Arithmetic on
    rounding: no sampling model."""
    width = -(-n_max // ranges)  # (rounded up)
    found = set(ns)
    rows = []
    for lo in range(1, n_max + 1, width):
        hi = min(lo + width - 1, n_max)
        k = sum(n in found for n in range(lo, hi + 1))
        rows.append(
            {"first": lo, "last": hi, "sizes": hi - lo + 1, "consistent": k,
             "percent": 100 * k / (hi - lo + 1)}
        )  # fmt: skip
    return pd.DataFrame(rows)


def every_size_from(ns: list[int], n_max: int) -> int | None:
    """The smallest n such that every sample size from n to n_max is in `ns`; None
    when n_max itself is not."""
    found = set(ns)
    if n_max not in found:
        return None
    n = n_max
    while n > 1 and n - 1 in found:
        n -= 1
    return n


def consistent_sample_sizes(
    percents: list[float], decimals: int = 1, n_max: int = 1000, rounding: str = "half_up"
) -> list[int]:
    """Sample sizes n <= n_max for which every percentage is some 100·k/n, rounded.

    Exact integer arithmetic (no floating-point edge errors). `rounding` is the tie
    rule the authors may have used: half_up (43.25 -> 43.3) or half_even (43.25 -> 43.2).
    Gives what `round_fraction` of each candidate 100·k/n gives (a test compares).
    """
    if rounding not in ("half_up", "half_even"):
        raise ValueError(f"unknown rounding {rounding!r}")
    scale = 10**decimals
    # each percentage in units of its last decimal (48.1 -> 481 at one decimal);
    # one with more decimals than `decimals` is never a rounded value
    units = [Fraction(str(p)) * scale for p in percents]
    if any(u.denominator != 1 for u in units):
        return []
    ps = [int(u) for u in units]
    return [n for n in range(1, n_max + 1) if all(_fits(p, n, scale, rounding) for p in ps)]


def _fits(p: int, n: int, scale: int, rounding: str) -> bool:
    """Some k (0 <= k <= n) has 100·k/n rounding to p/scale percent: with x = 100·scale·k/n
    in units, half_up keeps p - 1/2 <= x < p + 1/2, half_even p - 1/2 < x < p + 1/2
    and both ends when p is even; in integers (times 2n): lo <= 200·scale·k <= hi."""
    lo, hi = 2 * n * p - n, 2 * n * p + n
    k0 = (p * n) // (100 * scale)  # floor of the centre p·n/(100·scale)
    for k in (k0 - 1, k0, k0 + 1, k0 + 2):
        if not 0 <= k <= n:
            continue
        x = 200 * scale * k
        if lo < x < hi or (x == lo and (rounding == "half_up" or p % 2 == 0)):
            return True
        if x == hi and rounding == "half_even" and p % 2 == 0:
            return True
    return False


@dataclass(frozen=True)
class TwoProportion:
    """A two-proportion z test: statistic, two-sided p-value, difference in points."""

    z: float
    p_value: float
    difference_pp: float


def two_proportion_test(p1: float, n1: int, p2: float, n2: int) -> TwoProportion:
    """z test of two independent proportions given in percent (approximate counts)."""
    from statsmodels.stats.proportion import proportions_ztest

    k = np.array([round(p1 / 100 * n1), round(p2 / 100 * n2)])
    z, p = proportions_ztest(k, np.array([n1, n2]))
    return TwoProportion(z=float(z), p_value=float(p), difference_pp=p1 - p2)


def comparable_pairs(results: pd.DataFrame, surveys: pd.DataFrame) -> pd.DataFrame:
    """Candidate pairs for a two-proportion test, with the reason each is (not) testable.

    Comparable means the same question and response in two different surveys
    (independent samples). Testable also needs a stated n on both sides and
    probability samples with a stated design (INTERVAL_SAMPLING). Items of one
    survey are never tested against each other (same respondents: not independent).
    """
    sv = surveys.set_index("survey_id") if "survey_id" in surveys.columns else surveys
    rows = []
    keyed = results.assign(
        key=results["question_id"].str.replace(r"^KAZISS\d\d_", "KAZISS_", regex=True)
    )
    # only items asked in two surveys or more can make a pair (most are asked in one)
    several = keyed.groupby(["key", "response"])["survey_id"].transform("nunique") >= 2
    for (key, resp), grp in keyed[several].groupby(["key", "response"], sort=True):
        grp = grp.sort_values("year")
        for i in range(len(grp) - 1):
            a, b = grp.iloc[i], grp.iloc[i + 1]
            if pd.isna(a["n"]) or pd.isna(b["n"]):
                why = "n not stated on both sides"
            elif (
                sv.loc[a["survey_id"], "sampling_class"] != INTERVAL_SAMPLING
                or sv.loc[b["survey_id"], "sampling_class"] != INTERVAL_SAMPLING
            ):
                why = "not both probability samples with a stated design"
            else:
                why = ""
            rows.append(
                {
                    "question": key,
                    "response": resp,
                    "survey_a": a["survey_id"],
                    "percent_a": a["percent"],
                    "survey_b": b["survey_id"],
                    "percent_b": b["percent"],
                    "testable": why == "",
                    "reason": why or "same item, independent samples, n stated",
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "question",
            "response",
            "survey_a",
            "percent_a",
            "survey_b",
            "percent_b",
            "testable",
            "reason",
        ],
    )
