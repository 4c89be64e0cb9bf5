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

import analysis as _analysis  # noqa: F401  (its start-up speed-up runs before nbformat loads)
