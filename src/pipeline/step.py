"""`python src/pipeline/step.py MODULE ARGS...`: how the Makefile runs every build step
(`python -m MODULE ARGS...` forked by the warm server: client.py, which says how).

Only this stub is compiled at each start, as every script is; client.py is imported
as a module, from the bytecode the build compiled (src/pipeline/__pycache__): ~5 ms
less a step than running client.py itself as the script.
"""

import client  # type: ignore[import-not-found]  # (this folder is first on sys.path)

client.script()
