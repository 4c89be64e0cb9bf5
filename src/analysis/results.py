"""The results registry: every number the paper quotes, recorded by the notebook
that computed it.

A notebook builds a `Registry`, records each quotable result, and saves it to
its output folder (`.build/out/results/<notebook>.json` in the build; sorted
keys, so the same results give the same bytes). `merge` combines them into
`.build/out/results.json`, published as `reports/results.json` with the paper. The paper and
the reviewer's check read only these files.

Provenance travels with the data: pass the rows a value was computed from
(frames read by `processed.read`, or selections of them) and the registry names
the raw files and source ids behind it::

    reg = Registry("02_ngo")
    counts = processed.read("ngo_counts")
    flagged = counts.query("quality != 'ok'")
    reg.record("ngo_flagged_implausible", len(flagged), flagged,
               "published counts flagged implausible", unit="values")

A helper that computes a value with its unit, interval or qualifier returns a
`Result` (e.g. `survey.item`), recorded as it is: `reg.record(key, result)`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import paths, processed
from analysis.io import write_if_changed


def _clean(v: Any) -> Any:
    """Plain JSON values: numpy scalars -> Python, floats rounded to 12 significant digits."""
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        v = v.item()
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"result value must be finite, got {v}")
        return float(f"{v:.12g}")
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _isna(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(v != v) or str(v) == "<NA>"
    except (TypeError, ValueError):
        return False


def _known_ids() -> set[str]:
    from analysis import data

    return data.source_ids()


def _ids_in_files(files: list[str]) -> list[str]:
    """Every source id used in the given raw files (fields marked sourceRef)."""
    import csv

    from analysis import data

    pkg = data.package()
    ids: set[str] = set()
    for f in files:
        res = next(r for r in pkg["resources"] if r["path"] == f)
        cols = [x["name"] for x in res["schema"]["fields"] if x.get("sourceRef")]
        with open(paths.RAW / f, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                for c in cols:
                    ids.update(p for p in row[c].split(";") if p)
    return sorted(ids)


Rows = pd.DataFrame | pd.Series
"""A tagged frame (from `processed.read`, or a selection of one) or one row of it."""

KINDS = ("count", "estimate", "text", "table")


@dataclass(frozen=True)
class Result:
    """A value ready to record: what a helper computed, with what it knows about it.

    `of` holds the rows the value was computed from (their raw files and source
    ids become the result's provenance); `sources` and `source_ids`, when set,
    name them explicitly instead. Fields left None are given (or defaulted) by
    `Registry.record`; its keyword arguments override them.

    >>> r = Result(48.1, unit="percent", decimals=1, of=(rows,), description="trust")
    >>> reg.record("key", r)
    48.1
    """

    value: Any
    unit: str | None = None
    of: tuple[Rows, ...] = ()
    description: str | None = None
    kind: str | None = None
    interval: tuple[float, float] | None = None
    interval_kind: str | None = None
    decimals: int | None = None
    qualifier: str | None = None
    sources: tuple[str, ...] | None = None
    source_ids: tuple[str, ...] | None = None


def infer_kind(value: Any) -> str:
    """The default kind of a value: "text" for a string, "count" for a whole
    number (or a list of them; years, counts, parameters), "estimate" otherwise.

    A float that is an exact published figure (a funding amount, an index
    value) is not inferred to be a count: say `kind="count"`."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, bool):
        raise ValueError("a result cannot be a bare True/False: record a text or a count")
    if isinstance(value, str):
        return "text"
    if isinstance(value, int):
        return "count"
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return "count"
    return "estimate"


def _as_rows(of: Rows | Sequence[Rows] | None) -> list[Rows]:
    if of is None:
        return []
    if isinstance(of, (pd.DataFrame, pd.Series)):
        return [of]
    return list(of)


def provenance(of: Rows | Sequence[Rows]) -> tuple[list[str], list[str]]:
    """(raw files, source ids) behind some rows: the union over the frames given.

    Raw files come from each frame's `attrs["raw_files"]` (set by
    `processed.read`); source ids are the distinct values of each frame's
    source-id columns (`attrs["source_columns"]`, default `source_id`), a
    `;`-separated list counting each id. An untagged frame is refused."""
    rows = _as_rows(of)
    if not rows:
        raise ValueError("no rows given")
    files = sorted({f for r in rows for f in processed.raw_files_of(r)})
    ids = sorted({i for r in rows for i in processed.source_ids_of(r)})
    return files, ids


@dataclass
class Registry:
    """The results of one notebook (`Registry("02_ngo")`), saved by `save`."""

    notebook: str
    results: dict[str, dict] = field(default_factory=dict)

    def record(
        self,
        key: str,
        value: Any,
        of: Rows | Sequence[Rows] | None = None,
        description: str | None = None,
        *,
        unit: str | None = None,
        sources: list[str] | None = None,
        source_ids: Sequence[str] | None = None,
        interval: tuple[float, float] | None = None,
        interval_kind: str | None = None,
        kind: str | None = None,
        decimals: int | None = None,
        qualifier: str | None = None,
    ) -> Any:
        """Record one result and return its value (so notebooks can display it).

        value: the number, text or list; or a `Result`, whose fields are used
              where the arguments here are not given.
        of: the rows the value was computed from: a frame read by
              `processed.read` (or a selection of it: query, iloc, sort...), one
              row of it, or a list of such frames. The result's `sources` are
              their raw files and its `source_ids` the ids in their source-id
              columns. Columns the data stage joined in from another table (the
              `population` and `per_10000` columns of `ngo_counts`) are not
              counted: pass that table too (`of=[rows, population]`).
        description: what the value is, in words (required).
        unit: required (here or in the `Result`).
        kind: "count" (exact, compared exactly by the reviewer check),
              "estimate" (model output, compared with a small relative tolerance),
              "text" (a label or verdict), "table" (rows, see `table`).
              Default: `infer_kind` (str -> text, whole numbers -> count, else
              estimate); an exact published float needs `kind="count"`.
        sources: raw files (data/raw/*.csv) the value was computed from;
              default: those of `of`. Overrides `of`'s files when both are given.
        source_ids: the data sources behind the value (cited by the paper);
              default: those in `of`, or without `of` every source id in the
              `sources` files. `[]` for a parameter (no data source behind it).
        decimals: how many decimals the paper prints (and its interval's bounds),
              the precision the data support; default: as recorded, at most four.
        qualifier: how the source qualifies the value ("more than", "almost",
              "about"); the paper prints it before the number.

        >>> reg.record("ngo_growth_pairs", len(rates), series, "pairs of years", unit="pairs")
        """
        if isinstance(of, str) and description is None:  # record(key, value, "description")
            of, description = None, of
        if isinstance(value, Result):
            res = value
            value = res.value
            of = of if of is not None else (list(res.of) or None)
            if sources is None and res.sources is not None:
                sources = list(res.sources)
            if source_ids is None and res.source_ids is not None:
                source_ids = list(res.source_ids)
            description = description if description is not None else res.description
            unit = unit if unit is not None else res.unit
            kind = kind if kind is not None else res.kind
            if interval is None and res.interval is not None:
                interval, interval_kind = res.interval, interval_kind or res.interval_kind
            decimals = decimals if decimals is not None else res.decimals
            qualifier = qualifier if qualifier is not None else res.qualifier
        if key in self.results:
            raise KeyError(f"result {key!r} recorded twice in {self.notebook}")
        if unit is None:
            raise ValueError(f"result {key!r}: no unit")
        if description is None:
            raise ValueError(f"result {key!r}: no description")
        kind = kind if kind is not None else infer_kind(value)
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        rows = _as_rows(of)
        if rows:
            of_files, of_ids = provenance(rows)
            sources = of_files if sources is None else sources
            source_ids = of_ids if source_ids is None else source_ids
        if sources is None:
            raise ValueError(
                f"result {key!r}: no provenance: pass the rows it was computed from "
                "(of=...) or sources=[raw files]"
            )
        for s in sources:
            if not (paths.RAW / s).exists():
                raise ValueError(f"result {key!r}: source file data/raw/{s} does not exist")
        ids = sorted(set(source_ids)) if source_ids is not None else _ids_in_files(sources)
        unknown = sorted(set(ids) - _known_ids())
        if unknown:
            raise ValueError(f"result {key!r}: unknown source ids {unknown}")
        entry = {
            "value": _clean(value),
            "unit": unit,
            "description": description,
            "sources": sorted(f"data/raw/{s}" for s in set(sources)),
            "kind": kind,
            "notebook": self.notebook,
            "source_ids": ids,
        }
        if decimals is not None:
            if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
                raise ValueError(f"result {key!r}: decimals must be a whole number >= 0")
            entry["decimals"] = decimals
        if qualifier:
            entry["qualifier"] = qualifier
        if interval is not None:
            lo, hi = (_clean(x) for x in interval)
            entry["interval"] = [lo, hi]
            entry["interval_kind"] = interval_kind or "confidence interval"
        self.results[key] = entry
        return value

    def parameter(
        self,
        key: str,
        value: Any,
        of: Rows | Sequence[Rows] | None = None,
        description: str | None = None,
        *,
        unit: str,
        sources: list[str] | None = None,
        kind: str | None = None,
    ) -> Any:
        """Record a parameter the paper quotes (a reference year, a threshold): no
        data source behind it (`source_ids` is empty); `of` or `sources` names the
        raw files it applies to."""
        return self.record(
            key, value, of, description, unit=unit, sources=sources, source_ids=[], kind=kind
        )

    def table(
        self,
        key: str,
        frame: pd.DataFrame,
        of: Rows | Sequence[Rows] | None = None,
        description: str | None = None,
        *,
        sources: list[str] | None = None,
        source_ids: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Record a small table (list of row dicts) for the paper to show as is;
        provenance as in `record` (`of`: the rows it was made from). Returns `frame`."""
        rows = [
            {k: (None if _isna(v) else _clean(v)) for k, v in row.items()}
            for row in frame.to_dict(orient="records")
        ]
        self.record(
            key,
            rows,
            of,
            description,
            unit="table",
            sources=sources,
            source_ids=source_ids,
            kind="table",
        )
        return frame

    def save(self, folder: Path = paths.RESULTS) -> None:
        """Write results/<notebook>.json in the run's output folder. Returns nothing
        on purpose: a path shown as a notebook's last output would differ between runs."""
        write_if_changed(Path(folder) / f"{self.notebook}.json", dumps(self.results))


def dumps(obj: Any) -> str:
    """The registry's JSON text: sorted keys, one space indent, a final newline."""
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def load(path: Path) -> dict[str, dict]:
    """A results file (one notebook's, or the merged results.json) as a dict."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
