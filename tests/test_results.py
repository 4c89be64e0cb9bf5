"""The recording API: provenance derived from the rows a value was computed from,
explicit overrides, kind inference, Results from helpers. Frames here are small
fixtures tagged like processed tables, not real data; the source ids are real ids
of the data package (the registry refuses any other)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis import ngo, processed, results
from analysis.results import Registry, Result, infer_kind, provenance

A, B = "wdi_2021mar", "wdi_2026oct"  # two source ids of the data package


def rows(ids, file="women_parliament_annual.csv", column="source_id", **extra):
    df = pd.DataFrame({"year": range(2000, 2000 + len(ids)), column: ids, **extra})
    return processed.tag(df, [file], [column])


def test_sources_and_ids_come_from_the_rows():
    reg = Registry("t")
    frame = rows([A, B, B])
    assert reg.record("k", 3, frame, "three rows", unit="rows") == 3
    e = reg.results["k"]
    assert e["sources"] == ["data/raw/women_parliament_annual.csv"]
    assert e["source_ids"] == [A, B]
    assert e["kind"] == "count" and e["description"] == "three rows" and e["notebook"] == "t"


def test_selections_keep_the_provenance():
    frame = rows([A, B])
    assert provenance(frame.query("year == 2001")) == (["women_parliament_annual.csv"], [B])
    row = frame.sort_values("year").iloc[0]  # one row (a Series) keeps it too
    assert provenance(row) == (["women_parliament_annual.csv"], [A])
    _, first = next(frame.iterrows())
    assert provenance(first)[1] == [A]


def test_union_over_frames_and_semicolon_lists():
    reg = Registry("t")
    tiers = rows([f"{A};{B}", A], file="women_parliament_tiers.csv", column="source_ids")
    counts = rows([B], file="ngo_counts.csv")
    reg.record("k", 1.5, [tiers, counts], "union", unit="x")
    e = reg.results["k"]
    assert e["sources"] == ["data/raw/ngo_counts.csv", "data/raw/women_parliament_tiers.csv"]
    assert e["source_ids"] == [A, B]


def test_explicit_sources_and_ids_override_the_rows():
    reg = Registry("t")
    frame = rows([A, B])
    reg.record("files", 1, frame, "d", unit="u", sources=["policy_events.csv"])
    reg.record("ids", 1, frame, "d", unit="u", source_ids=[B])
    reg.parameter("param", 30, frame, "a parameter", unit="percent")
    assert reg.results["files"]["sources"] == ["data/raw/policy_events.csv"]
    assert reg.results["files"]["source_ids"] == [A, B]
    assert reg.results["ids"]["source_ids"] == [B]
    assert reg.results["ids"]["sources"] == ["data/raw/women_parliament_annual.csv"]
    assert reg.results["param"]["source_ids"] == []
    assert reg.results["param"]["sources"] == ["data/raw/women_parliament_annual.csv"]


def test_without_rows_the_old_keyword_call_still_works():
    reg = Registry("t")
    reg.record("k", 2, unit="u", description="d", sources=["population.csv"], source_ids=[A])
    assert reg.results["k"]["sources"] == ["data/raw/population.csv"]
    assert reg.results["k"]["source_ids"] == [A]
    reg.record("text", "x", "description as third argument", unit="u", sources=[], source_ids=[])
    assert reg.results["text"]["description"] == "description as third argument"


def test_unknown_source_ids_and_missing_files_are_rejected():
    reg = Registry("t")
    with pytest.raises(ValueError, match="unknown source ids"):
        reg.record("k", 1, rows(["not_a_source_of_the_package"]), "d", unit="u")
    with pytest.raises(ValueError, match="does not exist"):
        reg.record("k", 1, rows([A], file="no_such_table.csv"), "d", unit="u")
    assert reg.results == {}


def test_rows_without_provenance_are_refused():
    reg = Registry("t")
    with pytest.raises(ValueError, match="no provenance"):
        reg.record("k", 1, pd.DataFrame({"source_id": [A]}), "d", unit="u")
    with pytest.raises(ValueError, match="no provenance"):
        reg.record("k", 1, unit="u", description="d")  # neither rows nor sources
    with pytest.raises(ValueError, match="no unit"):
        reg.record("k", 1, rows([A]), "d")
    with pytest.raises(ValueError, match="no description"):
        reg.record("k", 1, rows([A]), unit="u")


def test_kind_is_inferred_and_can_be_given():
    assert infer_kind(2024) == "count"
    assert infer_kind(pd.Series([3]).iloc[0]) == "count"  # numpy integer
    assert infer_kind([3, 5, 8]) == "count"
    assert infer_kind("below") == "text"
    assert infer_kind(0.25) == "estimate"
    assert infer_kind(round(12.6)) == "count"  # round() without digits is an int: say kind
    with pytest.raises(ValueError):
        infer_kind(True)
    reg = Registry("t")
    reg.record("published", 4.5, rows([A]), "an exact published float", unit="u", kind="count")
    reg.record("width", round(12.6), rows([A]), "a rounded estimate", unit="u", kind="estimate")
    assert reg.results["published"]["kind"] == "count"
    assert reg.results["width"]["kind"] == "estimate"
    with pytest.raises(ValueError, match="unknown kind"):
        reg.record("bad", 1, rows([A]), "d", unit="u", kind="guess")


def test_a_result_records_with_its_own_fields():
    reg = Registry("t")
    frame = rows([A, B])
    r = Result(
        48.1,
        unit="percent",
        of=(frame.iloc[1],),
        description="share",
        decimals=1,
        qualifier="almost",
        interval=(44.0, 52.2),
        interval_kind="approximate 95% Wilson interval",
    )
    assert reg.record("k", r) == 48.1
    e = reg.results["k"]
    assert e["source_ids"] == [B] and e["sources"] == ["data/raw/women_parliament_annual.csv"]
    assert e["interval"] == [44.0, 52.2] and e["interval_kind"].startswith("approximate")
    assert (e["decimals"], e["qualifier"], e["kind"], e["unit"]) == (
        1,
        "almost",
        "estimate",
        "percent",
    )
    reg.record("k2", r, description="overridden", decimals=0)
    assert reg.results["k2"]["description"] == "overridden" and reg.results["k2"]["decimals"] == 0
    explicit = Result("v", "note", sources=("claims.csv",), source_ids=(A,), description="d")
    reg.record("k3", explicit)
    assert reg.results["k3"]["sources"] == ["data/raw/claims.csv"]
    assert reg.results["k3"]["source_ids"] == [A] and reg.results["k3"]["kind"] == "text"


def test_table_derives_provenance():
    reg = Registry("t")
    frame = rows([A, B], value=[1.0, None])
    reg.table("tab", frame[["year", "value"]], frame, description="a table")
    e = reg.results["tab"]
    assert e["kind"] == "table" and e["value"][1]["value"] is None
    assert e["source_ids"] == [A, B]


def test_ngo_amount_is_a_recordable_result():
    funding = processed.tag(
        pd.DataFrame({"funding_id": ["F1", "F2"], "amount": [2.5e9, 7e6], "source_id": [A, B]}),
        ["ngo_state_funding.csv"],
    )
    reg = Registry("t")
    reg.record("bn", ngo.amount(funding, "F1"), description="d")
    reg.record("m", ngo.amount(funding, "F2", "million KZT"), description="d")
    assert reg.results["bn"]["value"] == 2.5 and reg.results["bn"]["kind"] == "count"
    assert reg.results["m"]["unit"] == "million KZT" and reg.results["m"]["source_ids"] == [B]
    with pytest.raises(ValueError, match="expected one"):
        ngo.amount(funding, "F9")


def test_read_tags_the_table_from_the_manifest(tmp_path):
    (tmp_path / "ngo_counts.csv").write_text(
        "year,count,population,per_10000,source_id\n2020,5,10,1.0,a\n"
    )
    (tmp_path / "sources.csv").write_text("source_id,title\na,T\n")
    manifest = {
        "ngo_counts.csv": {
            "from": {"data/raw/ngo_counts.csv": "x", "data/raw/population.csv": "y"}
        },
        "sources.csv": {"from": {}},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    counts = processed.read("ngo_counts", tmp_path)
    assert counts.attrs["raw_files"] == ["ngo_counts.csv"]  # its rows
    assert counts.attrs["joined_files"] == ["population.csv"]  # its joined columns
    assert counts.attrs["source_columns"] == ["source_id"]
    assert processed.read("sources", tmp_path).attrs["raw_files"] == []


def test_helpers_refuse_more_than_one_value_per_year():
    counts = pd.DataFrame(
        {
            "year": [2010, 2010, 2020],
            "count": [1, 2, 3],
            "bound": ["point"] * 3,
            "source_id": list("abc"),
        }
    )
    with pytest.raises(ValueError, match="one count per year"):
        ngo.growth_range(counts, 5)
    with pytest.raises(ValueError, match="one value per year"):
        ngo.index_profile([2000, 2000, 2001, 2002], [0.1, 0.2, 0.3, 0.4])


def test_the_paper_merges_the_notebooks_results_and_refuses_a_key_recorded_twice(tmp_path: Path):
    """The paper stage merges the per-notebook registries itself (the same bytes as
    `make results`); a key two notebooks record is named with both, never merged."""
    from pipeline import merge

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(results.dumps({"x": {"value": 1, "notebook": "01_a"}}))
    b.write_text(results.dumps({"y": {"value": 2, "notebook": "02_b"}}))
    assert merge.combine([b, a]) == {"x": results.load(a)["x"], "y": results.load(b)["y"]}
    out = tmp_path / "merged.json"
    assert merge.merge([a, b], out) == merge.combine([a, b])
    assert out.read_text() == results.dumps(merge.combine([a, b]))
    b.write_text(results.dumps({"x": {"value": 3, "notebook": "02_b"}}))
    with pytest.raises(merge.DuplicateResult, match=r"'x' recorded by 01_a and .*b\.json"):
        merge.combine([a, b])
