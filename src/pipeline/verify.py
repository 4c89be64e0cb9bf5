"""Reviewer's check: re-execute everything from raw data and compare every result.

    python -m pipeline.verify            # make verify
    python -m pipeline.verify --record   # make record: update the committed record

Steps (each reported):
1. raw data: every file's sha256 against datapackage.json, and against the record;
2. environment: every installed package version against requirements.lock;
3. re-execution: `make report` from raw data in a scratch copy of the project
   (reports/ is left untouched), with the project's params.yaml;
4. results: each recorded result against reports/expected-results.json, with a
   stated tolerance per kind (exact for counts, texts and tables of counts;
   relative 1e-6 for model estimates);
5. figures: by sha256, and where the bytes differ by pixel difference of the PNG
   against the committed reference (reports/expected-figures/);
6. delivered: reports/paper.html, results.json, figures and executed notebooks
   against what the re-execution produced, byte for byte (a stale, hand-edited
   or missing delivered paper fails, naming each difference).

It prints a table (result, expected, got, difference, verdict), writes it to
reports/verification.html and exits non-zero naming every mismatch. A mismatch
is explained when its result was computed from a raw file that differs from
the record, and flagged as unexpected otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pipeline
from analysis import paths
from analysis.io import write_atomic, write_if_changed
from pipeline.cli import entry

RECORD = paths.REPORTS / "expected-results.json"
REFERENCE_FIGURES = paths.REPORTS / "expected-figures"
REL_TOL = 1e-6  # model estimates: relative tolerance
ABS_TOL = 1e-9  # ... and absolute, for values near zero
PIXEL_TOL = 8  # a pixel differs if any channel differs by more than this (of 255)
PIXEL_SHARE = 0.001  # figures match if at most this share of pixels differ


@dataclass
class Row:
    item: str
    expected: str
    got: str
    difference: str
    verdict: str  # ok | MISMATCH | MISSING | NEW
    note: str = ""


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------ inputs
def check_raw(record: dict) -> tuple[list[Row], set[str]]:
    """Checksums against the data package, and files changed since the record."""
    from analysis import data

    rows, changed = [], set()
    pkg = data.package()
    for res in pkg["resources"]:
        f = f"data/raw/{res['path']}"
        got = sha256(paths.ROOT / f)
        declared = res["hash"].removeprefix("sha256:")
        recorded = record.get("raw", {}).get(f)
        if got != declared:
            rows.append(
                Row(
                    f,
                    declared[:12],
                    got[:12],
                    "checksum",
                    "MISMATCH",
                    "file differs from datapackage.json",
                )
            )
        elif recorded and recorded != got:
            changed.add(f)
            rows.append(
                Row(
                    f,
                    recorded[:12],
                    got[:12],
                    "changed since the record",
                    "CHANGED",
                    "results computed from it may differ",
                )
            )
        else:
            rows.append(Row(f, declared[:12], got[:12], "", "ok"))
    return rows, changed


def lock_pins(lock: Path = paths.ROOT / "requirements.lock") -> dict[str, str]:
    import re

    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", lock.read_text(), re.M)
    }


def check_environment(lock: Path = paths.ROOT / "requirements.lock") -> list[Row]:
    rows = []
    for name, pinned in sorted(lock_pins(lock).items()):
        try:
            got = version(name)
        except PackageNotFoundError:
            got = "not installed"
        if got != pinned:
            rows.append(
                Row(
                    f"package {name}",
                    pinned,
                    got,
                    "version",
                    "MISMATCH",
                    "installed version differs from requirements.lock",
                )
            )
    if not rows:
        rows.append(Row("packages", f"{len(lock_pins(lock))} pinned", "all as pinned", "", "ok"))
    return rows


# ------------------------------------------------------------------ re-execution
def reexecute(scratch: Path, params_file: Path, jobs: int) -> Path:
    """Build everything from raw data in a scratch copy of the project (the same
    `make report` a reader runs); return its reports/ folder. Its steps and kernels
    are forked by a warm server of its own (KZ_WARM_SERVER), started afresh (and
    waited for: every step and kernel is forked) and stopped at the end: never by
    the one that may have made the delivered reports, so the two builds share no
    process state, not even a hash seed. (Unless forking is off, KZ_FORK_KERNELS=0:
    then every step and kernel starts the normal way.)"""
    import secrets

    from pipeline import client, kernels, snapshot
    from pipeline.paper import git_info
    from pipeline.scratch import copy_project

    copy_project(scratch)
    shutil.copy(params_file, scratch / ".verify-params.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    # the paper shows the commit of this checkout, not the scratch copy's (none)
    env |= {"KZ_COMPENDIUM_ROOT": str(scratch), "KZ_GIT_INFO": json.dumps(git_info())}
    # the PYTHONPATH the Makefile exports to its steps (the copy's src/ alone): the
    # server is started, and its address computed, as its steps will ask for it (a
    # reviewer's own PYTHONPATH entries would name another server, which the steps
    # would start unwaited for and which would outlive the verify)
    env["PYTHONPATH"] = str(scratch / "src")
    env["KZ_WARM_SERVER"] = f"verify-{os.getpid()}-{secrets.token_hex(4)}"
    env["KZ_FORK_IDLE"] = "60"  # (a verify killed before it stops its server)
    env["KZ_NO_FIGURE_CACHE"] = "1"  # every figure drawn again, none from a cache
    # its steps' server (asked from the copy's root) and its kernels' (from notebooks/:
    # the same one, unless a matplotlibrc there gives the kernels one of their own)
    where = client.checkout_servers(env, str(scratch))
    try:
        if client.enabled():
            took = client.start_and_wait(where, env)
            state = "not ready: normal starts" if took is None else f"ready in {took:.1f}s"
            print(f"[verify] re-execution by a warm server of its own: {state}", flush=True)
        # the paper names the parameters file as the delivered one does (not the copy's)
        params_name = snapshot.params_name(Path(params_file).absolute())
        r = _make_report(scratch, env, jobs, params_name)
    finally:
        stopped = any([kernels.stop(addr) for addr in where])
    ran = 0  # notebooks started (a kernel each, whether the notebook then ran to its end)
    for line in r.stdout.splitlines():
        if " done in " in line or " FAILED " in line or line.startswith("[paper]"):
            print(f"[verify] {line}", flush=True)
        ran += bool(re.match(r"\[\d+/\d+\] \S+ started", line))
    log = scratch / ".build" / client.LOG
    forked = log.read_text().count("kernel forked") if log.exists() else 0
    print(
        f"[verify] {forked} of {ran} notebook kernels forked; its warm server "
        + ("stopped" if stopped else "not running"),
        flush=True,
    )
    if r.returncode != 0:
        raise RuntimeError(f"the re-execution failed:\n{r.stderr.strip() or r.stdout[-2000:]}")
    return scratch / "reports"


def _make_report(
    scratch: Path, env: dict[str, str], jobs: int, params_name: str = "params.yaml"
) -> subprocess.CompletedProcess:
    """`make report` in the scratch copy, in a process group of its own: an interruption
    of the verify (Ctrl-C, or SIGTERM, which reaches it alone) is passed on to make and
    its steps, and waited for, before the copy is removed (killed at once, make left
    its steps running: a whole build went on, orphaned, in a folder being removed)."""
    p = subprocess.Popen(
        ["make", "--no-print-directory", f"--jobs={max(1, jobs)}", "report"]
        + ["PARAMS=.verify-params.yaml", f"PARAMS_NAME={params_name}"],
        cwd=scratch,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    try:
        out, err = p.communicate()
    except KeyboardInterrupt as e:
        try:
            os.killpg(p.pid, getattr(e, "signum", signal.SIGINT))
            p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
        except ProcessLookupError:  # (ended already)
            p.communicate()
        raise
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _first_difference(a: bytes, b: bytes) -> str:
    la, lb = a.decode("utf-8", "replace").splitlines(), b.decode("utf-8", "replace").splitlines()
    for i, (x, y) in enumerate(zip(la, lb, strict=False), 1):
        if x != y:
            c = next((j for j, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), 0)
            lo = max(0, c - 25)
            return (
                f"line {i}, column {c + 1}: delivered {x[lo : c + 35]!r}, "
                f"re-execution {y[lo : c + 35]!r}"
            )
    return f"delivered has {len(la)} lines, re-execution {len(lb)}"


def compare_delivered(delivered: Path, fresh: Path) -> list[Row]:
    """The delivered reports/ against a re-execution, byte for byte, naming each difference."""
    try:
        names = sorted(json.loads((fresh / "provenance.json").read_text())["files"])
    except (OSError, json.JSONDecodeError, KeyError):
        names = ["paper.html", "results.json"]
    names = sorted(set(names) | {"paper.html", "results.json", "provenance.json"})
    rows = []
    for name in names:
        d, f = delivered / name, fresh / name
        item = f"reports/{name}"
        if not d.exists():
            rows.append(
                Row(item, "delivered", "-", "", "MISSING", "not delivered: run `make report`")
            )
            continue
        if not f.exists():
            rows.append(
                Row(item, "-", "delivered", "", "MISMATCH", "the re-execution makes no such file")
            )
            continue
        a, b = d.read_bytes(), f.read_bytes()
        if a == b:
            rows.append(Row(item, sha256(f)[:12], sha256(d)[:12], "", "ok", "identical bytes"))
            continue
        note = _first_difference(a, b)
        if name == "results.json":
            try:
                x, y = json.loads(a), json.loads(b)
                keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
                note = f"{len(keys)} result(s) differ: {', '.join(keys[:8])}" + (
                    " ..." if len(keys) > 8 else ""
                )
            except json.JSONDecodeError:
                note = "delivered file is not valid JSON"
        rows.append(Row(item, sha256(f)[:12], sha256(d)[:12], "bytes differ", "MISMATCH", note))
    return rows


# ------------------------------------------------------------------ comparison
def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if v.is_integer() and abs(v) < 1e6 else f"{v:.6g}"
    if isinstance(v, list):
        return f"table of {len(v)} rows"
    s = str(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _close(a, b, exact: bool) -> bool:
    if (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        if exact:
            return a == b
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, exact) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], exact) for k in a)
    return a == b


def tolerance_of(entry: dict) -> str:
    return "exact" if entry["kind"] in ("count", "text") else f"relative {REL_TOL:g}"


def compare_results(expected: dict, got: dict, changed_raw: set[str]) -> list[Row]:
    rows = []
    for key in sorted(set(expected) | set(got)):
        e, g = expected.get(key), got.get(key)
        if g is None:
            assert e is not None  # the key comes from one of the two
            rows.append(Row(key, _fmt(e["value"]), "-", "", "MISSING", "no longer recorded"))
            continue
        if e is None:
            rows.append(Row(key, "-", _fmt(g["value"]), "", "NEW", "not in the record"))
            continue
        exact = e["kind"] in ("count", "text")
        same = _close(e["value"], g["value"], exact) and _close(
            e.get("interval"), g.get("interval"), exact
        )
        diff = ""
        if isinstance(e["value"], (int, float)) and isinstance(g["value"], (int, float)):
            diff = f"{g['value'] - e['value']:+.6g}"
        elif not same:
            diff = "differs"
        note = tolerance_of(e)
        if not same:
            why = sorted(set(e["sources"]) & changed_raw)
            note = (
                f"computed from changed {', '.join(why)}"
                if why
                else "UNEXPECTED: none of its raw files changed"
            )
        # the same value from other rows is another result: its provenance must match
        moved = [k for k in ("sources", "source_ids") if e.get(k) != g.get(k)]
        if same and moved:
            note = "; ".join(f"{k}: expected {e.get(k)}, got {g.get(k)}" for k in moved)
        ok = same and not moved
        rows.append(
            Row(key, _fmt(e["value"]), _fmt(g["value"]), diff, "ok" if ok else "MISMATCH", note)
        )
    return rows


def pixel_share(a: Path, b: Path) -> float:
    """Share of pixels differing by more than PIXEL_TOL in any channel (1.0 if sizes differ)."""
    import numpy as np
    from PIL import Image

    x = np.asarray(Image.open(a).convert("RGB"), dtype=int)
    y = np.asarray(Image.open(b).convert("RGB"), dtype=int)
    if x.shape != y.shape:
        return 1.0
    return float((np.abs(x - y).max(axis=2) > PIXEL_TOL).mean())


def compare_figures(expected: dict, figures: Path, reference: Path) -> list[Row]:
    rows = []
    names = sorted(set(expected) | {p.stem for p in figures.glob("*.svg")})
    for name in names:
        e = expected.get(name)
        png, svg = figures / f"{name}.png", figures / f"{name}.svg"
        if e is None:
            rows.append(Row(f"figure {name}", "-", "made", "", "NEW", "not in the record"))
            continue
        if not png.exists():
            rows.append(Row(f"figure {name}", e["png"][:12], "-", "", "MISSING", "not made"))
            continue
        got = {"png": sha256(png), "svg": sha256(svg)}
        if got == e:
            rows.append(
                Row(f"figure {name}", e["png"][:12], got["png"][:12], "", "ok", "identical bytes")
            )
            continue
        ref = reference / f"{name}.png"
        share = pixel_share(ref, png) if ref.exists() else 1.0
        ok = share <= PIXEL_SHARE
        rows.append(
            Row(
                f"figure {name}",
                e["png"][:12],
                got["png"][:12],
                f"{100 * share:.3f}% of pixels",
                "ok" if ok else "MISMATCH",
                f"bytes differ; pixel threshold {100 * PIXEL_SHARE:g}%",
            )
        )
    return rows


# ------------------------------------------------------------------ record
def merged_results(reports: Path) -> dict:
    return json.loads((reports / "results.json").read_text())


def make_record(reports: Path) -> dict:
    from analysis import data

    figs = {
        p.stem: {"png": sha256(p), "svg": sha256(p.with_suffix(".svg"))}
        for p in sorted((reports / "figures").glob("*.png"))
    }
    raw = {
        f"data/raw/{r['path']}": r["hash"].removeprefix("sha256:")
        for r in data.package()["resources"]
    }
    return {
        "results": merged_results(reports),
        "figures": figs,
        "raw": raw,
        "tolerances": {
            "count": "exact",
            "text": "exact",
            "table": f"relative {REL_TOL:g}",
            "estimate": f"relative {REL_TOL:g}, absolute {ABS_TOL:g}",
            "figures": f"sha256, else at most {100 * PIXEL_SHARE:g}% of PNG "
            f"pixels differing by more than {PIXEL_TOL}/255",
        },
    }


def record(reports: Path, out: Path = RECORD, reference: Path = REFERENCE_FIGURES) -> list[str]:
    """Write the record from a fresh run; return a description of what changed."""
    old = json.loads(out.read_text()) if out.exists() else {"results": {}, "figures": {}}
    new = make_record(reports)
    changes = [
        f"{r.verdict:8s} {r.item}: {r.expected} -> {r.got}"
        for r in compare_results(old.get("results", {}), new["results"], set())
        if r.verdict != "ok"
    ]
    changes += [
        f"figure   {n}"
        for n in sorted(set(old.get("figures", {})) | set(new["figures"]))
        if old.get("figures", {}).get(n) != new["figures"].get(n)
    ]
    write_if_changed(out, json.dumps(new, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    reference.mkdir(parents=True, exist_ok=True)
    for p in sorted((reports / "figures").glob("*.png")):
        write_if_changed(reference / p.name, p.read_bytes())
    for p in reference.glob("*.png"):
        if p.stem not in new["figures"]:
            p.unlink()
    return changes


# ------------------------------------------------------------------ report
# the page's row colours: a problem, and what is new or changed
ROW_CLASS = {"MISMATCH": "bad", "MISSING": "bad", "FAILED": "bad", "NEW": "new", "CHANGED": "new"}


def to_html(sections: dict[str, list[Row]], verdict: str) -> str:
    css = (
        "body{font-family:Helvetica,Arial,sans-serif;max-width:70rem;margin:1rem auto;"
        "padding:0 1rem}table{border-collapse:collapse;font-size:.8rem;width:100%}"
        "td,th{border-bottom:1px solid #ddd;padding:.2rem .4rem;text-align:left}"
        ".bad{background:#fde2e2}.new{background:#fff4d6}"
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Verification</title><style>{css}</style></head><body>",
        f"<h1>Verification: {html.escape(verdict)}</h1>",
    ]
    for title, rows in sections.items():
        parts.append(
            f"<h2>{html.escape(title)}</h2><table><tr><th>Item</th><th>Expected</th>"
            "<th>Got</th><th>Difference</th><th>Verdict</th><th>Note</th></tr>"
        )
        for r in rows:
            cls = ROW_CLASS.get(r.verdict, "")
            cells = "".join(
                f"<td>{html.escape(str(x))}</td>"
                for x in (r.item, r.expected, r.got, r.difference, r.verdict, r.note)
            )
            parts.append(f"<tr class='{cls}'>{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def print_table(title: str, rows: list[Row], only_problems: bool = False) -> None:
    shown = [r for r in rows if not only_problems or r.verdict != "ok"]
    print(f"\n== {title}: {sum(r.verdict == 'ok' for r in rows)}/{len(rows)} ok")
    if not shown:
        return
    w = max(len(r.item) for r in shown)
    # each column as wide as its widest value (up to a cap), never cut mid-word below it
    we, wg, wd = (
        min(30, max(len(h), *(len(getattr(r, c)) for r in shown)))
        for c, h in (("expected", "expected"), ("got", "got"), ("difference", "difference"))
    )
    print(f"{'item':{w}s}  {'expected':>{we}s}  {'got':>{wg}s}  {'difference':>{wd}s}  verdict")
    for r in shown:
        print(
            f"{r.item:{w}s}  {r.expected[:we]:>{we}s}  {r.got[:wg]:>{wg}s}  "
            f"{r.difference[:wd]:>{wd}s}  {r.verdict}  {r.note}"
        )


@entry
def main(argv: list[str] | None = None) -> int:
    # a SIGTERM cleans up as a Ctrl-C does: its make stopped, the scratch copy and
    # its warm server removed, one line (it ended at once, leaving all three)
    with pipeline.terminated_as_interrupted():
        return _verify(argv)


def _verify(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.verify")
    ap.add_argument("--params", type=Path, default=paths.PARAMS)
    ap.add_argument("--record", action="store_true", help="update the committed record")
    ap.add_argument("--out", type=Path, default=paths.REPORTS / "verification.html")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--all", action="store_true", help="print every row, not only problems")
    a = ap.parse_args(argv)
    from analysis import params as params_mod

    params_mod.load(a.params)  # one line if missing or invalid, before the long part
    rec = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    if not rec and not a.record:
        print(f"error: no record at {paths.rel(RECORD)}: run `make record` first", file=sys.stderr)
        return 2
    raw_rows, changed = check_raw(rec)
    env_rows = check_environment()
    # the scratch copy lives in .build/verify (removed before and after; a killed
    # verify leaves it for the next one to remove)
    work = paths.BUILD / "verify"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="project-", dir=work) as tmp:
        try:
            reports = reexecute(Path(tmp), a.params, a.jobs)
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            if a.record:
                return 1
            # the page says so too: a PASS left from an earlier verify must not stand
            said = str(e).splitlines() or ["see the terminal"]
            why = next((x for x in said if x.startswith("FAILED ")), said[-1])
            failed = [Row("make report in a scratch copy", "-", "-", "", "FAILED", why)]
            sections = {"Raw data": raw_rows, "Environment": env_rows, "Re-execution": failed}
            for title, rows in sections.items():
                print_table(title, rows, only_problems=title != "Re-execution")
            write_atomic(a.out, to_html(sections, "FAIL (the re-execution failed)").encode("utf-8"))
            print(f"\n[verify] FAIL: the re-execution failed; table written to {paths.rel(a.out)}")
            return 1
        if a.record:
            changes = record(reports)
            print(
                f"[record] {paths.rel(RECORD)}: "
                + (f"{len(changes)} change(s)" if changes else "no change")
            )
            for c in changes:
                print("  " + c)
            return 0
        sections = {
            "Raw data": raw_rows,
            "Environment": env_rows,
            "Results": compare_results(rec["results"], merged_results(reports), changed),
            "Figures": compare_figures(rec["figures"], reports / "figures", REFERENCE_FIGURES),
            "Delivered reports": compare_delivered(paths.REPORTS, reports),
        }
    bad = [
        (t, r)
        for t, rows in sections.items()
        for r in rows
        if r.verdict in ("MISMATCH", "MISSING", "NEW")
    ]
    verdict = "PASS" if not bad else f"FAIL ({len(bad)} mismatches)"
    for title, rows in sections.items():
        only = title in ("Raw data", "Environment", "Delivered reports") and not a.all
        if title == "Delivered reports" and rows and all(r.verdict == "MISSING" for r in rows):
            print(f"\n== {title}: 0/{len(rows)} ok (none delivered: run `make report`)")
            continue
        print_table(title, rows, only_problems=only)
    write_atomic(a.out, to_html(sections, verdict).encode("utf-8"))
    print(f"\n[verify] {verdict}; table written to {paths.rel(a.out)}")
    undelivered = [r for t, r in bad if t == "Delivered reports" and r.verdict == "MISSING"]
    if len(undelivered) > 3:  # (after `make clean`: one line, not one per file)
        print(f"  missing (delivered reports): {len(undelivered)} files: run `make report`")
    for title, r in bad:
        if len(undelivered) > 3 and r in undelivered:
            continue
        print(
            f"  mismatch ({title.lower()}): {r.item}: expected {r.expected}, got {r.got} ({r.note})"
        )
    return 0 if not bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
