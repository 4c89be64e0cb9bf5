"""Load and validate params.yaml.

Each notebook `NN_<section>.ipynb` gets `{**shared, **<section>}` as one dict
named `params`. Unknown keys, missing keys and wrong types stop with a message
naming the file and the key path, e.g.::

    params.yaml: key 'data.per_capita_denominator': Input should be a valid integer
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from analysis import paths
from analysis.io import write_if_changed


class ParamsError(ValueError):
    """Malformed or invalid parameters file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FigureParams(_Strict):
    width_in: float = Field(gt=0, le=20)
    height_in: float = Field(gt=0, le=20)
    dpi: int = Field(ge=50, le=600)
    palette: str


class SharedParams(_Strict):
    focus_country: str = Field(pattern=r"^[A-Z]{3}$")
    comparators: list[str]
    world: str = Field(pattern=r"^[A-Z]{3}$")
    confidence_level: float = Field(gt=0.5, lt=1)
    figure: FigureParams


class DataParams(_Strict):
    per_capita_denominator: int = Field(gt=0)


class NgoParams(_Strict):
    growth_series: Literal[
        "ministry_register", "moj_noncommercial", "bns_statistical", "early_secondary"
    ]
    growth_status: Literal["registered", "active"]
    reference_year: int = Field(ge=1990, le=2030)
    civic_index: str
    freedom_house_index: str
    growth_min_span_years: int = Field(ge=1, le=30)


class ParliamentParams(_Strict):
    mazhilis_2023_women: Literal[18, 19]
    preferred_sources: list[str]
    annual_series: Literal["wdi_2026oct", "wdi_2021mar", "ipu_wmn_monthly", "kazstat_sdg_551"]
    target_pct: float = Field(gt=0, le=100)
    parity_pct: float = Field(gt=0, le=100)
    first_quota_election: int = Field(ge=1990, le=2030)


class SurveyParams(_Strict):
    granularity_percents: list[float]
    granularity_decimals: int = Field(ge=0, le=3)
    granularity_n_max: int = Field(ge=10, le=100000)
    granularity_rounding: Literal["half_up", "half_even"]
    no_interval_questions: list[str]
    caf_items: list[str]


class ClaimsParams(_Strict):
    annual_series: Literal["wdi_2026oct", "wdi_2021mar", "ipu_wmn_monthly", "kazstat_sdg_551"]
    preferred_sources: list[str]
    mazhilis_2023_women: Literal[18, 19]
    civic_index: str


class Params(_Strict):
    shared: SharedParams
    data: DataParams
    ngo: NgoParams
    parliament: ParliamentParams
    survey: SurveyParams
    claims: ClaimsParams


SECTIONS = [name for name in Params.model_fields if name != "shared"]


def _key_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def load(path: Path | str | None = None) -> Params:
    """Parse and validate a parameters file (default: the project's params.yaml)."""
    path = Path(path) if path else paths.PARAMS
    if not path.is_absolute() and not path.exists():
        path = paths.ROOT / path  # as recorded in executed notebooks: relative to the root
    name = paths.rel(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{name}: file not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{name}:{where} malformed YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{name}: top level must be a mapping of sections")
    try:
        return Params.model_validate(raw)
    except ValidationError as e:
        # an unknown key usually explains a "missing" one (a typo): report it first
        errs = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")
        first = errs[0]
        msg = first["msg"]
        if first["type"] == "extra_forbidden":
            msg = "unknown key (not in the parameters schema; check its spelling)"
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        raise ParamsError(f"{name}: key '{_key_path(first['loc'])}': {msg}{more}") from None


def section_name(notebook: str | Path) -> str:
    """`notebooks/01_data.ipynb` -> `data`."""
    stem = Path(notebook).stem
    m = re.fullmatch(r"\d+_(.+)", stem)
    if not m or m.group(1) not in SECTIONS:
        raise ParamsError(
            f"{notebook}: no params section for this notebook "
            f"(expected NN_<section>.ipynb with section in {SECTIONS})"
        )
    return m.group(1)


def section(params: Params, name: str) -> dict[str, Any]:
    """The flat dict a notebook receives: shared keys, then its own section."""
    if name not in SECTIONS:
        raise ParamsError(f"unknown params section {name!r} (known: {SECTIONS})")
    return {
        **params.shared.model_dump(mode="json"),
        **getattr(params, name).model_dump(mode="json"),
    }


def load_section(name: str, path: Path | str | None = None) -> dict[str, Any]:
    """Shortcut for notebooks: `params = load_section("data")`."""
    return section(load(path), name)


def write_stamps(params_file: Path | str | None, folder: Path) -> list[str]:
    """Write one JSON stamp per section; rewrite a stamp only if its section changed.

    Make depends on these stamps, so editing one section of params.yaml
    reruns only the notebook that uses it (shared keys are part of every stamp).
    """
    p = load(params_file)
    changed = []
    for name in SECTIONS:
        text = json.dumps(section(p, name), sort_keys=True, indent=1) + "\n"
        if write_if_changed(Path(folder) / f"{name}.json", text):
            changed.append(name)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.params")
    ap.add_argument("params_file", nargs="?", default=None)
    ap.add_argument("--stamps", type=Path, help="write per-section stamps into this folder")
    a = ap.parse_args(argv)
    try:
        if a.stamps:
            changed = write_stamps(a.params_file, a.stamps)
            if changed:
                print(f"params: sections changed: {', '.join(changed)}")
        else:
            load(a.params_file)
            print(f"{a.params_file or 'params.yaml'}: ok")
    except ParamsError as e:
        print(f"error: {e}", file=__import__("sys").stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
