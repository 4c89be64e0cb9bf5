"""Load and validate params.yaml.

Each notebook `NN_<section>.ipynb` gets `{**shared, **<section>}` as one dict
named `params`. Unknown keys, missing keys and wrong types stop with a message
naming the file and the key path, e.g.::

    params.yaml: key 'data.per_capita_denominator': Input should be a valid integer

Also rejected, with the line: a key or section given twice (YAML would silently
keep the last), an impossible date. Values that name something in the data (a
country, an index, a survey item) are checked against the raw tables when the
file is loaded: each such key declares where its values must exist, with
`in_data("table.column")`. The schema, one model per section, is in
`analysis/schema.py`.

The build runs each notebook on a snapshot of its section (`.build/params/
<section>.json`, written when make starts): `load_section` accepts such a
snapshot as well as a params.yaml.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, create_model
from pydantic.fields import FieldInfo

from analysis import paths
from analysis.schema import SECTION_MODELS as _SECTION_MODELS
from analysis.schema import SharedParams, Strict, in_data  # noqa: F401  (re-exported)


class ParamsError(ValueError):
    """Malformed or invalid parameters file."""


# the whole file: `shared` plus one section per registered model (analysis.schema)
Params = create_model(  # type: ignore[call-overload]
    "Params",
    __base__=Strict,
    shared=(SharedParams, ...),
    **{name: (model, ...) for name, model in _SECTION_MODELS.items()},
)
SECTIONS = list(_SECTION_MODELS)


def _key_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice and names impossible dates."""


def _mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ParamsError(
                f"line {line}: key '{key}' given twice (first on line {seen[key]}); "
                "YAML would silently keep the last one"
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


def _timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as e:
        raise ParamsError(
            f"line {node.start_mark.line + 1}: '{node.value}' is not a valid date ({e})"
        ) from None


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def _resolve(path: Path | str | None) -> Path:
    path = Path(path) if path else paths.PARAMS
    if not path.is_absolute() and not path.exists():
        path = paths.ROOT / path  # as recorded in executed notebooks: relative to the root
    return path


def read_yaml(path: Path | str | None = None) -> dict:
    """The parsed file, refusing duplicate keys, impossible dates and malformed YAML."""
    path = _resolve(path)
    name = paths.rel(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise ParamsError(f"{name}: is a folder, not a parameters file") from None
    except PermissionError:
        raise ParamsError(f"{name}: permission denied (cannot read it)") from None
    except UnicodeDecodeError as e:
        line = text_line_of(path.read_bytes(), e.start)
        raise ParamsError(f"{name}: line {line}: not UTF-8 text ({e.reason})") from None
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except ParamsError as e:
        raise ParamsError(f"{name}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{name}:{where} malformed YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{name}: top level must be a mapping of sections")
    return raw


def text_line_of(blob: bytes, offset: int) -> int:
    """The 1-based line number of a byte offset in a file's bytes."""
    return blob[:offset].count(b"\n") + 1


def line_of(text: str, loc: tuple) -> int | None:
    """The 1-based line of the key at `loc` (a path of keys) in a YAML text; for a key
    that is missing, the line of the nearest mapping above it that exists."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for key in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        hit = next(((k, v) for k, v in node.value if k.value == str(key)), None)
        if hit is None:
            break
        line, node = hit[0].start_mark.line + 1, hit[1]
    return line


def _validation_message(
    name: str, e: ValidationError, prefix: tuple = (), text: str | None = None
) -> ParamsError:
    """One line: the file, the line and key of the first problem and what is wrong, then
    the others' keys (an unknown key first: it usually explains a "missing" one)."""
    errs = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")

    def one(err: Any) -> tuple[str, str]:
        loc = prefix + tuple(err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not in the parameters schema; check its spelling)"
        line = line_of(text, loc) if text is not None else None
        where = f"line {line}: " if line else ""
        return f"{where}key '{_key_path(loc)}'", msg

    key, msg = one(errs[0])
    also = ""
    if len(errs) > 1:
        others = "; ".join(f"{k}: {m}" for k, m in map(one, errs[1:4]))
        more = f"; and {len(errs) - 4} more" if len(errs) > 4 else ""
        also = f" (also {others}{more})"
    return ParamsError(f"{name}: {key}: {msg}{also}")


def load(path: Path | str | None = None, check_data: bool = True) -> Any:
    """Parse and validate a parameters file (default: the project's params.yaml).

    With `check_data`, values declared with `in_data` must exist in data/raw.
    """
    path = _resolve(path)
    name = paths.rel(path)
    raw = read_yaml(path)
    try:
        p = Params.model_validate(raw)
    except ValidationError as e:
        raise _validation_message(name, e, text=path.read_text(encoding="utf-8")) from None
    if check_data:
        for sec in ["shared", *SECTIONS]:
            check_against_data(getattr(p, sec), name, sec)
    return p


def _column_values(where: str) -> set[str]:
    """Values of one raw column (plain csv reading: cheap, no validation)."""
    import csv

    from analysis import data

    table, _, column = where.partition(".")
    if table == "sources":
        return data.source_ids()
    if table == "tables":
        return {r["name"] for r in data.package()["resources"]}
    res = data.resource(table)
    with open(paths.RAW / res["path"], newline="", encoding="utf-8") as fh:
        return {row.get(column) or "" for row in csv.DictReader(fh)}


def check_against_data(model: BaseModel, name: str, section_name_: str) -> None:
    """Every value of a field declared with `in_data` exists where it says."""
    cache: dict[str, set[str]] = {}
    for key, info in type(model).model_fields.items():
        extra = info.json_schema_extra if isinstance(info, FieldInfo) else None
        if not isinstance(extra, dict) or "in_data" not in extra:
            continue
        where, match = str(extra["in_data"]), extra.get("match", "exact")
        value = getattr(model, key)
        try:
            known = cache.setdefault(where, _column_values(where))
        except (OSError, KeyError, UnicodeDecodeError):
            continue  # the data stage reports unreadable data, with its own message
        for v in value if isinstance(value, list) else [value]:
            found = any(k.startswith(v) for k in known) if match == "prefix" else v in known
            if not found:
                close = sorted(k for k in known if k[:3].lower() == str(v)[:3].lower())[:5]
                hint = f" (similar: {', '.join(close)})" if close else ""
                place = (
                    "the sources of datapackage.json"
                    if where.startswith("sources")
                    else where.replace(".", " column ", 1)
                )
                raise ParamsError(
                    f"{name}: key '{section_name_}.{key}': value '{v}' does not exist in "
                    f"{place}"
                    f"{' (as a prefix)' if match == 'prefix' else ''}{hint}"
                )


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


def section(params: Any, name: str) -> dict[str, Any]:
    """The flat dict a notebook receives: shared keys, then its own section."""
    if name not in SECTIONS:
        raise ParamsError(f"unknown params section {name!r} (known: {SECTIONS})")
    return {
        **params.shared.model_dump(mode="json"),
        **getattr(params, name).model_dump(mode="json"),
    }


def load_section(name: str, path: Path | str | None = None) -> dict[str, Any]:
    """What a notebook calls: `params = load_section("data", params_file)`.

    `path` is a params.yaml-like file (default: the project's params.yaml), or a
    section snapshot `.build/params/<section>.json` (what the build passes).
    Run by papermill, parameters other than `params_file` are refused with a
    message saying what to use instead (they would be silently ignored).
    """
    _refuse_loose_papermill_parameters(name)
    p = _resolve(path)
    if p.suffix == ".json":
        return load_snapshot(name, p)
    return section(load(p), name)


def load_snapshot(name: str, path: Path) -> dict[str, Any]:
    """A section snapshot written by `write_stamps`, validated again."""
    label = paths.rel(path)
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{label}: params snapshot not found (run through make)") from None
    except json.JSONDecodeError as e:
        raise ParamsError(f"{label}: line {e.lineno}: malformed JSON ({e.msg})") from None
    shared_keys = set(SharedParams.model_fields)
    own = {k: v for k, v in values.items() if k not in shared_keys}
    shared = {k: v for k, v in values.items() if k in shared_keys}
    try:
        shared_model = SharedParams.model_validate_json(json.dumps(shared))
        model = _SECTION_MODELS[name].model_validate_json(json.dumps(own))
    except ValidationError as e:
        raise _validation_message(label, e, (name,)) from None
    return {**shared_model.model_dump(mode="json"), **model.model_dump(mode="json")}


def _refuse_loose_papermill_parameters(section_: str) -> None:
    """papermill -p KEY VALUE injects a variable the notebook never reads: refuse it."""
    import sys

    ip = sys.modules.get("IPython")
    shell = ip.get_ipython() if ip is not None and hasattr(ip, "get_ipython") else None
    history = getattr(shell, "user_ns", {}).get("In") if shell is not None else None
    if not history or len(history) < 2:
        return
    for src in reversed(history[:-1][-3:]):
        if src.startswith("# Parameters\n") or src.startswith("# Parameters\r"):
            names = re.findall(r"^([A-Za-z_]\w*)\s*=", src, re.M)
            loose = [n for n in names if n != "params_file"]
            if loose:
                raise ParamsError(
                    f"papermill parameter(s) {', '.join(loose)} are not read by this notebook: "
                    f"parameters come from a file. Put them in a copy of params.yaml and run "
                    f"`papermill -p params_file other.yaml ...` (README, 'Interactive use')"
                )
            return
