"""The build layer of the compendium: what `make` runs around the notebooks.

Researchers do not import this package; notebooks use `analysis` only.

- `snapshot`: at make's start, the build lock, params and notebook snapshots, environment check
- `run`: executes one notebook with papermill on its snapshots, records its fingerprint
- `merge`: merges the per-notebook results registries
- `report`: executed notebooks as HTML pages
- `paper`: renders paper/paper.md with the results and publishes reports/ together
- `kernels`, `client`: the warm server that forks each step and kernel from a
  pre-imported interpreter, and the client the Makefile runs steps through
- `publish`, `fingerprint`, `lock`, `progress`: all-or-nothing publication, provenance,
  one build at a time, progress lines
- `verify`: `make verify` and `make record`
- `checksums`: `make checksums`
- `scratch`, `cli`: scratch copies of the project; one-line errors for every entry point
"""

import signal as _signal
import sys as _sys


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl-C while an entry point imports its libraries (before `cli.entry` takes
    over): one line, as `entry` prints, instead of the traceback of an import."""
    import os

    argv = _sys.argv[:1]
    if argv == ["-m"]:  # (the module's name, from the command line)
        orig = getattr(_sys, "orig_argv", [])
        argv = orig[orig.index("-m") + 1 :][:1] if "-m" in orig else []
    name = os.path.basename(argv[0]).removesuffix(".py") if argv else "pipeline"
    prog = name.removeprefix("pipeline.")
    os.write(2, f"[{prog}] interrupted while starting: nothing published\n".encode())
    os._exit(130)


# `python -m pipeline.X` (argv[0] is "-m" while the module is found) or a step the warm
# server forked (argv[0] is the module's name): from here until `cli.entry` runs main
if _sys.argv and (_sys.argv[0] == "-m" or _sys.argv[0].startswith("pipeline.")):
    try:
        if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
            _signal.signal(_signal.SIGINT, _interrupted_while_starting)
    except ValueError:  # (not the main thread)
        pass


def started() -> None:
    """An entry point's main has begun: Ctrl-C is a KeyboardInterrupt again, which it
    handles (`cli.entry`: one line, and what it was writing cleaned up)."""
    try:
        if _signal.getsignal(_signal.SIGINT) is _interrupted_while_starting:
            _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    except ValueError:  # (not the main thread)
        pass


import analysis as _analysis  # noqa: E402, F401  (its start-up speed-up runs before nbformat loads)
