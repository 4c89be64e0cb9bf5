"""Helpers of the Kazakhstan civil-society compendium."""

import sys as _sys

__version__ = "0.1.0"

# Start-up cost: jsonschema (pulled in by nbformat, papermill and nbconvert) imports
# rfc3987_syntax when it is installed, which compiles a grammar for ~1.5 s on every
# process start. Only its IRI format check needs it, and notebook validation never
# uses that check; marking the module absent makes jsonschema skip it.
_sys.modules.setdefault("rfc3987_syntax", None)
