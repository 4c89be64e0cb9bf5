"""params.yaml: validated on load, one section per notebook, stamps per section."""

from __future__ import annotations

import json

import pytest

from analysis import params, paths
from conftest import fixture_params, fixture_params_text
from pipeline import snapshot


def test_project_params_are_valid_and_every_notebook_has_a_section():
    p = params.load()  # whatever values the project chose
    assert set(type(p).model_fields) == {"shared", *params.SECTIONS}
    for nb in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        if "-" not in nb.stem:  # a JupyterLab copy (02_ngo-Copy1) is not a stage
            assert params.section_name(nb) in params.SECTIONS


def test_section_merges_shared_keys(tmp_path):
    s = params.load_section("data", fixture_params(tmp_path))
    assert s["per_capita_denominator"] == 10000 and s["confidence_level"] == 0.95
    assert params.load(fixture_params(tmp_path)).shared.focus_country == "KAZ"


def write(tmp_path, text):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


def base_text():
    """The fixture parameters (tests/fixtures/params.yaml over the project's keys)."""
    return fixture_params_text()


def test_unknown_key_is_named(tmp_path):
    p = write(tmp_path, base_text().replace("per_capita_denominator:", "per_capita_denominater:"))
    with pytest.raises(params.ParamsError, match=r"key 'data.per_capita_denominater': unknown key"):
        params.load(p)


def test_unknown_section_is_named(tmp_path):
    p = write(tmp_path, base_text() + "\nextra_section:\n  a: 1\n")
    with pytest.raises(params.ParamsError, match=r"key 'extra_section': unknown key"):
        params.load(p)


def test_wrong_type_is_named(tmp_path):
    p = write(tmp_path, base_text().replace("dpi: 150", "dpi: high"))
    line = p.read_text().splitlines().index("    dpi: high") + 1
    with pytest.raises(params.ParamsError, match=rf"line {line}: key 'shared.figure.dpi'.*integer"):
        params.load(p)


def test_a_misspelt_key_names_the_missing_one_too(tmp_path):
    """The unknown key comes first (with its line); the key it leaves missing is named
    after it, with the line of its section, never hidden behind "and 1 more"."""
    p = write(tmp_path, base_text().replace("per_capita_denominator:", "per_capita_denominater:"))
    lines = p.read_text().splitlines()
    typo = next(i for i, x in enumerate(lines, 1) if "per_capita_denominater" in x)
    section = lines.index("data:") + 1
    with pytest.raises(params.ParamsError) as e:
        params.load(p)
    assert f"{p.name}: line {typo}: key 'data.per_capita_denominater'" in str(e.value)
    assert f"also line {section}: key 'data.per_capita_denominator': Field required" in str(e.value)
    assert "more" not in str(e.value)


def test_out_of_range_value(tmp_path):
    p = write(tmp_path, base_text().replace("confidence_level: 0.95", "confidence_level: 95"))
    with pytest.raises(params.ParamsError, match=r"shared.confidence_level"):
        params.load(p)


def test_malformed_yaml_names_the_line(tmp_path):
    p = write(tmp_path, "shared:\n  comparators: [KGZ, UZB\ndata: {}\n")
    with pytest.raises(params.ParamsError, match=r"p.yaml: line \d+, column \d+ malformed YAML"):
        params.load(p)


def test_not_a_mapping(tmp_path):
    with pytest.raises(params.ParamsError, match="mapping"):
        params.load(write(tmp_path, "- a\n- b\n"))


def test_missing_file(tmp_path):
    with pytest.raises(params.ParamsError, match="not found"):
        params.load(tmp_path / "nope.yaml")


def test_notebook_without_section():
    with pytest.raises(params.ParamsError, match="no params section"):
        params.section_name("notebooks/07_unknown.ipynb")


def test_stamps_change_only_with_their_section(tmp_path):
    stamps = tmp_path / "stamps"
    base = write(tmp_path, base_text())
    assert snapshot.write_stamps(base, stamps) == params.SECTIONS
    before = {p.name: p.stat().st_mtime_ns for p in stamps.iterdir()}
    assert snapshot.write_stamps(base, stamps) == []
    assert before == {p.name: p.stat().st_mtime_ns for p in stamps.iterdir()}
    changed = tmp_path / "changed.yaml"
    changed.write_text(base_text().replace("10000", "1000"))
    assert snapshot.write_stamps(changed, stamps) == ["data"]
    assert json.loads((stamps / "data.json").read_text())["per_capita_denominator"] == 1000


def test_duplicate_key_is_refused_with_its_line(tmp_path):
    p = write(tmp_path, base_text().replace("  world: WLD\n", "  world: WLD\n  world: RUS\n"))
    with pytest.raises(params.ParamsError, match=r"line \d+: key 'world' given twice"):
        params.load(p)


def test_duplicate_section_is_refused(tmp_path):
    p = write(tmp_path, base_text() + "\ndata:\n  per_capita_denominator: 5\n")
    with pytest.raises(params.ParamsError, match=r"key 'data' given twice \(first on line"):
        params.load(p)


def test_impossible_date_is_one_line(tmp_path):
    p = write(tmp_path, base_text().replace("target_pct: 30", "target_pct: 2023-02-30"))
    with pytest.raises(params.ParamsError, match=r"line \d+: '2023-02-30' is not a valid date"):
        params.load(p)


@pytest.mark.parametrize(
    "old,new,key",
    [
        ("comparators: [KGZ,", "comparators: [XYZ,", "shared.comparators"),
        ("focus_country: KAZ", "focus_country: ABC", "shared.focus_country"),
        ("civic_index: vdem_v14_v2xcs_ccsi", "civic_index: vdem_v99", "ngo.civic_index"),
        ("CAF_helped_stranger", "CAF_helped_strangers", "survey.caf_items"),
    ],
)
def test_values_must_exist_in_the_data(tmp_path, old, new, key):
    p = write(tmp_path, base_text().replace(old, new))
    with pytest.raises(params.ParamsError, match=rf"key '{key}': value '.+' does not exist in"):
        params.load(p)


def test_every_data_declaration_names_a_real_column():
    from analysis import data

    for model in [params.SharedParams, *params._SECTION_MODELS.values()]:
        for key, info in model.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and "in_data" in extra:
                table, column = extra["in_data"].split(".")
                if table in ("tables", "sources"):  # table names, source ids
                    assert column in ("name", "id"), (model.__name__, key)
                    continue
                fields = [f["name"] for f in data.resource(table)["schema"]["fields"]]
                assert column in fields, (model.__name__, key)


def test_a_section_snapshot_loads_like_the_file(tmp_path):
    snapshot.write_stamps(None, tmp_path)
    assert params.load_section("survey", tmp_path / "survey.json") == params.load_section("survey")
