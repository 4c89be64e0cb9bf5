"""Convert the curated data dossier into the compendium's own tidy raw tables.

This is a one-off, auditable conversion, kept so that anyone can see exactly how
`data/raw/*.csv` was derived from `../shared/data-dossier/*.csv`:

    python tools/import_dossier.py --dossier ../shared/data-dossier --out /tmp/raw

Rules it follows (see README "Data"):
- every value is copied as published (as text, so no float round-trip);
- every row keeps its source id, namespaced where the dossier's numbering
  collides (`S01` in SOURCES_ngo.md -> `ngo_S01`, in SOURCES_survey.md -> `survey_S01`);
- incomparable measures become separate series, lower bounds stay flagged,
  disagreeing sources stay separate rows;
- the codings added here (series, bound, kind, ...) are written out row by row
  below, never guessed from text.

It refuses to write into `data/raw/` unless `--force` is given: raw data is
immutable and changes to it are deliberate (then run `make checksums`).
tests/test_import_dossier.py re-runs it into a scratch folder and checks the
committed tables are exactly what it produces.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- NGO counts
# One entry per dossier row of ngo_counts.csv, in file order:
# (source_id, year, series, {status: bound}).
#   series: early_secondary   1990-2004 generic counts from secondary texts / estimates
#           moj_noncommercial Ministry of Justice count of all non-commercial bodies
#           ministry_register NGO register of the ministry in charge (MISD / MCI)
#           bns_statistical   Bureau of National Statistics statistical count
#   bound:  point        stated without qualifier (may still be rounded by the source)
#           lower        "more than X": X is a lower bound
#           approximate  "an order of", "some", "about", rounded thousands
NGO_ROWS = [
    ("S09", 1990, "early_secondary", {"registered": "approximate"}),
    ("S09", 1994, "early_secondary", {"active": "lower"}),
    ("S06", 1997, "early_secondary", {"registered": "point"}),
    ("S08", 2003, "early_secondary", {"active": "point"}),
    ("S07", 2004, "early_secondary", {"registered": "approximate"}),
    ("S06", 2012, "moj_noncommercial", {"registered": "lower"}),
    ("S05", 2013, "moj_noncommercial", {"registered": "lower"}),
    ("S14", 2016, "ministry_register", {"active": "lower"}),
    ("S15", 2016, "ministry_register", {"registered": "lower"}),
    ("S13", 2017, "ministry_register", {"registered": "point"}),
    ("S10", 2020, "ministry_register", {"registered": "lower", "active": "point"}),
    ("S02", 2021, "ministry_register", {"registered": "lower", "active": "approximate"}),
    ("S11", 2021, "ministry_register", {"registered": "lower", "active": "approximate"}),
    ("S12", 2021, "ministry_register", {"registered": "lower"}),
    ("S01", 2023, "ministry_register", {"registered": "point", "active": "point"}),
    ("S17", 2024, "ministry_register", {"registered": "point", "active": "point"}),
    ("S18", 2024, "bns_statistical", {"active": "approximate"}),
    ("S20", 2025, "ministry_register", {"registered": "lower", "active": "lower"}),
    ("S21", 2025, "ministry_register", {"active": "lower"}),
    ("S22", 2025, "ministry_register", {"registered": "lower", "active": "lower"}),
    ("S23", 2025, "ministry_register", {"registered": "lower", "active": "lower"}),
    ("S24", 2025, "ministry_register", {"registered": "approximate"}),
]

# ------------------------------------------------------------- state funding
# One entry per dossier row of ngo_state_funding.csv, in file order:
# (funding_id, year_start, year_end, kind, bound, currency, scope, part_of)
#   kind: annual | cumulative | target | planned | per_award | ambiguous
FUNDING_ROWS = [
    ("F01", 2003, 2005, "cumulative", "lower", "KZT", "national", ""),
    ("F02", 2003, 2005, "cumulative", "approximate", "KZT", "national", ""),
    ("F03", 2010, 2010, "target", "lower", "KZT", "national", ""),
    ("F04", 2016, 2016, "annual", "point", "KZT", "national", ""),
    ("F05", 2016, 2016, "annual", "point", "KZT", "regions (local budgets)", "F04"),
    ("F06", 2016, 2016, "annual", "point", "KZT", "national", ""),
    ("F07", 2017, 2017, "per_award", "point", "KZT", "national", ""),
    ("F08", 2018, 2018, "ambiguous", "point", "KZT", "national", ""),
    ("F09", 2020, 2020, "planned", "point", "KZT", "national", ""),
    ("F10", 2016, 2022, "cumulative", "approximate", "KZT", "national", ""),
    ("F11", 2022, 2022, "annual", "point", "USD", "national", ""),
    ("F12", 1991, 2023, "cumulative", "lower", "KZT", "national", ""),
    ("F13", 2024, 2024, "annual", "point", "KZT", "Almaty city", ""),
]
# The dossier row F11 has no KZT amount; its note gives the published USD figure.
F11_USD = "36300000"

# ------------------------------------------------------ civic-space indices
# index_id: (name, publisher, vintage, kind, scale_min, scale_max, higher_means, year_basis)
INDICES = {
    "vdem_v14_v2xcs_ccsi": (
        "Core Civil Society Index",
        "V-Dem Institute",
        "v14",
        "score",
        "0",
        "1",
        "more robust civil society",
        "calendar year",
    ),
    "vdem_v12_v2xcs_ccsi": (
        "Core Civil Society Index",
        "V-Dem Institute",
        "v12",
        "score",
        "0",
        "1",
        "more robust civil society",
        "calendar year",
    ),
    "vdem_v12_v2csreprss": (
        "CSO repression",
        "V-Dem Institute",
        "v12",
        "score",
        "",
        "",
        "less repression of CSOs",
        "calendar year",
    ),
    "vdem_v12_v2cseeorgs": (
        "CSO entry and exit",
        "V-Dem Institute",
        "v12",
        "score",
        "",
        "",
        "less state control of CSO entry and exit",
        "calendar year",
    ),
    "vdem_v12_v2x_frassoc_thick": (
        "Freedom of association (thick)",
        "V-Dem Institute",
        "v12",
        "score",
        "0",
        "1",
        "more freedom of association",
        "calendar year",
    ),
    "fh_fiw_E": (
        "FIW E: associational and organizational rights",
        "Freedom House",
        "FIW 2013-2024",
        "score",
        "0",
        "12",
        "more free",
        "edition year",
    ),
    "fh_fiw_E1": (
        "FIW E1: freedom of assembly",
        "Freedom House",
        "FIW 2013-2024",
        "score",
        "0",
        "4",
        "more free",
        "edition year",
    ),
    "fh_fiw_E2": (
        "FIW E2: freedom for NGOs",
        "Freedom House",
        "FIW 2013-2024",
        "score",
        "0",
        "4",
        "more free",
        "edition year",
    ),
    "fh_fiw_E3": (
        "FIW E3: trade unions and professional organisations",
        "Freedom House",
        "FIW 2013-2024",
        "score",
        "0",
        "4",
        "more free",
        "edition year",
    ),
    "fh_fiw_CL": (
        "FIW civil liberties score",
        "Freedom House",
        "FIW 2013-2024",
        "score",
        "0",
        "60",
        "more free",
        "edition year",
    ),
    "fh_fiw_Total": (
        "FIW total score",
        "Freedom House",
        "FIW 2013-2024",
        "score",
        "0",
        "100",
        "more free",
        "edition year",
    ),
    "fh_fiw_Status": (
        "FIW status",
        "Freedom House",
        "FIW 2013-2024",
        "rating",
        "",
        "",
        "F = Free, PF = Partly Free, NF = Not Free",
        "edition year",
    ),
    "fh_pr_rating": (
        "Political rights rating",
        "Freedom House",
        "FIW 1973-2024",
        "score",
        "1",
        "7",
        "less free (1 = most free)",
        "year under review",
    ),
    "fh_cl_rating": (
        "Civil liberties rating",
        "Freedom House",
        "FIW 1973-2024",
        "score",
        "1",
        "7",
        "less free (1 = most free)",
        "year under review",
    ),
    "fh_status": (
        "Freedom status",
        "Freedom House",
        "FIW 1973-2024",
        "rating",
        "",
        "",
        "F = Free, PF = Partly Free, NF = Not Free",
        "year under review",
    ),
    "civicus_monitor_rating": (
        "CIVICUS Monitor civic space rating",
        "CIVICUS",
        "2021-2022",
        "rating",
        "",
        "",
        "open > narrowed > obstructed > repressed > closed",
        "calendar year",
    ),
}

# ----------------------------------------------------- articles (claims file)
ARTICLE_IDS = [
    ("Kazakhstan's government is determined", "article_dialogue_platform_2021"),
    ("Gender Issues in Kazakhstan", "article_gender_issues"),
    ("Why is it Hard to Build a Strong Civil Society", "survey_S01"),
    ("Civil Society and Liberties in Kazakhstan", "article_essay_liberties"),
]


def read(dossier: Path, name: str) -> list[dict[str, str]]:
    with open(dossier / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def ids(raw: str, prefix: str) -> str:
    """Namespace a dossier source-id cell ("S02;S03", "a; b") -> "p_S02;p_S03"."""
    parts = [p.strip() for p in raw.split(";") if p.strip()]
    return ";".join(f"{prefix}{p}" for p in parts)


def year_month_day(text: str) -> tuple[str, str, str]:
    m = re.fullmatch(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", text.strip())
    if not m:
        raise ValueError(f"not an ISO date or partial date: {text!r}")
    return (
        m.group(1),
        str(int(m.group(2))) if m.group(2) else "",
        str(int(m.group(3))) if m.group(3) else "",
    )


def ngo_counts(d: Path) -> list[dict]:
    rows = read(d, "ngo_counts.csv")
    if len(rows) != len(NGO_ROWS):
        raise SystemExit("ngo_counts.csv changed: update NGO_ROWS")
    out = []
    for r, (src, year, series, statuses) in zip(rows, NGO_ROWS, strict=True):
        assert (r["source_id"], int(r["year"])) == (src, year), (r, src, year)
        for status in ("registered", "active"):
            if (r[status] != "") != (status in statuses):
                raise SystemExit(f"ngo_counts.csv {src} {year}: coding of {status} out of date")
            if r[status]:
                out.append(
                    {
                        "year": year,
                        "as_of": r["as_of_date"],
                        "series": series,
                        "status": status,
                        "count": r[status],
                        "bound": statuses[status],
                        "source_id": f"ngo_{src}",
                        "note": r["measure_note"],
                    }
                )
    return out


def activity_areas(d: Path) -> list[dict]:
    out = []
    for year in (2023, 2025):
        for r in read(d, f"ngo_activity_areas_{year}.csv"):
            out.append(
                {
                    "classification": year,
                    "area": r["area"],
                    "share_pct": r["share_pct"],
                    "source_id": f"ngo_{r['source_id']}",
                }
            )
    return out


def state_funding(d: Path) -> list[dict]:
    rows = read(d, "ngo_state_funding.csv")
    if len(rows) != len(FUNDING_ROWS):
        raise SystemExit("ngo_state_funding.csv changed: update FUNDING_ROWS")
    out = []
    for r, (fid, y0, y1, kind, bound, cur, scope, part_of) in zip(rows, FUNDING_ROWS, strict=True):
        amount = r["amount_kzt"] if cur == "KZT" else F11_USD
        if cur == "USD":
            assert r["amount_kzt"] == "" and "$36.3 million" in r["note"], r
        out.append(
            {
                "funding_id": fid,
                "period": r["year"],
                "year_start": y0,
                "year_end": y1,
                "kind": kind,
                "amount": amount,
                "currency": cur,
                "bound": bound,
                "scope": scope,
                "part_of": part_of,
                "programme": r["programme"],
                "source_id": f"ngo_{r['source_id']}",
                "note": r["note"],
            }
        )
    return out


def civic_space(d: Path) -> tuple[list[dict], list[dict], list[dict]]:
    rows = read(d, "civic_space_indices.csv")
    src = {}
    for r in rows:
        src.setdefault(r["index"], set()).add(r["source_id"])
    indices = []
    for iid, (name, pub, vint, kind, lo, hi, higher, basis) in INDICES.items():
        (s,) = src[iid]
        scale = next(r["scale"] for r in rows if r["index"] == iid)
        indices.append(
            {
                "index_id": iid,
                "name": name,
                "publisher": pub,
                "vintage": vint,
                "kind": kind,
                "scale_as_published": scale,
                "scale_min": lo,
                "scale_max": hi,
                "higher_means": higher,
                "year_basis": basis,
                "source_id": f"ngo_{s}",
            }
        )
    scores, ratings = [], []
    for r in rows:
        base = {"index_id": r["index"], "year": r["year"]}
        tail = {"source_id": f"ngo_{r['source_id']}", "note": r["note"]}
        if INDICES[r["index"]][3] == "score":
            scores.append({**base, "value": r["value"], **tail})
        else:
            ratings.append({**base, "rating": r["value"], **tail})
    return indices, scores, ratings


def population(d: Path) -> list[dict]:
    return [
        {"year": r["year"], "population": r["population"], "source_id": f"ngo_{r['source_id']}"}
        for r in read(d, "population.csv")
    ]


def elections(d: Path) -> list[dict]:
    out = []
    for r in read(d, "women_parliament_kz_elections.csv"):
        y, m, day = year_month_day(r["election_date"])
        coverage = "whole chamber"
        if r["chamber"] == "Senate" and r["election_date"] == "2023-01-14":
            coverage = "seats elected in this renewal"
        out.append(
            {
                "chamber": r["chamber"],
                "election_date": r["election_date"],
                "year": y,
                "month": m,
                "day": day,
                "total_seats": r["total_seats"],
                "women_seats": r["women_seats"],
                "women_pct": r["women_pct"],
                "coverage": coverage,
                "source_id": r["source_id"],
                "note": r["note"],
            }
        )
    return out


def annual(d: Path) -> list[dict]:
    out = []
    for r in read(d, "women_parliament_annual.csv"):
        vintage = {
            "wdi_2026oct": "2026-10-08",
            "wdi_2021mar": "2021-03-19",
            "ipu_wmn_monthly": "2023-01-08",
        }.get(r["source_id"])
        if vintage is None:  # kazstat: two file versions, named in the note
            vintage = re.search(r"file version (\d{4}-\d{2}-\d{2})", r["note"]).group(1)
        out.append(
            {
                "iso3": r["iso3"],
                "country": r["country"],
                "year": r["year"],
                "women_pct": r["women_pct"],
                "source_id": r["source_id"],
                "vintage": vintage,
                "note": r["note"],
            }
        )
    return out


def policy_events(d: Path) -> list[dict]:
    out = []
    for i, r in enumerate(read(d, "policy_events.csv"), start=1):
        y, m, day = year_month_day(r["date"])
        out.append(
            {
                "event_id": f"E{i:02d}",
                "date": r["date"],
                "year": y,
                "month": m,
                "day": day,
                "country": r["country"],
                "event": r["event"],
                "source_ids": ids(r["source_id"], ""),
            }
        )
    return out


def surveys(d: Path) -> list[dict]:
    out = []
    for r in read(d, "surveys.csv"):
        out.append(
            {
                "survey_id": r["survey_id"],
                "title": r["title"],
                "fieldwork": r["fieldwork_dates"],
                "n": r["n"],
                "n_is_lower_bound": "true" if r["survey_id"] == "NVN_2025" else "false",
                "population": r["population"],
                "sampling": r["sampling"],
                "source_ids": ids(r["source_id"], "survey_"),
            }
        )
    return out


def survey_results(d: Path) -> list[dict]:
    out = []
    for r in read(d, "survey_results.csv"):
        assert r["count"] == "", "the dossier has no counts; a count column would be empty"
        out.append(
            {
                "survey_id": r["survey_id"],
                "year": r["year"],
                "country": r["country"],
                "question_id": r["question_id"],
                "question_text": r["question_text"],
                "response": r["response"],
                "percent": r["percent"],
                "n": r["n"],
                "source_id": f"survey_{r['source_id']}",
                "note": r["note"],
            }
        )
    return out


def claims(d: Path) -> list[dict]:
    out, last = [], None
    for r in read(d, "claims_from_articles.csv"):
        if r["article"] == "same article" or r["article"] == "same abstract":
            sid = last
        else:
            sid = next(v for k, v in ARTICLE_IDS if k.lower() in r["article"].lower())
        last = sid
        out.append(
            {
                "claim_id": r["claim_id"],
                "article_source_id": sid,
                "claim_as_stated": r["claim_as_stated"],
                "quantity": r["quantity"],
                "claimed_value": r["claimed_value"],
                "unit": r["unit"],
                "refers_to": r["refers_to"],
                "how_to_check": r["how_to_check"],
            }
        )
    return out


TABLES = {
    "ngo_counts": ngo_counts,
    "ngo_activity_areas": activity_areas,
    "ngo_state_funding": state_funding,
    "population": population,
    "women_parliament_elections": elections,
    "women_parliament_annual": annual,
    "policy_events": policy_events,
    "surveys": surveys,
    "survey_results": survey_results,
    "claims": claims,
}


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def convert(dossier: Path) -> dict[str, str]:
    """Return {file name: CSV text} for every raw table."""
    out = {f"{name}.csv": to_csv(fn(dossier)) for name, fn in TABLES.items()}
    idx, scores, ratings = civic_space(dossier)
    out["civic_space_indices.csv"] = to_csv(idx)
    out["civic_space_scores.csv"] = to_csv(scores)
    out["civic_space_ratings.csv"] = to_csv(ratings)
    return dict(sorted(out.items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dossier", type=Path, default=ROOT.parent / "shared" / "data-dossier")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--force", action="store_true", help="allow writing into data/raw/")
    a = ap.parse_args(argv)
    if a.out.resolve() == (ROOT / "data" / "raw").resolve() and not a.force:
        print(
            "refusing to overwrite data/raw/ without --force (raw data is immutable)",
            file=sys.stderr,
        )
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    for name, text in convert(a.dossier).items():
        (a.out / name).write_text(text, encoding="utf-8")
        print(f"wrote {a.out / name} ({text.count(chr(10)) - 1} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
