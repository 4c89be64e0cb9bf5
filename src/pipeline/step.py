"""`python src/pipeline/step.py MODULE ARGS...`: how the Makefile runs every build step
(`python -m MODULE ARGS...` forked by the warm server: client.py, which says how).

Only this stub is compiled at each start, as every script is; client.py is imported
as a module, from the bytecode the build compiled (src/pipeline/__pycache__): ~5 ms
less a step than running client.py itself as the script.
"""

import os
import sys

# this folder: first on sys.path for a script, except under PYTHONSAFEPATH (-P)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import client  # type: ignore[import-not-found]

    client.script()  # (it ends the process; once it has asked for the fork, the
    # client passes a Ctrl-C on to the step, which says it, and ends as the step did)
except KeyboardInterrupt:  # before that (~30 ms): one line, not a traceback, and the
    # end of an uncaught Ctrl-C, as `python -m` of the step would end
    import signal

    step = next((a for a in sys.argv[1:] if not a.startswith("-")), "step")
    sys.stderr.write(f"[{step.removeprefix('pipeline.')}] interrupted: nothing published\n")
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
