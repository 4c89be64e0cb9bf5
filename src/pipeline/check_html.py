"""Check HTML pages with the ecosystem's own tools: the Nu HTML checker and axe-core.

Usage: python -m pipeline.check_html reports/paper.html reports/notebooks/*.html

- Nu HTML checker (`vnu.jar` from the npm package vnu-jar, run by Java): no error.
- axe-core (npm package axe-core, injected into headless Chromium through
  Playwright): no serious or critical violation of WCAG 2.0/2.1/2.2 A and AA,
  at a desktop and a phone width.

Both come from node_modules/ (`make node_modules`, pinned in package-lock.json);
Java and Chromium from the distribution. Prints one line per problem and a
verdict line; exits 1 on any problem, 2 when a tool is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.cli import entry

# the checkout that holds node_modules/ (the HTML checkers are tools, not project data)
ROOT = Path(__file__).resolve().parents[2]
VNU_JAR = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# The checker runs a few seconds: Java's quick compiler only (the optimising one
# spends more CPU than it saves in so short a run: ~3 CPU seconds instead of ~7).
# Its larger frames overflow Java's default 1 MiB thread stack while the checker
# loads its schema (JDK 17: it needs ~1.25 MiB), hence 4 MiB.
JAVA_FLAGS = ["-XX:TieredStopAtLevel=1", "-Xss4m"]
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
FAIL_IMPACTS = ("serious", "critical")
# Chromium's JavaScript engine, likewise, without its optimising compiler (TurboFan):
# axe's runs over the pages are too short for it to pay back (~12% less CPU, measured
# over the paper and notebook pages: 13.8 instead of 15.5 CPU seconds).
CHROMIUM_ARGS = [
    "--js-flags=--no-opt",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class ToolMissing(RuntimeError):
    pass


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise ToolMissing("chromium is not installed (apt-get install chromium)")
    return exe


def vnu_start(files: list[Path]) -> subprocess.Popen:
    """Start the Nu HTML checker on `files` (it runs while axe does: `vnu_errors`)."""
    java = shutil.which("java")
    if java is None:
        raise ToolMissing("java is not installed (apt-get install default-jre-headless)")
    if not VNU_JAR.exists():
        raise ToolMissing(f"{VNU_JAR.relative_to(ROOT)} is missing (make node_modules)")
    return subprocess.Popen(
        [java, *JAVA_FLAGS, "-jar", str(VNU_JAR), "--errors-only", "--format", "json"]
        + list(map(str, files)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def vnu_errors(proc: subprocess.Popen) -> list[str]:
    """Errors of the Nu HTML checker started by `vnu_start`, one line each (warnings
    are not errors)."""
    stdout, stderr = proc.communicate()
    try:
        messages = json.loads(stderr or stdout or '{"messages": []}')["messages"]
    except (json.JSONDecodeError, KeyError, TypeError):  # not its report: a Java error
        messages = []
    out = []
    for m in messages:
        where = Path(m.get("url", "").removeprefix("file:")).name
        out.append(f"vnu: {where}:{m.get('lastLine', '?')}: {m['type']}: {m['message']}")
    if proc.returncode != 0 and not out:
        said = " ".join((stderr.strip() or stdout.strip()).split())
        out.append(f"vnu: exited {proc.returncode}: {said[:300]}")
    return out


def vnu(files: list[Path]) -> list[str]:
    """Errors of the Nu HTML checker, one line each."""
    return vnu_errors(vnu_start(files))


def axe(files: list[Path]) -> tuple[list[str], int]:
    """Serious or critical axe-core violations at each width, one line each;
    and the number of (page, width) pairs checked."""
    if not AXE_JS.exists():
        raise ToolMissing(f"{AXE_JS.relative_to(ROOT)} is missing (make node_modules)")
    from playwright.sync_api import sync_playwright

    out, checked = [], 0
    widths = list(WIDTHS.items())
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            w, h = widths[0][1]  # each page loads at the first width (set before its load)
            ctx = browser.new_context(offline=True)
            page = ctx.new_page()
            for f in files:
                # each page is loaded (and axe injected) once, then checked at each
                # width: the pages have no scripts, so a resize lays them out as a
                # load at that width would (media queries, wrapping, overflow)
                page.set_viewport_size({"width": w, "height": h})
                page.goto(f.resolve().as_uri(), wait_until="load")
                page.add_script_tag(path=str(AXE_JS))
                for width_name, (vw, vh) in widths:
                    page.set_viewport_size({"width": vw, "height": vh})
                    res = page.evaluate(
                        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags},"
                        " resultTypes: ['violations']})",
                        AXE_TAGS,
                    )
                    checked += 1
                    for v in res["violations"]:
                        if v["impact"] in FAIL_IMPACTS:
                            out.append(
                                f"axe: {f.name} ({width_name}): {v['impact']}: {v['id']}: "
                                f"{v['help']} ({len(v['nodes'])} nodes, first: "
                                f"{v['nodes'][0]['target']})"
                            )
            ctx.close()
        finally:
            browser.close()
    return out, checked


@entry
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m pipeline.check_html", description=__doc__.split("\n")[0]
    )
    ap.add_argument("files", type=Path, nargs="+")
    ap.add_argument("--only", choices=["vnu", "axe"], help="run one checker only")
    a = ap.parse_args(argv)
    missing = [str(f) for f in a.files if not f.is_file()]
    if missing:
        print(f"check_html: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    problems: list[str] = []
    nu = None
    try:  # the two checkers run side by side (Java and Chromium)
        nu = vnu_start(a.files) if a.only in (None, "vnu") else None
        if a.only in (None, "axe"):
            axe_found, checked = axe(a.files)
        if nu is not None:
            found = vnu_errors(nu)
            problems += found
            print(f"[vnu] {len(a.files)} page(s): {len(found)} error(s)")
        if a.only in (None, "axe"):
            problems += axe_found
            print(
                f"[axe] {checked} page x width run(s) ({', '.join(WIDTHS)}): "
                f"{len(axe_found)} serious or critical violation(s)"
            )
    except ToolMissing as e:
        print(f"check_html: {e}", file=sys.stderr)
        return 2
    finally:
        if nu is not None and nu.poll() is None:  # axe failed: do not leave Java behind
            nu.kill()
            nu.communicate()
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
