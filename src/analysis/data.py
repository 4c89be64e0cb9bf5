"""Load and validate the raw data package.

`data/raw/datapackage.json` (a Frictionless Data Package) is the single
description of every raw table: fields, types, units, constraints, primary and
foreign keys, sha256 of each file, and the `sources` every source id must
resolve to. This module turns each table's description into a pandera schema,
verifies the file's checksum, validates it, and returns a typed frame.

Any problem stops with one `DataValidationError` naming the file, the row, the
column and the rule broken, e.g.::

    data/raw/population.csv, row 3 (line 4), column 'population': value '-5'
    breaks rule 'minimum 1000000'

Usage::

    from analysis import data
    counts = data.load("ngo_counts")          # typed, validated DataFrame
    tables = data.load_all()                  # every resource, in package order
    data.citation("ngo_S01")                  # full citation of one source
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import paths

# pandera is imported lazily (inside schema building): loading is the only
# place that needs it, and it costs ~0.5 s of import time.

_DTYPES = {"integer": "Int64", "number": "float64", "string": "string", "boolean": "boolean"}


class DataValidationError(ValueError):
    """Bad raw input. The message names file, row, column and rule."""

    def __init__(
        self,
        file: str,
        rule: str,
        row: int | None = None,
        column: str | None = None,
        value: Any = None,
        more: int = 0,
    ):
        self.file, self.rule, self.row, self.column, self.value = file, rule, row, column, value
        where = [file]
        if row == 0:
            where.append("header (line 1)")
        elif row is not None:
            where.append(f"row {row} (line {row + 1})")
        if column is not None:
            where.append(f"column '{column}'")
        if value is None:
            what = f"breaks rule '{rule}'"
        elif pd.isna(value):
            what = f"empty value breaks rule '{rule}'"
        else:
            value = value.item() if hasattr(value, "item") else value
            what = f"value '{value}' breaks rule '{rule}'"
        msg = ", ".join(where) + ": " + what
        if more:
            msg += f" (and {more} more problem{'s' if more > 1 else ''} in this file)"
        super().__init__(msg)


# ------------------------------------------------------------------ package
@cache
def _package_cached(path: str, mtime_ns: int) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataValidationError(
            paths.rel(Path(path)), f"valid JSON ({e.msg})", row=e.lineno
        ) from None


def package(path: Path = paths.DATAPACKAGE) -> dict:
    """The parsed datapackage.json (cached while the file is unchanged)."""
    path = Path(path)
    if not path.exists():
        raise DataValidationError(paths.rel(path), "datapackage.json exists")
    return _package_cached(str(path), path.stat().st_mtime_ns)


def resource(name: str, pkg: dict | None = None) -> dict:
    """The datapackage.json entry of one table (`resource("ngo_counts")`): path,
    schema, hash, sources; KeyError naming the known tables otherwise."""
    pkg = pkg or package()
    for res in pkg["resources"]:
        if res["name"] == name:
            return res
    known = ", ".join(r["name"] for r in pkg["resources"])
    raise KeyError(f"no resource {name!r} in datapackage.json (known: {known})")


def source_ids(pkg: dict | None = None) -> set[str]:
    """Every source id the data package cites (the ids a result may name)."""
    return {s["id"] for s in (pkg or package())["sources"]}


def citation(source_id: str, pkg: dict | None = None) -> dict:
    """The full citation entry of one source id."""
    for s in (pkg or package())["sources"]:
        if s["id"] == source_id:
            return s
    raise KeyError(f"unknown source id {source_id!r}")


def sha256(path: Path) -> str:
    """The sha256 hex digest of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def verify_checksum(res: dict, base: Path) -> Path:
    """Check one resource's file under `base` against its recorded sha256; return
    its path, or raise DataValidationError naming the file (missing or changed)."""
    path = base / res["path"]
    name = paths.rel(path)
    if not path.exists():
        raise DataValidationError(name, "file listed in datapackage.json exists")
    expected = res.get("hash", "").removeprefix("sha256:")
    got = sha256(path)
    if got != expected:
        raise DataValidationError(
            name,
            f"sha256 matches datapackage.json (expected {expected[:12]}…, got {got[:12]}…);"
            " raw data is immutable: if the change is deliberate, run `make checksums`",
        )
    return path


# ------------------------------------------------------------------ schema
def _rule_text(check: str) -> str:
    """Turn pandera's check names into the rule as stated in datapackage.json."""
    m = re.fullmatch(r"coerce_dtype\('(.+)'\)|dtype\('(.+)'\)", check)
    if m:
        inv = {v: k for k, v in _DTYPES.items()}
        return f"type {inv.get(m.group(1) or m.group(2), m.group(1) or m.group(2))}"
    return {
        "multiple_fields_uniqueness": "primary key is unique",
        "field_uniqueness": "unique",
        "not_nullable": "required (no empty value)",
        "column_in_dataframe": "column present",
        "column_in_schema": "no column outside the schema",
        "column_ordered": "columns in schema order",
    }.get(check, check)


def _checks(field: dict, refs: dict[str, set[str]]) -> list:
    import pandera.pandas as pa

    c = field.get("constraints", {})
    out = []
    if "minimum" in c:
        out.append(pa.Check.ge(c["minimum"], error=f"minimum {c['minimum']}"))
    if "maximum" in c:
        out.append(pa.Check.le(c["maximum"], error=f"maximum {c['maximum']}"))
    if "enum" in c:
        out.append(pa.Check.isin(c["enum"], error=f"one of {c['enum']}"))
    if "pattern" in c:
        out.append(pa.Check.str_matches(c["pattern"], error=f"matches {c['pattern']}"))
    kind = field.get("sourceRef")
    if kind:
        ids = refs["__sources__"]
        if kind == "list":
            fn: Callable = lambda s: s.map(lambda v: all(p in ids for p in v.split(";")))  # noqa: E731
        else:
            fn = lambda s: s.isin(ids)  # noqa: E731
        out.append(
            pa.Check(
                fn,
                element_wise=False,
                error="source id resolves to an entry of datapackage.json sources",
            )
        )
    fk = refs.get(f"fk:{field['name']}")
    if fk is not None:
        allowed, rule = fk
        out.append(pa.Check.isin(sorted(allowed), error=f"foreign key: {rule}"))
    return out


def schema(res: dict, refs: dict) -> Any:
    """Build the pandera DataFrameSchema of one resource from its Table Schema."""
    import pandera.pandas as pa

    sch = res["schema"]
    cols = {}
    for field in sch["fields"]:
        c = field.get("constraints", {})
        cols[field["name"]] = pa.Column(
            _DTYPES[field["type"]],
            checks=_checks(field, refs),
            coerce=True,
            nullable=not c.get("required", False),
            unique=c.get("unique", False),
            description=field.get("description"),
            title=field.get("unit"),
        )
    pk = sch.get("primaryKey") or None
    return pa.DataFrameSchema(
        cols,
        unique=pk,
        strict=True,
        ordered=True,
        report_duplicates="exclude_first",
        name=res["name"],
    )


# ------------------------------------------------------------------ loading
def _decode(path: Path, blob: bytes) -> str:
    name = paths.rel(path)
    if blob.startswith(b"\xef\xbb\xbf"):
        raise DataValidationError(
            name,
            "UTF-8 without a byte-order mark (saved by a spreadsheet as 'CSV UTF-8 with BOM'? "
            "save it as plain UTF-8 CSV)",
        )
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as e:
        line = blob[: e.start].count(b"\n") + 1
        raise DataValidationError(
            name,
            f"UTF-8 encoding (byte 0x{blob[e.start]:02x} is not UTF-8: saved as Latin-1 or "
            "Windows-1252 by a spreadsheet? save it as UTF-8 CSV)",
            row=line - 1 if line > 1 else None,
        ) from None


def _field_count_rule(header: list[str], row: list[str]) -> tuple[str, str | None]:
    """Why a row has the wrong number of fields, with a hint; and the column where it starts."""
    n, k = len(header), len(row)
    if k == n + 1 and row[-1] == "":
        return f"{n} fields like the header, got {k} (a trailing comma?)", None
    if k > n:
        # a number split by unquoted thousands separators: 17,154,054 -> 17 | 154 | 054
        for i in range(1, k):
            if re.fullmatch(r"-?\d{1,3}", row[i - 1]) and re.fullmatch(r"\d{3}", row[i]):
                j = i
                while j + 1 < k and re.fullmatch(r"\d{3}", row[j + 1]):
                    j += 1
                col = header[min(i - 1, n - 1)]
                return (
                    f"{n} fields like the header, got {k} (an unquoted thousands separator "
                    f"in '{','.join(row[i - 1 : j + 1])}'? write digits only, or quote the value)",
                    col,
                )
        return (
            f"{n} fields like the header, got {k} (a comma in an unquoted text? "
            "put the value in double quotes)",
            None,
        )
    return f"{n} fields like the header, got {k} (a missing value needs an empty field)", None


def _read_csv(path: Path, res: dict) -> pd.DataFrame:
    """Read a raw CSV as text, checking its shape row by row before pandas sees it."""
    name = paths.rel(path)
    blob = path.read_bytes()
    if not blob.strip():
        raise DataValidationError(name, "file is not empty (needs a header and rows)")
    text = _decode(path, blob)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        expected = [f["name"] for f in res["schema"]["fields"]]
        if len(header) == 1 and len(expected) > 1 and ";" in header[0]:
            raise DataValidationError(
                name,
                "comma-separated fields (the header is separated by ';': saved by a "
                "spreadsheet with ';' as separator? save it with ',' and '.' as decimal point)",
                row=0,
            )
        if header and header[-1] == "" and len(header) > 1:
            raise DataValidationError(name, "no empty column name (a trailing comma?)", row=0)
        rows, row_no = [], 0
        for fields in reader:
            if not fields:
                continue  # blank line
            row_no += 1
            if len(fields) != len(header):
                rule, col = _field_count_rule(header, fields)
                raise DataValidationError(name, rule, row=row_no, column=col)
            rows.append(fields)
    except csv.Error as e:
        raise DataValidationError(
            name, f"well-formed CSV ({e})", row=max(reader.line_num - 1, 0)
        ) from None
    if not rows:
        raise DataValidationError(name, "has at least one data row")
    df = pd.DataFrame(rows, columns=header, dtype=object)
    df = df.mask(df == "")
    for field in res["schema"]["fields"]:
        if field["type"] == "boolean" and field["name"] in df:
            df[field["name"]] = df[field["name"]].map(
                lambda v: {"true": True, "false": False}.get(v, v), na_action="ignore"
            )
    return df


def _hint(rule: str, value: Any) -> str:
    """Spreadsheet habits behind a type error."""
    v = str(value)
    if rule in ("type integer", "type number"):
        if re.fullmatch(r"-?\d{1,3}([,\u00a0 ]\d{3})+", v):
            return f"{rule} (a thousands separator? write digits only)"
        if re.fullmatch(r"-?\d+,\d+", v):
            return f"{rule} (a decimal comma? write '.' as decimal point)"
    return rule


def _first_failure(name: str, err: Any) -> DataValidationError:
    """One message from pandera's failure cases: the earliest row, then column order."""
    fc = err.failure_cases.copy()
    structural = fc[
        fc["index"].isna()
        & fc["check"].isin(["column_in_dataframe", "column_in_schema", "column_ordered"])
    ]
    if not structural.empty:
        r = structural.iloc[0]
        col = r["failure_case"]
        rule = _rule_text(r["check"])
        return DataValidationError(name, rule, column=str(col), more=len(fc) - 1)
    rows = fc[fc["index"].notna()].copy()
    if rows.empty:  # a failure without row (should not happen): report it plainly
        r = fc.iloc[0]
        return DataValidationError(name, _rule_text(str(r["check"])), column=r["column"])
    # type errors first: they explain later check errors on the same cell
    rows["prio"] = ~rows["check"].astype(str).str.startswith(("coerce_dtype", "dtype"))
    rows = rows.sort_values(["index", "prio"], kind="stable")
    r = rows.iloc[0]
    # distinct problems: one per (row, column)
    more = len(rows.drop_duplicates(["index", "column"])) - 1
    column = r["column"] if isinstance(r["column"], str) else None
    if r["check"] == "multiple_fields_uniqueness":
        column = "+".join(err.schema.unique) if getattr(err, "schema", None) else column
    return DataValidationError(
        name,
        _hint(_rule_text(str(r["check"])), r["failure_case"]),
        row=int(r["index"]) + 1,
        column=column,
        value=r["failure_case"],
        more=more,
    )


def load(
    name: str,
    base: Path | None = None,
    pkg: dict | None = None,
    _loaded: dict | None = None,
    check_hash: bool = True,
) -> pd.DataFrame:
    """Load one raw table: checksum, schema validation, typed frame.

    `base` is the folder holding datapackage.json and the CSVs (default data/raw).
    """
    import pandera.pandas as pa

    base = Path(base) if base else paths.RAW
    pkg = pkg or package(base / "datapackage.json")
    _loaded = {} if _loaded is None else _loaded
    res = resource(name, pkg)
    try:
        path = verify_checksum(res, base) if check_hash else base / res["path"]
    except DataValidationError:
        if not (base / res["path"]).exists():
            raise
        # a changed file: its first break of the schema (file, row, column and rule)
        # says more than its checksum; only a valid one is refused for the checksum
        load(name, base, pkg, _loaded, check_hash=False)
        raise
    if not path.exists():
        raise DataValidationError(paths.rel(path), "file listed in datapackage.json exists")
    refs: dict[str, Any] = {"__sources__": source_ids(pkg)}
    for fk in res["schema"].get("foreignKeys", []):
        ref = fk["reference"]
        if ref["resource"] not in _loaded:
            _loaded[ref["resource"]] = load(ref["resource"], base, pkg, _loaded, check_hash)
        refs[f"fk:{fk['fields']}"] = (
            set(_loaded[ref["resource"]][ref["fields"]].dropna()),
            f"value present in {ref['resource']}.{ref['fields']}",
        )
    df = _read_csv(path, res)
    try:
        out = schema(res, refs).validate(df, lazy=True)
    except pa.errors.SchemaErrors as e:
        raise _first_failure(paths.rel(path), e) from None
    return out.reset_index(drop=True)


def load_all(base: Path | None = None) -> dict[str, pd.DataFrame]:
    """Every resource of the package, validated, in package order."""
    base = Path(base) if base else paths.RAW
    pkg = package(base / "datapackage.json")
    loaded: dict[str, pd.DataFrame] = {}
    for res in pkg["resources"]:
        if res["name"] not in loaded:
            loaded[res["name"]] = load(res["name"], base, pkg, loaded)
    unused = source_ids(pkg) - _used_source_ids(pkg, loaded)
    if unused:
        raise DataValidationError(
            paths.rel(base / "datapackage.json"),
            "every entry of sources is used by some table",
            column="sources",
            value=sorted(unused)[0],
            more=len(unused) - 1,
        )
    return {r["name"]: loaded[r["name"]] for r in pkg["resources"]}


def _used_source_ids(pkg: dict, tables: dict[str, pd.DataFrame]) -> set[str]:
    used: set[str] = set()
    for res in pkg["resources"]:
        for f in res["schema"]["fields"]:
            if f.get("sourceRef"):
                for v in tables[res["name"]][f["name"]].dropna():
                    used.update(v.split(";"))
    return used


# ------------------------------------------------------------------ maintenance
def update_checksums(base: Path = paths.RAW, validate: bool = True) -> list[str]:
    """Record hash and bytes of every changed resource in datapackage.json (deliberate step).

    Each changed file is validated first (schema, keys, source ids, ignoring the
    old checksum); an invalid file is not recorded, and the first problem is raised.
    """
    dp_path = base / "datapackage.json"
    pkg = json.loads(dp_path.read_text(encoding="utf-8"))
    changed, problems = [], []
    for res in pkg["resources"]:
        p = base / res["path"]
        if not p.exists():
            raise DataValidationError(paths.rel(p), "file listed in datapackage.json exists")
        new = "sha256:" + sha256(p)
        if res.get("hash") == new and res.get("bytes") == p.stat().st_size:
            continue
        try:
            if validate:
                load(res["name"], base, pkg, {}, check_hash=False)
        except DataValidationError as e:
            problems.append(e)
            continue
        changed.append(res["path"])
        res["hash"], res["bytes"] = new, p.stat().st_size
    from analysis.io import write_if_changed

    write_if_changed(dp_path, json.dumps(pkg, indent=2, ensure_ascii=False) + "\n")
    if problems:
        first = problems[0]
        if len(problems) > 1:
            first.args = (f"{first} (and {len(problems) - 1} more invalid file(s))",)
        raise first
    return changed
