"""The data stage: validated raw tables -> tidy processed tables.

Pure functions build the frames; `write` stores them in data/processed/,
rewriting a file only when its bytes change (so make does not rerun the
stages downstream of an unchanged table), plus a manifest recording each
processed file's sha256 and the raw files it was made from.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis import data, paths
from analysis.io import write_if_changed


def ngo_counts_per_capita(counts: pd.DataFrame, population: pd.DataFrame, per: int) -> pd.DataFrame:
    """Add population and NGOs per `per` people (by reference year).

    Rows whose year has no population figure keep an empty rate. The rate of a
    lower-bound count is itself a lower bound (column `bound` carries over).
    """
    out = counts.merge(
        population[["year", "population"]], on="year", how="left", validate="many_to_one"
    )
    rate = out["count"].astype("Float64") / out["population"].astype("Float64") * per
    out[f"per_{per}"] = rate.round(4)
    return out


def sources_table(pkg: dict) -> pd.DataFrame:
    """The bibliography of the data package as a flat table."""
    cols = [
        "id",
        "publisher",
        "title",
        "date",
        "path",
        "kind",
        "repository",
        "commit",
        "file",
        "doi",
        "accessed",
        "note",
    ]
    rows = [{c: s.get(c) for c in cols} | {"licence": s["licence"]["name"]} for s in pkg["sources"]]
    return pd.DataFrame(rows).rename(columns={"id": "source_id", "path": "url"})


def build(
    tables: dict[str, pd.DataFrame], params: dict, pkg: dict
) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """Return {processed file name: (frame, raw resources it was made from)}."""
    out: dict[str, tuple[pd.DataFrame, list[str]]] = {
        f"{name}.csv": (df, [name]) for name, df in tables.items() if name != "ngo_counts"
    }
    out["ngo_counts.csv"] = (
        ngo_counts_per_capita(
            tables["ngo_counts"], tables["population"], params["per_capita_denominator"]
        ),
        ["ngo_counts", "population"],
    )
    out["sources.csv"] = (sources_table(pkg), [])
    return dict(sorted(out.items()))


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def write(
    built: dict[str, tuple[pd.DataFrame, list[str]]], pkg: dict, folder: Path | None = None
) -> list[str]:
    """Write every processed table and the manifest; return the files rewritten.

    Default folder: the run's output folder (the build's staging folder, published
    into data/processed/ when the notebook succeeds; scratch/outputs/processed/
    for runs outside the build)."""
    folder = Path(folder) if folder else paths.PROCESSED_OUT
    raw_hash = {r["name"]: r["hash"].removeprefix("sha256:") for r in pkg["resources"]}
    manifest, changed = {}, []
    for name, (df, inputs) in built.items():
        blob = to_csv_bytes(df)
        if write_if_changed(folder / name, blob):
            changed.append(name)
        manifest[name] = {
            "rows": len(df),
            "sha256": data.sha256(folder / name),
            "from": {f"data/raw/{i}.csv": raw_hash[i] for i in inputs},
        }
    if write_if_changed(
        folder / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    ):
        changed.append("manifest.json")
    return changed


def read(name: str, folder: Path | None = None) -> pd.DataFrame:
    """Read a processed table with the types of its raw schema (Int64, float, string).

    Columns added by the data stage (e.g. `per_10000`) are read as numbers.
    """
    folder = Path(folder) if folder else paths.PROCESSED
    path = folder / f"{name}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{paths.rel(path)} is missing: run `make data` first")
    paths.note_read(path)
    df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)
    types = {}
    try:
        res = data.resource(name)
        types = {f["name"]: f["type"] for f in res["schema"]["fields"]}
    except KeyError:
        pass
    for col in df.columns:
        t = types.get(col)
        if t == "integer":
            df[col] = pd.to_numeric(df[col]).astype("Int64")
        elif t == "number" or (t is None and col.startswith(("per_", "population"))):
            df[col] = pd.to_numeric(df[col]).astype("float64")
        elif t == "boolean":
            df[col] = df[col].map({"True": True, "False": False}).astype("boolean")
    return df
