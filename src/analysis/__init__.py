"""Helpers of the Kazakhstan civil-society compendium.

Small, typed, documented functions the notebooks import; each notebook is
narrative, parameters, calls to these helpers, and figures. They take the
processed tables as `processed.read` returns them (each docstring says which).
Module by module, with one example each:

params -- load and validate a notebook's section of params.yaml::

    params = load_section("ngo", params_file)        # shared keys + the ngo section

data -- the raw data package: checksums, schemas, sources::

    tables = data.load_all()                          # every raw table, validated
    data.citation("wdi_2026oct")["publisher"]

processed -- the data stage's tidy tables, tagged with their provenance::

    counts = processed.read("ngo_counts")             # attrs: raw files, source-id columns
    processed.source_ids_of(counts.query("year == 2024"))

results -- the registry of every number the paper quotes; a value is recorded
with the rows it was computed from, which give its raw files and source ids::

    reg = Registry("02_ngo")
    flagged = counts.query("quality != 'ok'")
    reg.record("ngo_flagged_implausible", len(flagged), flagged,
               "published counts flagged implausible", unit="values")   # kind: count
    reg.parameter("ngo_reference_year", 2024, counts, "reference year", unit="year")
    reg.save()

ngo -- NGO counts, rates, growth, funding, and the civic-space indices::

    register = ngo.one_per_year(counts, "ministry_register", "registered")
    rates = ngo.growth_range(register, min_span=5)    # one row per pair of years
    reg.record("grants_kzt_m", ngo.amount(funding, "F06", "million KZT"), description="...")

parliament -- elections, seats by tier, annual shares (descriptive, no model)::

    picked = P.pick_elections(elections, params["preferred_sources"], 19)
    both = P.both_chambers(picked)

survey -- published percentages with honest (approximate) intervals::

    ci = survey.with_intervals(results, surveys, 0.95, [])
    reg.record("kaziss_trust_president",
               survey.item(ci, "KAZISS_2022_02", "KAZISS22_trust_president", what="trust"))

claims -- check the source articles' claims against the data::

    checked = C.check_all(claims, counts=counts, ...)
    for r in checked.itertuples():
        for key, result in C.results_of(r).items():
            reg.record(key, result)

plots -- one figure style and deterministic saving with a provenance sidecar::

    plots.apply_theme(params)
    fig, ax = plots.new(height_in=3.5)
    plots.source_line(fig, areas["source_id"])
    plots.save(fig, "fig_ngo_areas", notebook="02_ngo", of=areas, caption="...", alt="...")

paths, io -- plumbing: the project root and output folders (`paths.ROOT`,
`paths.FIGURES`), atomic writes that leave unchanged files alone
(`io.write_if_changed(path, text)`).
"""

import importlib as _importlib
import sys as _sys

__version__ = "0.1.0"


def _jsonschema_without_iri_grammar() -> None:
    """Start-up cost: jsonschema (pulled in by nbformat, papermill and nbconvert)
    imports rfc3987_syntax when it is installed, which compiles a grammar for
    ~1.5 s on every process start. Only its "iri" format check needs it, and
    notebook validation never uses that check. Import jsonschema's format
    checkers once with the module marked absent, then lift the mark: nothing
    else loses rfc3987_syntax, only jsonschema's iri check is unavailable in a
    process that imported `analysis` first."""
    if "jsonschema" in _sys.modules or "rfc3987_syntax" in _sys.modules:
        return
    _sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        _importlib.import_module("jsonschema._format")
    except ImportError:  # jsonschema is not installed: nothing to speed up
        pass
    finally:
        del _sys.modules["rfc3987_syntax"]


_jsonschema_without_iri_grammar()
