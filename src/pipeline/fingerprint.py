"""What each build output was made from, and whether that still holds.

A fingerprint is a small JSON record: the sha256 of every input of a stage (its
notebook snapshot, its params snapshot, the processed tables it reads, the
`analysis` sources, requirements.lock and the environment snapshot) and of every
output it made. The runner writes one per notebook
(`.build/out/provenance/<notebook>.json`); the paper stage checks them all
against the current files before it publishes anything, and publishes them with
the paper as `reports/provenance.json`. Hashing a few dozen small files keeps
the check cheap.

This module also writes the build's snapshots (rewritten only when their content
changes, so make's dates stay meaningful):

- `.build/notebooks/<stage>.ipynb`: the notebook without outputs, execution
  counts, volatile metadata or cell ids, so that opening and autosaving it in
  JupyterLab changes nothing make sees;
- `.build/env.json`: the package versions installed in the environment (read
  from the dist-info folders, no imports), compared with requirements.lock.
"""

from __future__ import annotations

import hashlib
import json
import re
import sysconfig
from pathlib import Path

from analysis import paths
from analysis.io import write_if_changed

NB_SNAPSHOTS = paths.BUILD / "notebooks"
ENV_SNAPSHOT = paths.BUILD / "env.json"
PROVENANCE = paths.BUILD_OUT / "provenance"
STAGE = re.compile(r"(\d\d)_([a-z][a-z0-9_]*)\.ipynb")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def hashes(files: list[str] | list[Path]) -> dict[str, str]:
    """{path relative to the root: sha256} of the files that exist."""
    out = {}
    for f in files:
        p = Path(f) if Path(f).is_absolute() else paths.ROOT / f
        if p.is_file() and p.name != ".installed":
            out[paths.rel(p)] = sha256(p)
    return dict(sorted(out.items()))


# ------------------------------------------------------------------ stages
def stages(folder: Path | None = None) -> list[Path]:
    """The build's stages: notebooks/NN_<section>.ipynb with a params section."""
    from analysis.params import SECTIONS

    folder = folder or paths.NOTEBOOKS
    return sorted(
        p
        for p in folder.glob("*.ipynb")
        if (m := STAGE.fullmatch(p.name)) and m.group(2) in SECTIONS
    )


def not_stages(folder: Path | None = None) -> list[Path]:
    folder = folder or paths.NOTEBOOKS
    return sorted(set(folder.glob("*.ipynb")) - set(stages(folder)))


def normalise_notebook(nb: dict) -> dict:
    """Only what defines the computation: cell types, sources and tags, the kernel."""
    cells = []
    for i, c in enumerate(nb.get("cells", [])):
        src = c.get("source", "")
        cell = {
            "cell_type": c.get("cell_type", "code"),
            "id": f"cell-{i}",
            "metadata": {"tags": c["metadata"]["tags"]}
            if c.get("metadata", {}).get("tags")
            else {},
            "source": "".join(src) if isinstance(src, list) else src,
        }
        if cell["cell_type"] == "code":
            cell |= {"execution_count": None, "outputs": []}
        cells.append(cell)
    md = nb.get("metadata", {})
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": md.get("kernelspec", {}),
            "language_info": {"name": md.get("language_info", {}).get("name", "python")},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


class StageError(ValueError):
    """A stage notebook that cannot run (unreadable, no parameters cell)."""


def write_notebook_snapshots(folder: Path = NB_SNAPSHOTS) -> list[str]:
    changed = []
    for nb_path in stages():
        try:
            nb = json.loads(nb_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise StageError(f"{paths.rel(nb_path)}: not a readable notebook ({e})") from None
        norm = normalise_notebook(nb)
        if not any("parameters" in c["metadata"].get("tags", []) for c in norm["cells"]):
            raise StageError(
                f"{paths.rel(nb_path)}: no cell tagged 'parameters' (a stage needs one; "
                "scratch notebooks belong in scratch/)"
            )
        text = json.dumps(norm, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        if write_if_changed(folder / nb_path.name, text):
            changed.append(nb_path.stem)
    current = {p.stem for p in stages()}
    for gone in sorted(p.stem for p in folder.glob("*.ipynb") if p.stem not in current):
        prune_stage(gone)
        (folder / f"{gone}.ipynb").unlink(missing_ok=True)
        changed.append(gone)
    # the paper depends on the list of stages: a stage removed changes it (and nothing
    # else make could see), so the paper and its appendix are made again without it
    write_if_changed(STAGES_LIST, "".join(f"{s}\n" for s in sorted(current)))
    return changed


STAGES_LIST = paths.BUILD / "stages.txt"


def prune_stage(stem: str) -> list[Path]:
    """Remove the build outputs of a stage that no longer exists (its notebook removed
    or renamed): its executed copy and page, results, provenance, dependency file and
    the figures it made. Return what was removed."""
    out = paths.BUILD_OUT
    gone = [
        out / "notebooks" / f"{stem}.ipynb",
        out / "notebooks" / f"{stem}.html",
        out / "results" / f"{stem}.json",
        out / "provenance" / f"{stem}.json",
        paths.BUILD / "deps" / f"{stem}.mk",
        paths.BUILD / "runs" / f"{stem}.json",
    ]
    for meta in (out / "figures").glob("*.json"):
        try:
            made_by = json.loads(meta.read_text(encoding="utf-8")).get("notebook")
        except (OSError, json.JSONDecodeError):
            continue
        if made_by == stem:
            gone += [meta, meta.with_suffix(".svg"), meta.with_suffix(".png")]
    removed = [p for p in gone if p.exists()]
    for p in removed:
        p.unlink()
    return removed


# ------------------------------------------------------------------ environment
def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """{normalised name: version} of the packages in this environment (dist-info names)."""
    out = {}
    for key in ("purelib", "platlib"):
        for d in Path(sysconfig.get_paths()[key]).glob("*.dist-info"):
            name, _, version = d.name.removesuffix(".dist-info").partition("-")
            out[_norm(name)] = version
    return dict(sorted(out.items()))


def lock_pins(lock: Path = paths.LOCK_FILE) -> dict[str, str]:
    text = Path(lock).read_text(encoding="utf-8")
    return {
        _norm(m.group(1)): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", text, re.M)
    }


def env_differences(have: dict[str, str], pins: dict[str, str]) -> list[str]:
    diffs = []
    for name, pinned in sorted(pins.items()):
        got = have.get(name)
        if got != pinned:
            diffs.append(f"{name} {got or 'missing'} (lock {pinned})")
    return diffs


def write_env_snapshot(path: Path = ENV_SNAPSHOT) -> tuple[bool, list[str]]:
    have = installed()
    pins = lock_pins()
    diffs = env_differences(have, pins)
    blob = json.dumps({"installed": have, "differences_from_lock": diffs}, indent=1, sort_keys=True)
    return write_if_changed(path, blob + "\n"), diffs


def env_versions(names: list[str]) -> dict[str, str]:
    """What actually ran, for the paper: installed versions, the lock's noted if different."""
    try:
        have = json.loads(ENV_SNAPSHOT.read_text())["installed"]
    except (OSError, json.JSONDecodeError, KeyError):
        have = installed()
    pins = lock_pins()
    out = {}
    for n in names:
        got, pinned = have.get(_norm(n)), pins.get(_norm(n))
        if got is None:
            out[n] = "not installed"
        elif pinned and got != pinned:
            out[n] = f"{got} (differs from the lock's {pinned})"
        else:
            out[n] = got
    return out


# ------------------------------------------------------------------ provenance
def record(
    notebook: str,
    inputs: list[str],
    outputs: dict[str, str],
    params_values: dict,
    hashed: dict[str, str] | None = None,
) -> dict:
    """The fingerprint of one notebook run: `hashed`, its inputs as hashed before it
    ran (a source edited while it runs then makes it stale), and `inputs` hashed now
    (the tables it read, known once it has run); outputs given."""
    return {
        "notebook": notebook,
        "inputs": dict(sorted({**hashes(inputs), **(hashed or {})}.items())),
        "params": params_values,
        "outputs": dict(sorted(outputs.items())),
    }


def stale_reasons(prov: dict) -> list[str]:
    """Why a recorded run no longer matches the current files ([] if it does)."""
    now = hashes(list(prov["inputs"]))
    why = []
    for f, h in prov["inputs"].items():
        if now.get(f) != h:
            why.append(describe_input(f) + (" changed" if f in now else " is missing"))
    for f, h in prov["outputs"].items():
        p = paths.ROOT / f
        if not p.is_file():
            why.append(f"its output {f} is missing")
        elif sha256(p) != h:
            why.append(f"its output {f} was changed after it ran")
    return list(dict.fromkeys(why))


def describe_input(f: str) -> str:
    if f.startswith(".build/params/"):
        return f"params section '{Path(f).stem}'"
    if f.startswith(".build/notebooks/"):
        return f"notebooks/{Path(f).name}"
    if f == ".build/env.json":
        return "the environment (installed packages)"
    return f
