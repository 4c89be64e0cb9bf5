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

import sys as _sys


def entry_name() -> str:
    """The name of the pipeline module this process runs (`run` for `python -m
    pipeline.run` or a step the warm server forked), "pipeline" if none is known."""
    spec = getattr(_sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None) or ""
    argv = getattr(_sys, "argv", None) or [""]
    if argv[0].startswith("pipeline."):
        name = argv[0]  # (a forked step: its __main__ may still be the server's)
    elif not name.startswith("pipeline.") and argv[0] == "-m":
        orig = getattr(_sys, "orig_argv", [])  # (python -m, while its package imports)
        name = orig[orig.index("-m") + 1] if "-m" in orig[:-1] else ""
    return name.removeprefix("pipeline.") if name.startswith("pipeline.") else "pipeline"


def _interrupted(kind: type[BaseException], value: BaseException, tb: object) -> None:
    """sys.excepthook of an entry point: a Ctrl-C its main did not catch (one
    pressed while it still imports its libraries) prints one line, not the import's
    traceback; the interpreter then ends by SIGINT, as after any uncaught Ctrl-C."""
    if issubclass(kind, KeyboardInterrupt):
        try:
            print(f"[{entry_name()}] interrupted: nothing published", file=_sys.stderr, flush=True)
        except Exception:  # noqa: BLE001, S110 - (its reader has gone)
            pass
    else:
        _previous(kind, value, tb)  # type: ignore[arg-type]


# what an interrupted entry point says it left (its one line): the paper stage's
# publication changes it as it moves the new report into place (pipeline.publish)
interrupted_note = "nothing published"


class Terminated(KeyboardInterrupt):
    """An interruption by another signal than Ctrl-C (the runner turns SIGTERM, a
    killed make, into one, to clean up as after a Ctrl-C): `signum` names it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def terminated(signum: int, frame: object) -> None:
    """A SIGTERM handler (the runner's and the verify's: a killed make or a process
    manager's stop) that raises `Terminated`, to clean up as after a Ctrl-C."""
    raise Terminated(signum)


class terminated_as_interrupted:
    """`with terminated_as_interrupted():` a SIGTERM in the block raises `Terminated`
    (its clean-up runs as after a Ctrl-C), the previous handler is put back after it.
    The verify and `make notebook` use it; the runner defers a SIGTERM during its own
    clean-up (pipeline.run)."""

    def __enter__(self) -> None:
        import signal

        self.previous = signal.signal(signal.SIGTERM, terminated)

    def __exit__(self, *exc: object) -> None:
        import signal

        signal.signal(signal.SIGTERM, self.previous)


def end_interrupted(e: KeyboardInterrupt) -> int:
    """How an entry point ends once it has printed its one line about `e` (its own
    clean-up done): a process of its own (`python -m pipeline.X`, a forked step) ends
    by the signal at once (no atexit handlers: the project registers none), so that
    its caller sees it as after an uncaught Ctrl-C (a shell loop around it stops; the
    warm server's client ends the same way); called in-process, 128 + the signal."""
    import os
    import signal

    signum = getattr(e, "signum", signal.SIGINT)
    if _sys.excepthook is _interrupted:
        for stream in (_sys.stdout, _sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - (its reader has gone)
                pass
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    return 128 + signum


def _not_swallowed(u: object) -> None:
    """sys.unraisablehook of an entry point. Python runs a signal's handler in
    whatever code is running, and a Ctrl-C (or a SIGTERM turned into `Terminated`)
    raised in a callback whose exceptions it ignores (a weakref's, a `__del__`: an
    import's module-lock callback, while the entry point imports) was printed as
    "Exception ignored" and lost: the run went on. The signal is delivered again, to
    be raised in the code that runs next: sent to the main thread (which wakes it
    from a sleep or a wait) by a thread, 20 ms later, once this hook and the callback
    have returned (sent now, it would be raised in this hook, and ignored again)."""
    value = getattr(u, "exc_value", None)
    if isinstance(value, KeyboardInterrupt):
        import signal
        import threading

        main = threading.main_thread().ident
        signum = getattr(value, "signum", signal.SIGINT)
        later = threading.Timer(0.02, signal.pthread_kill, (main, signum))
        later.daemon = True
        later.start()
    else:
        _previous_unraisable(u)  # type: ignore[arg-type]


_previous = _sys.excepthook  # (a sitecustomize's or an IDE's, or Python's own)
_previous_unraisable = _sys.unraisablehook
# `python -m pipeline.X` (argv[0] is "-m" while its package imports) or a step the
# warm server forked (argv[0] is the module's name); never a notebook's kernel
_argv0 = (getattr(_sys, "argv", None) or [""])[0]
if _argv0 == "-m" or _argv0.startswith("pipeline."):
    _sys.excepthook = _interrupted
    _sys.unraisablehook = _not_swallowed

import analysis as _analysis  # noqa: E402, F401  (its start-up speed-up runs before nbformat loads)
