"""Entry points of the build: bad input and interruptions give one line, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


def _known_errors() -> tuple[type[BaseException], ...]:
    from analysis.data import DataValidationError
    from analysis.params import ParamsError
    from analysis.paths import NoProjectRoot
    from pipeline.fingerprint import StageError
    from pipeline.lock import BuildLocked

    return (DataValidationError, ParamsError, BuildLocked, StageError, NoProjectRoot)


def entry(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a `main`: known errors, permission problems and Ctrl-C print one line (after
    a Ctrl-C, the process then ends by SIGINT: `pipeline.end_interrupted`)."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs) -> int:
        import pipeline

        prog = pipeline.entry_name() if main.__module__ == "__main__" else main.__module__
        prog = prog.removeprefix("pipeline.")
        pipeline.interrupted_note = "nothing published"
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt as e:
            print(f"[{prog}] interrupted: {pipeline.interrupted_note}", file=sys.stderr)
            return pipeline.end_interrupted(e)
        except PermissionError as e:
            print(f"error: permission denied: {e.filename or e}", file=sys.stderr)
            return 1
        except OSError as e:
            if e.filename:
                print(f"error: {e.filename}: {e.strerror}", file=sys.stderr)
                return 1
            raise
        except _known_errors() as e:
            print(f"error: {e}", file=sys.stderr)
            return 1

    return wrapped
