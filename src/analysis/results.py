"""The results registry: every number the paper quotes, recorded by the notebook
that computed it.

A notebook builds a `Registry`, records each quotable result, and saves it to
its output folder (`.build/out/results/<notebook>.json` in the build; sorted
keys, so the same results give the same bytes). `merge` combines them into
`.build/out/results.json`, published as `reports/results.json` with the paper. The paper and
the reviewer's check read only these files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis import paths
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


@dataclass
class Registry:
    notebook: str
    results: dict[str, dict] = field(default_factory=dict)

    def record(
        self,
        key: str,
        value: Any,
        *,
        unit: str,
        description: str,
        sources: list[str],
        source_ids: list[str] | None = None,
        interval: tuple[float, float] | None = None,
        interval_kind: str | None = None,
        kind: str = "estimate",
        decimals: int | None = None,
        qualifier: str | None = None,
    ) -> Any:
        """Record one result and return its value (so notebooks can display it).

        kind: "count" (exact, compared exactly by the reviewer check),
              "estimate" (model output, compared with a small relative tolerance),
              "text" (a label or verdict), "table" (rows, see `table`).
        sources: raw files (data/raw/*.csv) the value was computed from.
        source_ids: the data sources behind the value (cited by the paper);
              default: every source id in those raw files.
        decimals: how many decimals the paper prints (and its interval's bounds),
              the precision the data support; default: as recorded, at most four.
        qualifier: how the source qualifies the value ("more than", "almost",
              "about"); the paper prints it before the number.
        """
        if key in self.results:
            raise KeyError(f"result {key!r} recorded twice in {self.notebook}")
        if kind not in ("count", "estimate", "text", "table"):
            raise ValueError(f"unknown kind {kind!r}")
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
            "sources": sorted(f"data/raw/{s}" for s in sources),
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

    def table(
        self,
        key: str,
        frame,
        *,
        description: str,
        sources: list[str],
        source_ids: list[str] | None = None,
    ):
        """Record a small table (list of row dicts) for the paper to show as is."""
        rows = [
            {k: (None if _isna(v) else _clean(v)) for k, v in row.items()}
            for row in frame.to_dict(orient="records")
        ]
        self.record(
            key,
            rows,
            unit="table",
            description=description,
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
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def load(path: Path) -> dict[str, dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
