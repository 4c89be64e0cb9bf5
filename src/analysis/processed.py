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
    """The bytes a processed table is stored as (no index, LF line ends, UTF-8)."""
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
    """Read a processed table with the types of its raw schema (Int64, float, string),
    tagged with its provenance (see `tag`).

    Columns added by the data stage (e.g. `per_10000`) are read as numbers.
    `df.attrs["raw_files"]` names the raw files whose rows the table holds (its
    own `data/raw/<name>.csv`; for a table with no raw counterpart, what the
    manifest says it was made from), `df.attrs["joined_files"]` the raw files
    whose columns the data stage joined in (for `ngo_counts`: `population.csv`,
    behind `population` and `per_10000`), and `df.attrs["source_columns"]` the
    columns holding source ids. The attrs follow the rows through `query`,
    boolean selection, `sort_values`, `set_index`, `iloc` and `assign`, so
    `Registry.record(key, value, rows, ...)` can name the files and source ids
    behind a value.

    >>> counts = read("ngo_counts")
    >>> counts.attrs["raw_files"], counts.attrs["joined_files"]
    (['ngo_counts.csv'], ['population.csv'])
    """
    folder = Path(folder) if folder else paths.PROCESSED
    path = folder / f"{name}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{paths.rel(path)} is missing: run `make data` first")
    paths.note_read(path)
    df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)
    types = {}
    source_columns: list[str] = []
    try:
        res = data.resource(name)
        types = {f["name"]: f["type"] for f in res["schema"]["fields"]}
        source_columns = [f["name"] for f in res["schema"]["fields"] if f.get("sourceRef")]
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
    made_from = _made_from(folder, f"{name}.csv")
    own = f"{name}.csv"
    if (paths.RAW / own).exists():
        rows_from, joined = [own], [f for f in made_from if f != own]
    else:
        rows_from, joined = made_from, []
    if not source_columns and "source_id" in df.columns:
        source_columns = ["source_id"]
    return tag(df, rows_from, source_columns, joined)


def _made_from(folder: Path, file: str) -> list[str]:
    """The raw files (names in data/raw/) the manifest says `file` was made from."""
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return []
    entry = json.loads(manifest.read_text(encoding="utf-8")).get(file, {})
    return sorted(f.removeprefix("data/raw/") for f in entry.get("from", {}))


def tag(
    df: pd.DataFrame,
    raw_files: list[str],
    source_columns: list[str] | None = None,
    joined_files: list[str] | None = None,
) -> pd.DataFrame:
    """Mark `df` (in place, and return it) as made from `raw_files` (names in
    data/raw/), its source ids in `source_columns` (default: `source_id` if
    present). `processed.read` calls it; a helper that builds a new frame from
    tagged inputs calls `derived` instead."""
    df.attrs["raw_files"] = sorted(set(raw_files))
    df.attrs["source_columns"] = list(
        source_columns
        if source_columns is not None
        else [c for c in ("source_id",) if c in df.columns]
    )
    df.attrs["joined_files"] = sorted(set(joined_files or []))
    return df


def derived(out: pd.DataFrame, *inputs: pd.DataFrame) -> pd.DataFrame:
    """Tag `out` as made from the union of the raw files of `inputs` (frames read
    by `read`, or derived from them); its source-id columns are those of the
    inputs that `out` still has. Untagged inputs add nothing. Returns `out`."""
    files = {f for i in inputs for f in i.attrs.get("raw_files", [])}
    joined = {f for i in inputs for f in i.attrs.get("joined_files", [])}
    cols = [c for i in inputs for c in i.attrs.get("source_columns", []) if c in out.columns]
    return tag(out, sorted(files), list(dict.fromkeys(cols)), sorted(joined - files))


def raw_files_of(frame: pd.DataFrame | pd.Series) -> list[str]:
    """The raw files (names in data/raw/) a tagged frame or row was made from."""
    if "raw_files" not in frame.attrs:
        raise ValueError(
            "these rows carry no provenance: read them with processed.read (or tag them "
            "with processed.tag / processed.derived), or pass sources= and source_ids="
        )
    return list(frame.attrs["raw_files"])


def source_ids_of(frame: pd.DataFrame | pd.Series) -> list[str]:
    """Distinct source ids in a frame's (or one row's) source-id columns; a
    `;`-separated list (e.g. `source_ids` of women_parliament_tiers) counts each id."""
    cols = frame.attrs.get("source_columns") or ["source_id"]
    values: list = []
    if isinstance(frame, pd.Series):
        if frame.name in cols:  # one source-id column
            values = list(frame)
        else:  # one row
            values = [frame[c] for c in cols if c in frame.index]
    else:
        for c in cols:
            if c in frame.columns:
                values.extend(frame[c])
    ids = {p.strip() for v in values if isinstance(v, str) for p in v.split(";")}
    return sorted(i for i in ids if i)
