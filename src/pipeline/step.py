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
import client  # type: ignore[import-not-found]  # noqa: E402

client.script()
