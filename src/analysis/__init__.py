"""Helpers of the Kazakhstan civil-society compendium."""

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
