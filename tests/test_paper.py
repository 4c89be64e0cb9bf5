"""The paper: numbers only from the registry, citations and bibliography in step,
data text escaped, and (in headless Chromium) nothing loaded from elsewhere,
every image decoded, every reference and internal link resolved.

The renderer's own tests use the fixture paper in tests/fixtures/paper/ (made up
for the tests, see its README) and need no notebooks; the tests marked
`notebook` check the real paper, paper/paper.md, built from the real results."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from conftest import make, run_module
from pipeline import paper as paper_mod
from pipeline.check_html import CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "paper"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
YEAR = re.compile(r"^(19|20)\d\d$")
NUMBER = re.compile(r"\d[\d,.]*\d|\d")
# generated parts: registry numbers and texts, intervals, citations, cross-references,
# figures, tables, the appendix blocks, and the header (commit, date)
GENERATED = [
    "span.num",
    "span.ci",
    "span.txt",
    "span.cites",
    "a.xref",
    "figure",
    "[data-generated]",
    "head",
    "header",
]


def soup_of(root: Path) -> BeautifulSoup:
    return BeautifulSoup((root / "reports" / "paper.html").read_text(), "html.parser")


def registry(root: Path) -> dict:
    return json.loads((root / "reports" / "results.json").read_text())


def typed_numbers(text: str) -> list[str]:
    """Numbers in `text` other than years."""
    return [t for t in NUMBER.findall(text) if not YEAR.match(t.strip(".,"))]


def prose_numbers(markdown: str) -> list[tuple[int, str]]:
    """Numbers typed into Markdown prose (roles, code and directives left out)."""
    md = paper_mod.markdown()
    out = []

    def walk(src: str, offset: int) -> None:
        for t in md.parse(src, {"offset": offset}):
            if t.type in ("fence", "colon_fence"):
                d = paper_mod.split_directive(t)
                if d and d[0] in ("if", "ifnot"):
                    walk(d[3], offset + t.map[0] + 1)
                elif d and d[0] == "table":
                    walk(d[3], offset + t.map[0] + 1)
            for c in t.children or []:
                if c.type == "text":
                    out.extend((t.meta["line"], n) for n in typed_numbers(c.content))

    walk(markdown, 0)
    return out


# ---------------------------------------------------------------- fixture paper


def fixture_render(
    tmp_path: Path, source: str | None = None, results: dict | None = None, pages=("a_nb",)
) -> tuple[str, paper_mod.Paper]:
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir(parents=True, exist_ok=True)
    for p in pages:
        (nbdir / f"{p}.html").write_text("fixture page")
    return paper_mod.render(
        results if results is not None else json.loads((FIXTURE / "results.json").read_text()),
        FIXTURE / "figures",
        json.loads((FIXTURE / "sources.json").read_text()),
        {"used": {"fixture": {"a": 1}}},
        source=source if source is not None else (FIXTURE / "paper.md").read_text(),
        notebooks_dir=nbdir,
        where="fixture.md",
    )


def fixture_soup(tmp_path: Path, **kw) -> BeautifulSoup:
    return BeautifulSoup(fixture_render(tmp_path, **kw)[0], "html.parser")


def test_reference_links_resolve_in_nested_markdown(tmp_path: Path):
    """A reference-style link in an {if} body and in a table caption resolves to its
    definition elsewhere in the paper (the paper is parsed once; what the parse
    records is there for the nested renders). The paper is the fixture's."""
    source = (FIXTURE / "paper.md").read_text()
    source = source.replace("```{if} fx_count\n", "```{if} fx_count\nSee [the register][reg].\n", 1)
    source = source.replace(
        "A fixture table with **Markdown** in its caption",
        "A fixture table from [the register][reg] with **Markdown** in its caption",
        1,
    )
    html, _ = fixture_render(tmp_path, source=source + "\n[reg]: https://example.org/register\n")
    assert "[reg]" not in html
    assert html.count('<a href="https://example.org/register">the register</a>') == 2


def test_fixture_paper_numbers_intervals_and_texts(tmp_path: Path):
    soup = fixture_soup(tmp_path)
    nums = {s["data-key"]: s.get_text() for s in soup.select("span.num")}
    assert nums["fx_count"] == "23,335"  # a count stored as a float prints whole
    assert nums["fx_year"] == "2023"  # a year without separator
    assert nums["fx_rounded"] == "2.0"  # the result's "decimals"
    assert nums["fx_share"] == "46.05"
    assert (nums["fx_share#low"], nums["fx_share#high"]) == ("43.1", "49.0")
    ci = soup.select_one("span.ci").get_text()
    assert ci == "(approximate 95% Wilson interval, assuming simple random sampling: 43.1 to 49.0)"
    assert soup.select_one("span.txt").get_text() == "<script>alert(1)</script> & co"
    text = soup.get_text()
    assert "Shown because the result exists." in text
    assert "Shown because the result does not exist." in text
    assert "Hidden" not in text
    assert "Raw <b>HTML</b> in the Markdown is shown as text." in text
    assert soup.select_one("pre code.language-bash").get_text() == "make report\n"
    assert "Colon fences work too." in text


def test_fixture_paper_structure(tmp_path: Path):
    html, _ = fixture_render(tmp_path)
    soup = BeautifulSoup(html, "html.parser")
    assert soup.html["lang"] == "en" and len(soup.select("main")) == 1
    assert soup.select_one("main > article > header > h1").get_text().startswith("Fixture paper")
    assert not soup.find("script") and not soup.find("link") and soup.select("head style")
    ids = [el["id"] for el in soup.select("[id]")]
    assert len(ids) == len(set(ids))
    # sections from level-2 headings; (label)= sets the id, otherwise a slug
    sections = [s["id"] for s in soup.select("article > section")]
    assert sections == ["abstract", "a-section-with-a-figure", "appendix", "references"]
    assert [a["href"][1:] for a in soup.select("nav.toc a")] == sections
    assert soup.find("h3", id="sub-heading")
    # figure: img, then figcaption holding caption and provenance; nothing after it
    fig = soup.select_one("figure#fig-fig_fixture")
    assert [c.name for c in fig.find_all(recursive=False)] == ["img", "figcaption"]
    assert fig.img["alt"].startswith("A fixture image")
    assert fig.img["src"].startswith("data:image/svg+xml;base64,")
    assert "<script>alert(4)</script>" in fig.figcaption.get_text()
    prov = fig.select_one("figcaption .prov")
    # seven sources: listed in the provenance line, not cited after the caption
    assert prov.get_text().startswith("Sources: 1–6, 8.")
    assert "notebooks/fixture_nb.ipynb" in prov.get_text() and "sha256 0123456789ab…" in str(prov)
    # table: caption first, then the scrollable, labelled region
    tab = soup.select_one("figure#tab-fx_table")
    assert [c.name for c in tab.find_all(recursive=False)] == ["figcaption", "div"]
    region = tab.select_one("div.scroll")
    assert region["tabindex"] == "0" and region["role"] == "region"
    assert region["aria-label"].startswith("Table 1: A fixture table with Markdown in its caption")
    assert tab.figcaption.find("strong").get_text() == "Markdown"
    assert [th.get_text() for th in tab.select("th")] == ["Year", "Area", "Amount (KZT)", "Source"]
    rows = [[td.get_text() for td in tr.select("td")] for tr in tab.select("tbody tr")]
    assert rows[0][:3] == ["2016", "<i>education</i>", "1,800,000,000"]
    assert rows[1][2] == "2.5" and rows[2][2] == ""
    assert [r[3] for r in rows] == ["[2]", "[2, 8]", "[8]"]
    assert "source_id" not in tab.get_text() and "S8" not in tab.get_text()
    # cross-references
    assert [a.get_text() for a in soup.select("a.xref")] == ["Figure 1", "Table 1"]
    # derived notebook list
    assert [a["href"] for a in soup.select("[data-generated=notebooks] a")] == [
        "notebooks/a_nb.html"
    ]


def test_fixture_citations_and_bibliography(tmp_path: Path):
    soup = fixture_soup(tmp_path)
    brackets = [c.get_text() for c in soup.select("main span.cites")]
    # numbered in order of first citation; sorted and compressed within a bracket
    assert brackets[:3] == ["[1]", "[1, 2]", "[2–7]"]
    cited = set()
    for c in soup.select("span.cites"):
        cited |= set(c["data-ids"].split())
    listed = [li["id"].removeprefix("ref-") for li in soup.select("ol.refs li")]
    assert set(listed) == cited and "S9" not in listed
    assert listed[:3] == ["S3", "S1", "S2"]
    refs = {li["id"][4:]: li.get_text() for li in soup.select("ol.refs li")}
    assert "Is this a fixture? 2021-05-01." in refs["S2"]  # no "?."
    assert "Fixture Institute. Is" in refs["S2"]  # no ".."
    assert "doi:10.0000/fixture." in refs["S3"]
    assert "Copy read: repository fixture/repo" in refs["S7"]
    for text in refs.values():
        text = re.sub(r"https?://\S+", "URL", text)
        assert not re.search(r"\.\.|[?!]\.|\s[.,;:]|\s\s|[a-z][.;:,][A-Z]", text), text


def test_data_text_is_escaped(tmp_path: Path):
    soup = fixture_soup(tmp_path)
    assert not soup.find("script") and not soup.find("b") and not soup.find("i")
    assert not any(attr.startswith("on") for el in soup.find_all(True) for attr in el.attrs)
    li = soup.find(id="ref-S1").get_text()
    assert "<script>alert(1)</script>" in li  # shown as inert text
    assert "Fixture <b onmouseover=alert(3)>publisher</b>" in li


def test_fixture_output_is_deterministic(tmp_path: Path):
    assert fixture_render(tmp_path)[0] == fixture_render(tmp_path)[0]


@pytest.mark.parametrize(
    "numbers, text",
    [
        ([1, 3, 5, 6, 7, 8, 9], "1, 3, 5–9"),
        ([9, 8, 7, 1, 3, 5, 6, 3], "1, 3, 5–9"),
        ([4, 5], "4, 5"),
        ([1, 2, 3], "1–3"),
        ([2], "2"),
        ([], ""),
    ],
)
def test_citation_compression(numbers: list[int], text: str):
    assert paper_mod.compress_text(numbers) == text


def test_max_cites_is_enforced(tmp_path: Path):
    assert paper_mod.MAX_CITES == 6
    head = "---\ntitle: Fixture\n---\n\n"
    six = head + "Six {cite}`S1, S2, S3, S4, S5, S6`.\n\n```{bibliography}\n```\n"
    assert fixture_soup(tmp_path, source=six).select_one("span.cites").get_text() == "[1–6]"
    seven = head + "Seven {cite}`S1, S2, S3, S4, S5, S6, S7`.\n"
    with pytest.raises(paper_mod.PaperError, match=r"fixture.md, line 5: .*MAX_CITES = 6"):
        fixture_render(tmp_path, source=seven)
    by_result = head + "Seven {cite:result}`fx_many`.\n"
    with pytest.raises(paper_mod.PaperError, match="MAX_CITES"):
        fixture_render(tmp_path, source=by_result)


@pytest.mark.parametrize(
    "markdown, message",
    [
        ("{num}`fx_nope`", "result 'fx_nope', which no notebook recorded"),
        ("{ci}`fx_count`", "result 'fx_count', which has no interval"),
        ("{text}`fx_nope`", "fx_nope"),
        ("{cite}`S1, nope_id`", "unknown source id 'nope_id'"),
        ("{cite:result}`fx_nope`", "fx_nope"),
        ("{numref}`fig:fig_nope`", "figure 'fig_nope', which the paper does not show"),
        ("{numref}`tab:fx_table`", "table 'fx_table', which the paper does not show"),
        ("{numref}`fig_fixture`", "use fig:NAME or tab:KEY"),
        ("{bogus}`x`", "unknown role {bogus}"),
        ("```{figure} fig_nope\n```", "figure 'fig_nope' was not made"),
        ("```{table} fx_nope\n:columns: a=A\n```", "fx_nope"),
        ("```{table} fx_table\n:columns: year=Year, nope=No\n```", "has no column 'nope'"),
        ("```{table} fx_table\n```", "needs a :columns:"),
        ("```{bogus}\n```", "unknown directive {bogus}"),
        (
            "````{if} fx_missing\n```{figure} fig_fixture\n```\n````\n{numref}`fig:fig_fixture`",
            "figure 'fig_fixture', which the paper does not show",
        ),
        ("# Title\n", "use ## for sections"),
        ("{cite}`S1`", "no {bibliography}"),
    ],
)
def test_unknown_things_are_refused(tmp_path: Path, markdown: str, message: str):
    source = "---\ntitle: Fixture\n---\n\n## Section\n\n" + markdown + "\n"
    with pytest.raises(paper_mod.PaperError, match=re.escape(message)) as e:
        fixture_render(tmp_path, source=source)
    assert "\n" not in str(e.value) and str(e.value).startswith("fixture.md")


def test_plural_agrees_with_the_value(tmp_path: Path):
    """{plural} gives the word for the computed value: a sentence stays grammatical
    when a count becomes 1."""
    results = json.loads((FIXTURE / "results.json").read_text())
    source = (
        "---\ntitle: Fixture\n---\n\n## Section\n\n"
        "{num}`fx_many` {plural}`fx_many, pair, pairs` {plural}`fx_many, gives, give` it.\n"
    )
    for value, words in ((7, "7 pairs give it."), (1, "1 pair gives it.")):
        results["fx_many"]["value"] = value
        html, _ = fixture_render(tmp_path, source=source, results=results)
        para = BeautifulSoup(html, "html.parser").select_one("main section p")
        text = " ".join(para.get_text().split())
        assert words in text, text
    with pytest.raises(paper_mod.PaperError, match="two words"):
        fixture_render(tmp_path, source=source.replace(", gives, give", ""), results=results)


def test_front_matter_is_required(tmp_path: Path):
    with pytest.raises(paper_mod.PaperError, match="front matter"):
        fixture_render(tmp_path, source="## No front matter\n")


def test_notebook_list_is_derived(tmp_path: Path):
    soup = fixture_soup(tmp_path, pages=("02_b", "01_a"))
    links = [a["href"] for a in soup.select("[data-generated=notebooks] a")]
    assert links == ["notebooks/01_a.html", "notebooks/02_b.html"]
    with pytest.raises(paper_mod.PaperError, match="no executed notebook pages"):
        fixture_render(tmp_path / "empty", pages=())


def test_typed_numbers_are_found():
    assert prose_numbers("---\ntitle: T\n---\n\nIn 2007, 12 NGOs and {num}`k` more.\n") == [
        (5, "12")
    ]
    assert prose_numbers("---\ntitle: T\n---\n\n```{if} k\nShare of 3.5%.\n```\n") == [(6, "3.5")]
    assert typed_numbers("in 1994 and 2023, 1,200 and 0.5") == ["1,200", "0.5"]


def test_no_number_is_typed_into_the_paper():
    """Every number in paper/paper.md comes through a role; only years are typed."""
    found = prose_numbers((ROOT / "paper" / "paper.md").read_text())
    assert found == [], f"numbers typed into paper/paper.md (line, number): {found[:10]}"


def test_format_value():
    assert paper_mod.format_value(23335) == "23,335"
    assert paper_mod.format_value(2.01) == "2.01"
    assert paper_mod.format_value(0.43) == "0.43"
    assert paper_mod.format_value(8.8) == "8.8"
    assert paper_mod.format_value(1800000000.0) == "1,800,000,000"
    assert paper_mod.format_value(2.0, 1) == "2.0"
    assert paper_mod.format_value(0.4321, 2) == "0.43"


def test_cli_writes_nothing_on_failure(tmp_path: Path):
    """An unreadable source stops the paper stage with one line and writes nothing;
    a quoted result that does not exist names its line (the build-level case,
    previous reports kept, is tests/test_reliability.py)."""
    out = tmp_path / "out" / "paper.html"
    r = run_module(
        "pipeline.paper", "--source", str(tmp_path / "missing.md"), "--out", str(out)
    )  # fmt: skip
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "missing.md" in r.stderr
    assert not out.exists()
    # a notebook that saved no results (make passes every analysis's results file)
    fixture_md = tmp_path / "fixture.md"
    fixture_md.write_text("---\ntitle: Fixture\n---\n\nNo numbers.\n")
    gone = tmp_path / "build" / "results" / "02_x.json"
    r = run_module(
        "pipeline.paper", "--source", str(fixture_md), "--build", str(tmp_path / "build"),
        "--out", str(out), "--results", str(gone),
    )  # fmt: skip
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "02_x.json: missing (its notebook saved no results)" in r.stderr
    assert not out.exists()
    src = "---\ntitle: Fixture\n---\n\nThere are {num}`fx_nope` things.\n"
    with pytest.raises(paper_mod.PaperError, match=r"line 5.*'fx_nope'|'fx_nope'.*line 5"):
        paper_mod.render(
            json.loads((FIXTURE / "results.json").read_text()),
            FIXTURE / "figures",
            json.loads((FIXTURE / "sources.json").read_text()),
            {},
            source=src,
            where="bad.md",
        )


# ---------------------------------------------------------------- the real paper


@pytest.mark.notebook
def test_every_number_in_the_prose_comes_from_the_registry(built: Path):
    soup, res = soup_of(built), registry(built)
    p = paper_mod.Paper(res, built / "reports" / "figures", {"sources": [], "resources": []}, {})
    spans = soup.select("span.num")
    assert len(spans) > 80
    for s in spans:
        key = s["data-key"]
        base, _, end = key.partition("#")
        assert base in res, f"number with unknown key {key}"
        assert s.get_text() == p.formatted(base, end or None), key
        # and the printed number is the registry's value, to the digits printed
        value = res[base]["interval"][end == "high"] if end else res[base]["value"]
        printed = s.get_text().replace(",", "")
        places = len(printed.partition(".")[2])
        assert abs(float(printed) - value) <= 0.5 * 10**-places + 1e-12, (key, printed, value)
    for ci in soup.select("span.ci"):
        kind = res[ci["data-key"]]["interval_kind"]
        assert ci.select_one(".interval-kind").get_text() == kind
    # with everything generated removed, the only numbers left in the text are years
    for sel in GENERATED:
        for el in soup.select(sel):
            el.decompose()
    leftovers = typed_numbers(soup.get_text())
    assert leftovers == [], f"typed numbers in the paper: {leftovers[:10]}"


@pytest.mark.notebook
def test_bibliography_covers_exactly_the_cited_sources(built: Path):
    soup, res = soup_of(built), registry(built)
    cited: set[str] = set()
    for c in soup.select("span.cites"):
        cited |= set(c["data-ids"].split())
    assert {a["href"].removeprefix("#ref-") for a in soup.select("a.cite")} <= cited
    listed = {li["id"].removeprefix("ref-") for li in soup.select("#references li")}
    assert cited == listed and len(listed) > 20
    quoted = {s["data-key"].partition("#")[0] for s in soup.select("span.num")}
    quoted |= {t["data-key"] for t in soup.select("table[data-key]")}
    # results with more sources than one place may cite are cited through a figure or
    # table, or not at all (the prose must say where its sources are listed)
    citable = {k for k in quoted if len(res[k]["source_ids"]) <= paper_mod.MAX_CITES}
    needed = set().union(*(res[k]["source_ids"] for k in citable))
    assert needed <= cited, f"sources of quoted results not cited: {sorted(needed - cited)}"
    dp = json.loads((built / "data/raw/datapackage.json").read_text())
    for li in soup.select("#references li"):
        src = next(s for s in dp["sources"] if s["id"] == li["id"][4:])
        text = li.get_text()
        assert src["title"] in text and src["publisher"] in text
        assert not re.search(r"\.\.|[?!]\.", text), text
    for c in soup.select("main span.cites"):
        if not c.find_parent(class_="prov") and not c.find_parent("td"):
            assert len(c["data-ids"].split()) <= paper_mod.MAX_CITES


@pytest.mark.notebook
def test_figures_tables_and_provenance(built: Path):
    soup = soup_of(built)
    figs = soup.select("figure[id^=fig-]")
    assert [f.select_one(".label").get_text() for f in figs] == [
        f"Figure {i}." for i in range(1, len(figs) + 1)
    ]
    for f in figs:
        assert [c.name for c in f.find_all(recursive=False)] == ["img", "figcaption"]
        img = f.find("img")
        assert img["src"].startswith("data:image/svg+xml;base64,") and len(img["alt"]) > 40
        prov = f.select_one("figcaption .prov").get_text()
        assert re.search(r"sha256 [0-9a-f]{12}…", prov) and "commit" in prov
        nb = f.select_one(".prov a[href^=notebooks]")["href"]
        assert (built / "reports" / nb).exists(), nb
    tabs = soup.select("figure.table")
    shown = (built / "paper" / "paper.md").read_text().count("```{table}")  # (none conditional off)
    assert shown >= 2
    assert [t.select_one(".label").get_text() for t in tabs] == [
        f"Table {n}." for n in range(1, shown + 1)
    ]
    for n, t in enumerate(tabs, start=1):
        region = t.select_one("div.scroll")
        assert region["role"] == "region" and region["tabindex"] == "0"
        assert region["aria-label"].startswith(f"Table {n}: ")
    assert "source_id" not in soup.select_one("#tab-parliament_elections_table").get_text()
    ids = [el["id"] for el in soup.select("[id]")]
    assert len(ids) == len(set(ids))
    for a in soup.select("a.xref"):
        target = a["href"][1:]
        assert target in ids
        n = int(a.get_text().split()[-1])
        label = soup.find(id=target).select_one(".label").get_text()
        assert label.endswith(f" {n}."), (a.get_text(), label)
    pages = sorted(p.name for p in (built / "reports" / "notebooks").glob("*.html"))
    listed = [a["href"] for a in soup.select("[data-generated=notebooks] a")]
    stages = list((built / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert listed == [f"notebooks/{p}" for p in pages] and len(pages) == len(stages)
    toc = [a["href"][1:] for a in soup.select("nav.toc a")]
    assert toc == [s["id"] for s in soup.select("article > section")]
    size = (built / "reports" / "paper.html").stat().st_size
    assert size < 5 * 2**20
    # each figure on a notebook page has the figure's alt text (its sidecar's)
    alts: dict[str, set[str]] = {}
    for p in (built / "reports" / "figures").glob("*.json"):
        meta = json.loads(p.read_text())
        alts.setdefault(meta["notebook"], set()).add(meta["alt"])
    assert alts
    for nb, expected in alts.items():
        page = BeautifulSoup(
            (built / "reports/notebooks" / f"{nb}.html").read_text(), "html.parser"
        )
        assert {img["alt"] for img in page.select("img")} == expected, nb


@pytest.mark.notebook
def test_real_paper_escapes_data_text(built: Path):
    res = registry(built)
    pkg = json.loads((built / "data/raw/datapackage.json").read_text())
    bad = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    for s in pkg["sources"]:
        if s["id"] == "ngo_S01":
            s["title"] = "Fixture title " + bad
    html, _ = paper_mod.render(res, built / "reports" / "figures", pkg, {})
    soup = BeautifulSoup(html, "html.parser")
    assert not soup.find("script") and not soup.select("img[src=x]")
    assert "<script>alert(1)</script>" in soup.find(id="ref-ngo_S01").get_text()


def test_paper_refuses_unknown_results(built: Path):
    res = registry(built)
    del res["ngo_registered_ref"]
    with pytest.raises(paper_mod.PaperError, match="ngo_registered_ref"):
        paper_mod.render(
            res,
            built / "reports" / "figures",
            json.loads((built / "data/raw/datapackage.json").read_text()),
            {},
        )


@pytest.mark.notebook
def test_paper_in_headless_chromium(built: Path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium not installed here (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright

    page_path = (built / "reports" / "paper.html").resolve()
    requests, failed = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        ctx = browser.new_context(offline=True, viewport={"width": 1000, "height": 1400})
        page = ctx.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(page_path.as_uri(), wait_until="load")
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        unresolved = page.evaluate("""Array.from(document.querySelectorAll('a[href^="#"]'))
            .map(a => a.getAttribute('href').slice(1))
            .filter(id => !document.getElementById(decodeURIComponent(id)))""")
        local = page.evaluate("""Array.from(document.querySelectorAll('a[href]'))
            .map(a => a.getAttribute('href'))
            .filter(h => !h.startsWith('#') && !/^[a-z]+:/i.test(h))""")
        # citation and cross-reference links are underlined, not told apart by colour alone
        plain_links = page.evaluate("""Array.from(document.querySelectorAll('a.cite, a.xref'))
            .filter(a => !getComputedStyle(a).textDecorationLine.includes('underline'))
            .length""")
        page.screenshot(path=str(built / "reports" / "paper-screenshot.png"), full_page=False)
        # on a desktop screen a table of many columns gets more than the text's width:
        # every column in view, no sideways scroll inside it or on the page
        page.set_viewport_size({"width": 1280, "height": 900})
        cramped = page.evaluate("""Array.from(document.querySelectorAll('figure.table .scroll'))
            .filter(s => s.scrollWidth > s.clientWidth + 1).map(s => s.parentNode.id)""")
        wide_overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        phone = ctx.new_page()
        phone.set_viewport_size({"width": 390, "height": 844})
        phone.goto(page_path.as_uri(), wait_until="load")
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        browser.close()
    assert requests == [page_path.as_uri()], f"requests left the file: {requests[1:]}"
    assert failed == []
    shown = soup_of(built).select("figure[id^=fig-] img")  # every figure the paper shows
    assert len(images) == len(shown) > 0, images
    assert all(c and w > 0 and h > 0 for c, w, h in images), images
    assert unresolved == []
    assert plain_links == 0
    for href in local:
        assert (page_path.parent / href).exists(), href
    assert overflow <= 1, "the page scrolls sideways on a phone"
    assert cramped == [] and wide_overflow <= 1, cramped
    shot = built / "reports" / "paper-screenshot.png"
    assert shot.stat().st_size > 10_000  # kept in the scratch copy: tests never write reports/


@pytest.mark.notebook
@pytest.mark.slow
def test_paper_follows_the_focus_country(built: Path, tmp_path: Path):
    # (a copy of the run's shared build: a copied checkout is its own root, up to date)
    root = built
    r = make(root, "report")  # nothing runs
    assert r.returncode == 0 and "Nothing to be done" in r.stdout, r.stdout + r.stderr
    good = (root / "params.yaml").read_text()
    (root / "kgz.yaml").write_text(
        good.replace("focus_country: KAZ", "focus_country: KGZ").replace(
            "comparators: [KGZ,", "comparators: [KAZ,"
        )
    )
    r = make(root, "report", "PARAMS=kgz.yaml")
    assert r.returncode == 0, r.stderr
    # the parliament notebook's results for another focus country
    res = json.loads((root / ".build/out/results/03_parliament.json").read_text())
    assert res["parl_focus_country"]["value"] == "Kyrgyzstan"
    assert "only for Kazakhstan" in res["parl_elections_scope"]["value"]
    assert "mazhilis_latest_women" not in res
    assert "Kazakhstan" in res["parl_comparators"]["value"]
    assert "Kyrgyzstan" not in res["parl_comparators"]["value"]
    assert 0 < res["focus_annual_last_pct"]["value"] < 60
    assert 1 <= res["focus_rank_among_neighbours"]["value"] <= res["focus_rank_of"]["value"]
    figs = {p.name for p in (root / ".build/out/figures").glob("fig_parliament_*.svg")}
    assert figs == {"fig_parliament_annual.svg"}  # no election figure for Kyrgyzstan
    soup = soup_of(root)
    women = soup.find(id="women").get_text()
    assert "Kyrgyzstan" in women and "only for Kazakhstan" in women
    assert not soup.select("#tab-parliament_elections_table")
    assert not soup.select("#fig-fig_parliament_elections")
    figs = [f.select_one(".label").get_text() for f in soup.select("figure[id^=fig-]")]
    assert figs == [f"Figure {i}." for i in range(1, len(figs) + 1)]
    # the paper names the parameters file it was built with, and how to rebuild it
    meta = soup.select_one("header .meta").get_text(" ")
    assert "with the parameters of kgz.yaml" in " ".join(meta.split())
    env = soup.select_one("[data-generated=environment]").get_text(" ")
    assert "make report PARAMS=kgz.yaml" in env
    # back to the project's params: every notebook is planned to rerun (the shared
    # section differs from the snapshot the KGZ build left; the dry run executes none)
    r = make(root, "-n", "report")
    assert r.returncode == 0, r.stderr
    planned = re.findall(r"pipeline\.run notebooks/(\S+)\.ipynb", r.stdout)
    assert sorted(planned) == sorted(
        p.stem for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb")
    )


# ---------------------------------------------------------------- notebook pages
def page_notebook(path: Path, cells: list) -> Path:
    """A notebook of `cells` as the page step reads it (a fixture), written to `path`."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    nbformat.write(nb, path)
    return path


def bleach_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts bleach is given from now on (it still cleans them)."""
    import bleach

    calls: list[str] = []
    clean = bleach.clean
    monkeypatch.setattr(bleach, "clean", lambda text, **kw: calls.append(text) or clean(text, **kw))
    return calls


def test_notebook_pages_keep_compiled_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A page step keeps nbconvert's compiled templates in .build/jinja; the page is
    the same with the cache filled, and made (compiled in memory) where the cache
    cannot be used. The notebook is a fixture."""
    import nbformat

    from analysis import paths
    from pipeline import report

    v4 = nbformat.v4
    cells = [v4.new_markdown_cell("# A fixture"), v4.new_code_cell("1 + 1", execution_count=1)]
    cells[1].outputs = [v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    executed = page_notebook(tmp_path / "fixture.ipynb", cells)
    monkeypatch.setattr(paths, "BUILD", tmp_path / "build")
    pages = []
    for _ in range(2):  # the first fills the cache, the second reads it
        report.export(executed, tmp_path / "page.html")
        pages.append((tmp_path / "page.html").read_bytes())
    assert len(list((tmp_path / "build" / "jinja").glob("*/__jinja2_*.cache"))) >= 3
    monkeypatch.setattr(paths, "BUILD", tmp_path / "file")
    (tmp_path / "file").write_text("not a folder")  # no cache folder can be made
    report.export(executed, tmp_path / "page.html")
    pages.append((tmp_path / "page.html").read_bytes())
    assert pages[0] == pages[1] == pages[2] and b"A fixture" in pages[0]


def test_notebook_pages_sanitize_all_but_highlighted_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Pygments' markup of every code cell of the project's notebooks is kept as
    bleach (nbconvert's sanitizer) would return it: the page is byte for byte the
    page made with bleach on every cell, without calling it; anything else still
    goes through bleach."""
    import re

    import nbformat
    from nbconvert.filters.strings import clean_html as bleached

    from pipeline import report

    cells = [
        c
        for nb in sorted((ROOT / "notebooks").glob("*.ipynb"))
        for c in nbformat.read(nb, as_version=4).cells
        if c.cell_type == "code"
    ]
    assert len(cells) > 20
    injected = nbformat.v4.new_code_cell(
        '# Parameters\nparams_file = ".build/params/survey.json"\n'
    )
    executed = page_notebook(tmp_path / "cells.ipynb", [*cells, injected])
    calls = bleach_calls(monkeypatch)
    fast = report.notebook_body(executed)
    assert calls == []
    with monkeypatch.context() as m:
        m.setattr(report, "HIGHLIGHTED", re.compile("(?!)"))  # bleach on every cell
        assert report.notebook_body(executed) == fast
    assert len(calls) == len(cells) + 1
    assert report.HIGHLIGHTED.pattern != "(?!)"  # (the checks below use the real one)

    good = (
        '<div class=" highlight hl-ipython3"><pre><span></span><span class="n">x</span>\n'
        "</pre></div>\n"
    )
    head, tail = good.split("<span></span>")
    assert bleached(good) == good
    for hostile in (
        good + "<script>alert(1)</script>",
        head + '<span></span><span class="n" onmouseover="alert(1)">x</span>' + tail,
        head + '<span></span><a href="javascript:alert(1)">x</a>' + tail,
        head + "<span></span><span>&#x3c;script&#x3e;</span>" + tail,
        head + "<span></span>a > b" + tail,
        "<pre>\nraw cell</pre>",  # not pygments' shape (bleach drops the newline)
    ):
        assert not report.HIGHLIGHTED.fullmatch(hostile), hostile
        assert report.clean_html(hostile) == bleached(hostile)
    # pygments' shape, but what bleach changes: unbalanced tags, control characters
    for changed in (
        head + "<span></span></span>x" + tail,
        head + '<span></span><span class="n">x' + tail,
        head + "<span></span>a\x1bb" + tail,
    ):
        assert bleached(changed) != changed
        assert report.clean_html(changed) == bleached(changed)


def test_notebook_pages_skip_nbconvert_s_last_pass_only_where_it_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """nbconvert's last pass (BeautifulSoup: alt placeholders, JupyterLab wrappers'
    tabindex, the page written out again) is skipped on a page where it would only
    respell the HTML: the page parses to the same document as with the pass. A page
    with an image the template gave no alt text gets the pass, as before. The
    notebooks are fixtures: the project's code cells, and made-up outputs."""
    import nbconvert.exporters.html as exporter_module
    import nbformat

    from pipeline import report

    v4 = nbformat.v4
    parsed: list[int] = []
    parse = exporter_module.BeautifulSoup
    monkeypatch.setattr(
        exporter_module, "BeautifulSoup", lambda *a, **kw: parsed.append(1) or parse(*a, **kw)
    )
    cells = [
        c
        for nb in sorted((ROOT / "notebooks").glob("*.ipynb"))
        for c in nbformat.read(nb, as_version=4).cells
    ]
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>'
    figure = v4.new_output("display_data", {"image/svg+xml": svg})
    figure.metadata = {"image/svg+xml": {"alt": 'Fixture figure: "a" & b'}}
    table = '<table border="1" class="dataframe"><tr><th>a</th><td>1 &amp; 2</td></tr></table>'
    quoted = table.replace('"dataframe"', "'dataframe'")  # (as HTML of one's own may quote it)
    outputs = v4.new_code_cell(
        "show()",
        outputs=[
            figure,
            v4.new_output("display_data", {"text/html": table, "text/plain": "a"}),
            v4.new_output("display_data", {"text/html": quoted, "text/plain": "a"}),
            v4.new_output("stream", name="stdout", text='it\'s <fine> & "quoted"\n'),
        ],
    )
    cells += [v4.new_markdown_cell('A · "quoted" & <b>marked</b> text'), outputs]
    executed = page_notebook(tmp_path / "fixture.ipynb", cells)
    fast = report.notebook_body(executed)
    assert parsed == []  # skipped
    assert fast.count('<div class="scroll" tabindex="0" role="region"') == 2  # both tables
    with monkeypatch.context() as m:
        m.setattr(report, "soup_pass_changes", lambda page: True)
        slow = report.notebook_body(executed)
    assert parsed == [1] and slow != fast  # (nbconvert's pass respells the page)
    assert str(BeautifulSoup(fast, "html.parser")) == str(BeautifulSoup(slow, "html.parser"))

    # an image without alt text (a PNG output, a markdown cell's own tag): nbconvert's pass
    png = v4.new_output("display_data", {"image/png": "iVBORw0KGgo="})
    for cell in (
        v4.new_code_cell("plt.show()", outputs=[png]),
        v4.new_markdown_cell('<img src="fixture.png">'),
    ):
        parsed.clear()
        body = report.notebook_body(page_notebook(tmp_path / "alt.ipynb", [cell]))
        assert parsed == [1] and 'alt="No description has been provided' in body, cell
    # JupyterLab's wrappers in an HTML output, even spelled with entities: the pass too
    wrapped = '<div class="jp&#45;Notebook"><div class="jp&#45;Cell&#45;inputWrapper">x</div></div>'
    cell = v4.new_code_cell(
        "show()", outputs=[v4.new_output("display_data", {"text/html": wrapped})]
    )
    parsed.clear()
    report.notebook_body(page_notebook(tmp_path / "lab.ipynb", [cell]))
    assert parsed == [1]


def test_notebook_pages_give_figures_their_alt_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A page (a fixture notebook): an SVG output's alt text, else its cell's; bleach
    runs on a raw cell and a code cell with a control character, never on the others."""
    import nbformat

    from pipeline import report

    v4 = nbformat.v4
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>'
    own = v4.new_output("display_data", {"image/svg+xml": svg})
    own.metadata = {"image/svg+xml": {"alt": 'Fixture figure: "a" <b> & c'}}
    by_cell = v4.new_code_cell(
        "show()", outputs=[v4.new_output("display_data", {"image/svg+xml": svg})]
    )
    by_cell.metadata["alt"] = "Fixture figure from the cell"
    cells = [
        v4.new_code_cell("plot()", outputs=[own]),
        by_cell,
        v4.new_code_cell("x = 1"),
        v4.new_code_cell("s = '\x1b'"),
        v4.new_raw_cell("<pre>raw</pre>"),
    ]
    calls = bleach_calls(monkeypatch)
    body = report.notebook_body(page_notebook(tmp_path / "fixture.ipynb", cells))
    page = BeautifulSoup(body, "html.parser")
    assert [img.get("alt") for img in page.select("img")] == [
        'Fixture figure: "a" <b> & c',
        "Fixture figure from the cell",
    ]
    assert "No description" not in body and "\x1b" not in body
    assert len(calls) == 2 and "\x1b" in calls[0] and "raw" in calls[1]


@pytest.mark.parametrize("dirty", [True, False])
def test_the_paper_says_when_it_was_built_from_uncommitted_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dirty: bool
):
    """The visible line and the generator metadata both name the commit, and both say
    so when the working tree had changes (the git state is a fixture)."""
    git = {"commit": "f" * 40, "short": "f" * 10, "date": "2026-01-01", "dirty": dirty}
    monkeypatch.setenv("KZ_GIT_INFO", json.dumps(git))
    soup = fixture_soup(tmp_path)
    meta = soup.find("meta", attrs={"name": "generator"})["content"]
    line = soup.select_one("header p.meta").get_text()
    assert meta.startswith("kz-civil-society compendium, commit " + "f" * 40)
    assert ("with uncommitted changes" in meta) == dirty
    assert ("(with uncommitted changes)" in line) == dirty and "f" * 10 in line
