"""The raw data package: every file passes its checksum and schema, every
source id resolves, and each kind of bad input stops with one clear message."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from analysis import data, paths
from conftest import edit

PKG = data.package()


def test_every_raw_file_passes_checksum_and_schema():
    tables = data.load_all()
    assert set(tables) == {r["name"] for r in PKG["resources"]}
    on_disk = {p.name for p in paths.RAW.glob("*.csv")}
    assert on_disk == {r["path"] for r in PKG["resources"]}, "a raw CSV is not described"
    assert all(len(df) > 0 for df in tables.values())


def test_frames_are_typed():
    counts = data.load("ngo_counts")
    assert str(counts["count"].dtype) == "Int64"
    annual = data.load("women_parliament_annual")
    assert annual["women_pct"].dtype == "float64"
    surveys = data.load("surveys")
    assert str(surveys["n_is_lower_bound"].dtype) == "boolean"
    assert surveys.set_index("survey_id").loc["NVN_2025", "n_is_lower_bound"]


def test_every_source_has_a_full_citation():
    for s in PKG["sources"]:
        for key in ("id", "title", "publisher", "date", "kind", "licence", "accessed"):
            assert s.get(key), f"source {s['id']}: missing {key}"
        assert s["licence"].get("name"), s["id"]
        assert s.get("path") or s.get("repository") or "no URL" in s.get("note", ""), s["id"]
        if s.get("repository"):
            assert re.fullmatch(r"[0-9a-f]{40}(; [0-9a-f]{40})*", s["commit"]), s["id"]
            assert s.get("file"), s["id"]


def test_every_numeric_field_has_a_unit_and_every_field_a_description():
    for res in PKG["resources"]:
        assert res["schema"]["primaryKey"], res["name"]
        for f in res["schema"]["fields"]:
            assert f.get("description"), (res["name"], f["name"])
            if f["type"] in ("number", "integer"):
                assert f.get("unit"), f"{res['name']}.{f['name']} has no unit"


def test_incomparable_ngo_series_and_lower_bounds_are_kept_apart():
    c = data.load("ngo_counts")
    assert set(c["series"]) == {
        "ministry_register",
        "moj_noncommercial",
        "bns_statistical",
        "early_secondary",
    }
    bns = c[c.series == "bns_statistical"].iloc[0]
    assert (bns["year"], bns["count"]) == (2024, 28100)
    apr23 = c[(c.source_id == "ngo_S01")].set_index("status")["count"]
    assert apr23.to_dict() == {"registered": 23335, "active": 18204}  # as published
    assert (c[c.year == 2025]["bound"] != "point").all()


def test_disagreeing_sources_stay_as_separate_rows():
    e = data.load("women_parliament_elections")
    m23 = e[(e.chamber == "Mazhilis") & (e.year == 2023)]
    assert sorted(m23["women_seats"]) == [18, 19]
    assert set(m23["source_id"]) == {"nurbayev_2024", "idea_gqd_2023"}


# ---------------------------------------------------------------- bad input
def bad(raw, table):
    with pytest.raises(data.DataValidationError) as ei:
        data.load(table, base=raw)
    return ei.value


def test_missing_column(raw_copy):
    p = raw_copy / "population.csv"
    p.write_text("\n".join(line.rsplit(",", 1)[0] for line in p.read_text().splitlines()) + "\n")
    data.update_checksums(raw_copy, validate=False)
    e = bad(raw_copy, "population")
    assert e.file.endswith("population.csv") and e.column == "source_id"
    assert "column present" in str(e)


def test_wrong_type(raw_copy):
    edit(raw_copy, "population.csv", "1992,17332625", "1992,17.3 million")
    e = bad(raw_copy, "population")
    assert (e.row, e.column, e.rule) == (3, "population", "type integer")
    assert "population.csv, row 3 (line 4), column 'population'" in str(e)
    assert "'17.3 million'" in str(e)


def test_out_of_range_percentage(raw_copy):
    edit(raw_copy, "women_parliament_elections.csv", ",177,21,11.86,", ",177,21,118.6,")
    e = bad(raw_copy, "women_parliament_elections")
    assert (e.row, e.column, e.rule) == (1, "women_pct", "maximum 100")


def test_duplicate_primary_key(raw_copy):
    edit(raw_copy, "population.csv", "1993,17274487", "1992,17274487")
    e = bad(raw_copy, "population")
    assert e.rule == "primary key is unique" and e.row == 4 and e.column == "year"


def test_duplicate_composite_primary_key(raw_copy):
    edit(
        raw_copy,
        "women_parliament_elections.csv",
        "Mazhilis,1999-10,1999,10,,,74,8,10.81,whole chamber,ipu_hist_1945_2018",
        "Mazhilis,1999-10,1999,10,,,74,8,10.81,whole chamber,ipu_wmn_monthly",
    )
    e = bad(raw_copy, "women_parliament_elections")
    assert e.rule == "primary key is unique"
    assert e.column == "chamber+election_date+source_id"


def test_unknown_source_id(raw_copy):
    edit(raw_copy, "population.csv", "1993,17274487,ngo_S38", "1993,17274487,ngo_S99")
    e = bad(raw_copy, "population")
    assert (e.row, e.column, e.value) == (4, "source_id", "ngo_S99")
    assert "resolves to an entry of datapackage.json sources" in e.rule


def test_unknown_source_id_in_a_list(raw_copy):
    edit(
        raw_copy,
        "policy_events.csv",
        "cia_wfb_hist;epfl_graphsearch_parl",
        "cia_wfb_hist;not_a_source",
    )
    assert bad(raw_copy, "policy_events").column == "source_ids"


def test_foreign_key(raw_copy):
    edit(raw_copy, "civic_space_scores.csv", "vdem_v14_v2xcs_ccsi,1991", "vdem_v99_ccsi,1991")
    e = bad(raw_copy, "civic_space_scores")
    assert e.column == "index_id" and "civic_space_indices.index_id" in e.rule


def test_a_claim_names_a_recorded_event(raw_copy):
    edit(raw_copy, "claims.csv", ",E25\n", ",E99\n")
    e = bad(raw_copy, "claims")
    assert e.column == "event_id" and "policy_events.event_id" in e.rule


def test_checksum_mismatch(raw_copy):
    edit(raw_copy, "population.csv", "1993,17274487", "1993,17274488", rehash=False)
    e = bad(raw_copy, "population")
    assert "sha256 matches datapackage.json" in e.rule and "make checksums" in str(e)


def test_a_changed_file_that_breaks_the_schema_names_the_break(raw_copy):
    """A raw file edited by hand (a spreadsheet's thousands separator) and not
    recorded: the first break of the schema, with row, column and rule, is what the
    build reports, not only that the checksum changed."""
    edit(raw_copy, "population.csv", "1993,17274487", '1993,"17,274,487"', rehash=False)
    e = bad(raw_copy, "population")
    assert (e.row, e.column) == (4, "population") and "thousands separator" in e.rule


def test_empty_file(raw_copy):
    (raw_copy / "population.csv").write_text("")
    data.update_checksums(raw_copy, validate=False)
    assert "not empty" in bad(raw_copy, "population").rule


def test_header_only(raw_copy):
    (raw_copy / "population.csv").write_text("year,population,source_id\n")
    data.update_checksums(raw_copy, validate=False)
    assert "at least one data row" in bad(raw_copy, "population").rule


def test_required_value_missing(raw_copy):
    edit(raw_copy, "population.csv", "1993,17274487,ngo_S38", "1993,,ngo_S38")
    e = bad(raw_copy, "population")
    assert e.rule.startswith("required") and e.row == 4


def test_bad_boolean(raw_copy):
    edit(raw_copy, "surveys.csv", ",false,", ",perhaps,")
    assert bad(raw_copy, "surveys").rule == "type boolean"


def test_enum(raw_copy):
    edit(
        raw_copy,
        "ngo_counts.csv",
        ",early_secondary,registered,100,approximate,",
        ",early_secondary,registered,100,roughly,",
    )
    e = bad(raw_copy, "ngo_counts")
    assert e.column == "bound" and e.rule.startswith("one of")


def test_unused_source_is_reported(raw_copy):
    pkg = json.loads((raw_copy / "datapackage.json").read_text())
    pkg["sources"].append({**pkg["sources"][0], "id": "zz_unused"})
    (raw_copy / "datapackage.json").write_text(json.dumps(pkg))
    with pytest.raises(data.DataValidationError, match="zz_unused"):
        data.load_all(raw_copy)


def test_one_message_counts_the_other_problems(raw_copy):
    edit(raw_copy, "population.csv", "1992,17332625", "1992,x")
    edit(raw_copy, "population.csv", "1993,17274487", "1993,y")
    e = bad(raw_copy, "population")
    assert e.row == 3 and "(and 1 more problem in this file)" in str(e)


def test_update_checksums_changes_only_what_changed(raw_copy):
    assert data.update_checksums(raw_copy) == []
    edit(raw_copy, "population.csv", "1993,17274487", "1993,17274488", rehash=False)
    assert data.update_checksums(raw_copy) == ["population.csv"]


def test_citation_lookup():
    c = data.citation("wdi_2026oct")
    assert c["publisher"] == "World Bank" and c["licence"]["name"] == "CC-BY-4.0"
    with pytest.raises(KeyError):
        data.citation("nope")


def test_loaded_values_equal_the_csv_text():
    """No float round-trip surprises: values print back as published."""
    text = (paths.RAW / "women_parliament_annual.csv").read_text()
    assert "13.4328358208955" in text
    df = data.load("women_parliament_annual")
    v = df[(df.iso3 == "KAZ") & (df.year == 1997) & (df.source_id == "wdi_2026oct")]
    assert repr(float(v["women_pct"].iloc[0])) == "13.4328358208955"
    assert pd.api.types.is_float_dtype(df["women_pct"])


# ---------------------------------------------------------------- spreadsheet edits
POP = "population.csv"


def rewrite(raw, text: str | bytes) -> None:
    p = raw / POP
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    data.update_checksums(raw, validate=False)


def test_unquoted_thousands_separator(raw_copy):
    rewrite(raw_copy, (raw_copy / POP).read_text().replace("1992,17332625", "1992,17,332,625"))
    e = bad(raw_copy, "population")
    assert (e.row, e.column) == (3, "population")
    assert "population.csv, row 3 (line 4), column 'population'" in str(e)
    assert "3 fields like the header, got 5" in e.rule and "'17,332,625'" in e.rule


def test_comma_in_an_unquoted_note(raw_copy):
    text = (raw_copy / POP).read_text().replace("1993,17274487,ngo_S38", "1993,17274487,ngo_S38,x")
    rewrite(raw_copy, text)
    e = bad(raw_copy, "population")
    assert e.row == 4 and "a comma in an unquoted text" in e.rule


def test_trailing_comma_on_data_rows_names_the_right_row(raw_copy):
    lines = (raw_copy / POP).read_text().splitlines()
    rewrite(raw_copy, "\n".join([lines[0]] + [x + "," for x in lines[1:]]) + "\n")
    e = bad(raw_copy, "population")
    assert e.row == 1 and "trailing comma" in e.rule


def test_semicolon_separated_file(raw_copy):
    rewrite(raw_copy, (raw_copy / POP).read_text().replace(",", ";"))
    e = bad(raw_copy, "population")
    assert "header (line 1)" in str(e) and "';' as separator" in e.rule


def test_decimal_comma_in_a_quoted_number(raw_copy):
    edit(raw_copy, "women_parliament_elections.csv", ",177,21,11.86,", ',177,21,"11,86",')
    e = bad(raw_copy, "women_parliament_elections")
    assert (e.row, e.column) == (1, "women_pct") and "decimal comma" in e.rule


def test_not_utf8(raw_copy):
    text = (raw_copy / POP).read_text().replace("1993,17274487,ngo_S38", "1993,17274487,ngo_S38é")
    rewrite(raw_copy, text.encode("latin-1"))
    e = bad(raw_copy, "population")
    assert e.row == 4 and "UTF-8" in e.rule and "spreadsheet" in e.rule


def test_checksums_are_recorded_only_for_valid_files(raw_copy):
    before = json.loads((raw_copy / "datapackage.json").read_text())
    p = raw_copy / POP
    p.write_text(p.read_text().replace("1992,17332625", "1992,17,332,625"))
    with pytest.raises(data.DataValidationError, match="population.csv, row 3"):
        data.update_checksums(raw_copy)
    after = json.loads((raw_copy / "datapackage.json").read_text())
    assert after == before  # the invalid file's hash was not recorded
