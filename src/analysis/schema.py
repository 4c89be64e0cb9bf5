"""The schema of params.yaml: one model per section, declared once, here.

`shared` applies to every notebook; every other section belongs to the notebook
`notebooks/NN_<section>.ipynb` and is registered with `@section("<section>")`.
Unknown keys, missing keys and wrong types are refused when params.yaml is
loaded (`analysis.params`). A key whose values must exist in the data declares
where, with `in_data("table.column")`; `in_data("tables.name")` accepts the
name of a table of the data package.

`make notebook NAME=<section>` appends a model for a new section at the end of
this file, with an example key; edit it like the others.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SECTION_MODELS: dict[str, type[BaseModel]] = {}


def section(name: str):
    """Register a model as the schema of params.yaml's section `name`."""

    def register(model: type[BaseModel]) -> type[BaseModel]:
        if name in SECTION_MODELS or name == "shared":
            raise ValueError(f"params section {name!r} declared twice")
        SECTION_MODELS[name] = model
        return model

    return register


def in_data(where: str, *, match: str = "exact", **field: Any) -> Any:
    """A field whose values (a value or a list of them) must exist in the data.

    `where` is "table.column" of data/raw (a datapackage resource),
    "sources.id" for the data package's source ids, or "tables.name" for the
    names of the package's tables. `match="prefix"`: each value
    must be the start of some value in that column.
    """
    return Field(json_schema_extra={"in_data": where, "match": match}, **field)


class Strict(BaseModel):
    """A section model: unknown keys, wrong types and changes after loading are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class FigureParams(Strict):
    """The `figure` key: size in inches, resolution and palette of every figure."""

    width_in: float = Field(gt=0, le=20)
    height_in: float = Field(gt=0, le=20)
    dpi: int = Field(ge=50, le=600)
    palette: str


class SharedParams(Strict):
    """The `shared` section: keys every notebook receives."""

    focus_country: str = in_data("women_parliament_annual.iso3", pattern=r"^[A-Z]{3}$")
    comparators: list[str] = in_data("women_parliament_annual.iso3")
    world: str = in_data("women_parliament_annual.iso3", pattern=r"^[A-Z]{3}$")
    confidence_level: float = Field(gt=0.5, lt=1)
    figure: FigureParams


@section("data")
class DataParams(Strict):
    """The `data` section (01_data)."""

    per_capita_denominator: int = Field(gt=0)


@section("ngo")
class NgoParams(Strict):
    """The `ngo` section (02_ngo)."""

    growth_series: Literal[
        "ministry_register", "moj_noncommercial", "bns_statistical", "early_secondary"
    ]
    growth_status: Literal["registered", "active"]
    reference_year: int = Field(ge=1990, le=2030)
    civic_index: str = in_data("civic_space_indices.index_id")
    freedom_house_index: str = in_data("civic_space_indices.index_id")
    growth_min_span_years: int = Field(ge=1, le=30)


@section("parliament")
class ParliamentParams(Strict):
    """The `parliament` section (03_parliament)."""

    mazhilis_2023_women: Literal[18, 19]
    preferred_sources: list[str] = in_data("women_parliament_elections.source_id")
    annual_series: Literal["wdi_2026oct", "wdi_2021mar", "ipu_wmn_monthly", "kazstat_sdg_551"]
    target_pct: float = Field(gt=0, le=100)
    parity_pct: float = Field(gt=0, le=100)
    first_quota_election: int = Field(ge=1990, le=2030)


@section("survey")
class SurveyParams(Strict):
    """The `survey` section (04_survey)."""

    granularity_percents: list[float]
    granularity_decimals: int = Field(ge=0, le=3)
    granularity_n_max: int = Field(ge=10, le=100000)
    granularity_rounding: Literal["half_up", "half_even"]
    no_interval_questions: list[str] = in_data("survey_results.question_id", match="prefix")
    caf_items: list[str] = in_data("survey_results.question_id")


@section("claims")
class ClaimsParams(Strict):
    """The `claims` section (05_claims)."""

    annual_series: Literal["wdi_2026oct", "wdi_2021mar", "ipu_wmn_monthly", "kazstat_sdg_551"]
    preferred_sources: list[str] = in_data("women_parliament_elections.source_id")
    mazhilis_2023_women: Literal[18, 19]
    civic_index: str = in_data("civic_space_indices.index_id")


# ---- sections added by `make notebook NAME=<section>` go below this line
