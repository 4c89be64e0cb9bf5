# The compendium's build graph. `make help` lists the targets.
#
#   data/raw/* + datapackage.json --01_data--> data/processed/*
#   notebooks/NN_<section>.ipynb (papermill, params snapshot) --> .build/out/*
#   .build/out/* --(fingerprints checked)--> reports/paper.html + results, figures,
#                                             notebooks, published together
#
# Every stage depends on all it uses: its notebook (a snapshot without outputs),
# its params section (a snapshot rewritten only when that section changes), its
# input files, the `analysis` package sources and the environment (built from
# the lock file; a snapshot of what is installed). One build at a time per
# checkout (.build/lock); the checkout you run in is the project root.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules
# Parallel by default: one job per core (progress lines are single writes).
NPROC := $(shell nproc 2>/dev/null || echo 1)
ifeq ($(filter -j% --jobs%,$(MAKEFLAGS) $(MFLAGS)),)
MAKEFLAGS += --jobs=$(NPROC)
endif

PARAMS ?= params.yaml
ifneq ($(word 2,$(PARAMS)),)
$(error PARAMS='$(PARAMS)': make cannot use a path with spaces; copy the file to one without)
endif
# the name the paper gives the parameters file (make verify's re-execution runs on a
# copy under another name and gives the original's)
PARAMS_NAME ?= $(PARAMS)
# the checkout make runs in is the project (never the installed package's location)
export KZ_COMPENDIUM_ROOT := $(CURDIR)
export PYTHONPATH := $(CURDIR)/src
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
# `make data PY=python` (Binder, conda): use an interpreter that already has the
# pins of environment.yml and the `analysis` package; no .venv is built
ifeq ($(origin PY),command line)
ifneq ($(words $(PY)),1)
$(error PY='$(PY)': make cannot run a path with spaces; put its folder first on PATH and give PY=python)
endif
ENV := .build/env-$(subst /,_,$(PY))
else
PY := $(VENV)/bin/python
ENV := $(VENV)/.installed
endif
NPM := $(shell command -v npm 2>/dev/null)
NODE_TOOLS := node_modules/.installed
KERNEL := kz-civil-society
# uv builds .venv: the one on PATH, else a pinned uv installed from PyPI into
# $(UV_HOME) (tools/uv-requirements.txt, hash-checked; kept by `make clean`);
# if that install fails (offline), pip. `make env UV=` or KZ_NO_UV=1 forces pip.
# Either way .venv has pip (Python's own, from ensurepip: `pip check`, `%pip`).
UV_HOME := .tools/uv
# pip for a .venv that uv built (JupyterLab's %pip, pip check): the wheel that comes
# with Python (what ensurepip installs, offline), without compiling it (5 s less)
ENSUREPIP_WHEELS = $(shell $(PYTHON) -c "import ensurepip, pathlib; print(pathlib.Path(ensurepip.__file__).parent / '_bundled')")
UV_PINS := tools/uv-requirements.txt
UV_VERSION := $(patsubst uv==%,%,$(filter uv==%,$(file <$(UV_PINS))))
ifneq ($(origin UV),command line)
ifneq ($(KZ_NO_UV),)
UV :=
else
UV := $(or $(shell command -v uv 2>/dev/null),$(UV_HOME)/bin/uv)
endif
endif

# build steps run through the warm server (src/pipeline/client.py, pipeline/kernels.py):
# `$(STEP) pipeline.x args` is `$(PY) -m pipeline.x args` in a process forked from an
# interpreter that imported the libraries once (the normal way while it starts)
STEP = $(PY) src/pipeline/step.py

# the two layers: the analysis helpers the notebooks import, and the build layer
ANALYSIS_SRC := $(sort $(wildcard src/analysis/*.py)) pyproject.toml
PIPELINE_SRC := $(sort $(wildcard src/pipeline/*.py))
PKG_SRC := $(ANALYSIS_SRC) $(PIPELINE_SRC)
# what a notebook's run depends on: the helpers, and the runner that executes it
# (and a notebooks/matplotlibrc, which a kernel started there reads when it imports matplotlib)
STAGE_SRC := $(filter-out src/analysis/schema.py,$(ANALYSIS_SRC)) src/pipeline/run.py \
  $(wildcard notebooks/matplotlibrc) \
  src/pipeline/kernels.py src/pipeline/client.py src/pipeline/step.py src/pipeline/fingerprint.py
RAW := $(sort $(wildcard data/raw/*.csv)) data/raw/datapackage.json
BUILD := .build
STAMPS := $(BUILD)/params

OUT := $(BUILD)/out
NBSNAP := $(BUILD)/notebooks
ENVSNAP := $(BUILD)/env.json

# stages: notebooks/NN_<section>.ipynb for each section of params.yaml (its top-level
# keys but `shared`); a copy such as 02_ngo-Copy1.ipynb is not one
SECTIONS := $(filter-out shared,$(shell sed -n 's/^\([a-z][a-z0-9_]*\):.*/\1/p' $(PARAMS) 2>/dev/null))
NOTEBOOKS := $(sort $(foreach s,$(SECTIONS),$(wildcard notebooks/[0-9][0-9]_$(s).ipynb)))
EXECUTED := $(patsubst notebooks/%,$(OUT)/notebooks/%,$(NOTEBOOKS))
PROCESSED := $(addprefix data/processed/,$(notdir $(filter-out %/datapackage.json,$(RAW)))) \
             data/processed/sources.csv data/processed/manifest.json

.DEFAULT_GOAL := report

## help: list the targets
.PHONY: help
help:
	@grep -hE '^## ' $(MAKEFILE_LIST) | sed -e 's/^## /  make /' -e 's/: /\t/' | expand -t 26

## env: build .venv from requirements.lock, register the project kernel and the nbstripout git filter
.PHONY: env
env: $(ENV)
ifeq ($(origin PY),command line)
$(ENV): requirements.lock pyproject.toml
	@$(PY) -c "import analysis, papermill, nbconvert" 2>/dev/null || { \
	  echo "[env] $(PY) cannot import analysis, papermill and nbconvert: install environment.yml, or drop PY= to build .venv" >&2; exit 1; }
	@mkdir -p $(@D) && touch $@
else ifeq ($(shell test -L $(VENV) && echo link),link)
# a scratch copy (tests, bench) shares the checkout's .venv through a link: it
# never rebuilds it (that would install the copy's sources into the shared one)
$(ENV):
	@echo "[env] $(VENV) is a link to another checkout's environment: not rebuilt here"
else
$(ENV): requirements.lock pyproject.toml
	@echo "[env] building $(VENV) from requirements.lock"
	@uv='$(UV)'; \
	if [ "$$uv" = '$(UV_HOME)/bin/uv' ] && ! "$$uv" --version 2>/dev/null | grep -qF "uv $(UV_VERSION)"; then \
	  echo "[env] uv not on PATH: installing uv $(UV_VERSION) from PyPI into $(UV_HOME) ($(UV_PINS), hash-checked)"; \
	  rm -rf $(UV_HOME); mkdir -p $(dir $(UV_HOME)); \
	  if ! $(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --retries 1 --timeout 15 \
	      --require-hashes --no-deps --only-binary :all: --target $(UV_HOME) -r $(UV_PINS) >$(UV_HOME).log 2>&1 \
	      || ! "$$uv" --version >/dev/null 2>&1; then \
	    echo "[env] could not install uv ($$(grep -m 1 ERROR $(UV_HOME).log || tail -n 1 $(UV_HOME).log)): building with pip"; \
	    rm -rf $(UV_HOME); uv=; \
	  fi; \
	  rm -f $(UV_HOME).log; \
	fi; \
	if [ -n "$$uv" ] && ! { { test -x $(PY) || "$$uv" venv --quiet --python $(PYTHON) $(VENV); } && \
	  "$$uv" pip sync --quiet --python $(PY) --compile-bytecode --require-hashes requirements.lock && \
	  "$$uv" pip install --quiet --python $(PY) --no-deps --no-build-isolation --compile-bytecode -e . && \
	  "$$uv" pip install --quiet --python $(PY) --no-index --find-links '$(ENSUREPIP_WHEELS)' pip; }; then \
	  echo "[env] $$uv failed (above): building with pip"; uv=; \
	fi; \
	if [ -z "$$uv" ]; then \
	  test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	  $(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip --default-pip >/dev/null; \
	  $(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock 2>&1 | { grep -v 'is ignored: it is neither' || true; }; \
	  $(PY) -m pip install --quiet --no-deps --no-build-isolation -e . 2>&1 | { grep -v 'is ignored: it is neither' || true; }; \
	fi
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python ($(KERNEL))" >/dev/null
	@$(GIT_FILTER)
	@$(STEP) pipeline.snapshot --env-only
	@touch $@
endif

# nbstripout as a git filter (.gitattributes): whatever a researcher saves from
# JupyterLab, git sees the notebook without outputs; its settings are those of
# the pre-commit hook (.pre-commit-config.yaml), cell ids are kept
NBSTRIPOUT_ARGS := --keep-id --extra-keys "metadata.language_info.version metadata.language_info.codemirror_mode metadata.language_info.file_extension metadata.language_info.mimetype metadata.language_info.nbconvert_exporter metadata.language_info.pygments_lexer cell.metadata.execution cell.metadata.papermill"
# (in a linked worktree, only with extensions.worktreeConfig, so that the other
# worktrees of the repository keep their own settings)
# (through the warm server's client when a server runs, never starting one: git runs
# it once per notebook it must re-read, e.g. all of them in `git status` right after
# a clone, as the paper stage does; ~50 ms each instead of ~1 s)
NBSTRIPOUT := '"$(abspath $(VENV))/bin/python" "$(abspath src/pipeline/step.py)" --no-start nbstripout $(NBSTRIPOUT_ARGS)'
define GIT_FILTER
git rev-parse --git-dir >/dev/null 2>&1 || exit 0; \
where=--local; \
if [ "$$(git rev-parse --git-dir)" != "$$(git rev-parse --git-common-dir)" ]; then \
  if [ "$$(git config --bool extensions.worktreeConfig)" != true ]; then \
    echo "[env] linked git worktree: nbstripout filter not installed (git config extensions.worktreeConfig true; make git-filter)"; \
    exit 0; fi; \
  where=--worktree; fi; \
git config $$where filter.nbstripout.clean $(NBSTRIPOUT) && \
git config $$where filter.nbstripout.smudge cat && \
git config $$where filter.nbstripout.required true && \
git config $$where diff.ipynb.textconv $(NBSTRIPOUT)' -t' && \
echo "[env] nbstripout git filter installed (.gitattributes)"
endef
## git-filter: install the nbstripout git filter again (make env does it; after its settings change)
.PHONY: git-filter
git-filter:
	@$(GIT_FILTER)

# ---- a .venv built for another path (a moved or copied checkout) is rebuilt here.
# Its activate script names the path it was built for (VIRTUAL_ENV='...', uv, or
# "...", venv); that line is looked for as a whole, never split into words: a path
# with spaces is the same path.
ifneq ($(wildcard $(ENV)),)
ACTIVATE := $(if $(wildcard $(VENV)/bin/activate),$(file <$(VENV)/bin/activate))
VENV_REAL := $(realpath $(VENV))
ifneq ($(findstring VIRTUAL_ENV=,$(ACTIVATE)),)
ifeq ($(findstring VIRTUAL_ENV='$(VENV_REAL)',$(ACTIVATE))$(findstring VIRTUAL_ENV="$(VENV_REAL)",$(ACTIVATE)),)
ifeq ($(filter help clean distclean,$(or $(MAKECMDGOALS),report)),)
$(info [env] $(VENV) was built for $(shell sed -n 's/^VIRTUAL_ENV=["'\'']\(.*\)["'\'']$$/\1/p' $(VENV)/bin/activate | head -n 1), not $(VENV_REAL) (moved or copied checkout): rebuilding it)
$(shell rm -rf $(VENV))
endif
endif
endif
endif

# ---- snapshots, written while make reads this file (one quick python call), so that
# plain file dates are exact and `make -n` (the progress plan) tells the truth: the
# build lock, one params snapshot per section (rewritten only when that section
# changes), notebook snapshots, the environment snapshot, and the delivered-reports
# check (analysis/snapshot.py).
NO_STAMPS_FOR := help clean distclean env git-filter node_modules lock test lint checksums bench verify record notebook
# After a complete build the snapshot is skipped while nothing it reads is newer than
# its start, and the params file and notebooks, which it compares by content, have the
# contents it read (.build/snapshot.sums: a copy with an old date, `cp -p`, is no
# newer): the params file (the same one), notebooks, raw data, sources (not their
# __pycache__), the lock and the installed packages (site-packages' own entries, the
# dist-info folders the environment snapshot reads: its date, not its 40,000 files);
# nothing in reports/ changed since the publication; and no other build holds the
# lock (a no-op `make report` then starts no python).
SNAP_OK := $(BUILD)/snapshot.ok
SITE := $(wildcard $(VENV)/lib/python3*/site-packages)
SNAPSHOT_FRESH = $(shell test "$$(cat $(SNAP_OK) 2>/dev/null)" = '$(PARAMS)' \
  && test -z "$$(find $(PARAMS) notebooks data/raw src requirements.lock $(ENV) \
       -name __pycache__ -prune -o -newer $(SNAP_OK) -print -quit 2>/dev/null)" \
  $(if $(SITE),&& test -z "$$(find $(SITE) -maxdepth 0 -newer $(SNAP_OK) 2>/dev/null)") \
  && sha256sum --status -c $(BUILD)/snapshot.sums 2>/dev/null \
  && test -f reports/provenance.json \
  && test -z "$$(find reports -newer reports/provenance.json ! -name verification.html \
       ! -path 'reports/expected*' -print -quit 2>/dev/null)" \
  && ! { pid=$$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' $(BUILD)/lock 2>/dev/null); \
         [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null; } \
  && echo fresh)
ifneq ($(wildcard $(ENV)),)
ifeq ($(KZ_NO_STAMPS),)
ifneq ($(filter-out $(NO_STAMPS_FOR),$(or $(MAKECMDGOALS),report)),)
SNAPSHOT_SKIPPED := $(SNAPSHOT_FRESH)
ifneq ($(SNAPSHOT_SKIPPED),fresh)
# (make 4.3 does not pass its exports to $(shell): give them here)
STAMP_OUT := $(shell PYTHONPATH='$(PYTHONPATH)' KZ_COMPENDIUM_ROOT='$(KZ_COMPENDIUM_ROOT)' $(STEP) pipeline.snapshot --params $(PARAMS) --name '$(PARAMS_NAME)' --owner $$PPID 2>&1 || echo PARAMS-ERROR)
ifneq ($(findstring PARAMS-ERROR,$(STAMP_OUT)),)
$(error $(strip $(subst PARAMS-ERROR,,$(STAMP_OUT))))
endif
ifneq ($(STAMP_OUT),)
$(info $(STAMP_OUT))
endif
endif
endif
endif
endif
# on a fresh clone the environment comes first, then the snapshots
# (a stage that must run although make skipped the snapshot, e.g. after an
# interrupted build, takes the snapshot first: the lock, and the clean-up)
SNAPSHOT = $(STEP) pipeline.snapshot --params $(PARAMS) --name '$(PARAMS_NAME)' --owner $$PPID
SNAPSHOT_FILES := $(addprefix $(STAMPS)/,$(addsuffix .json,$(SECTIONS))) \
  $(patsubst notebooks/%,$(NBSNAP)/%,$(NOTEBOOKS)) $(ENVSNAP)
$(SNAPSHOT_FILES) &: | $(ENV)
	@$(SNAPSHOT)
.SECONDARY: $(SNAPSHOT_FILES)

# ---- build-wide progress: the first notebook that runs asks `make -n` which
# notebooks will run, in order (pipeline.progress); a no-op build does not
export KZ_PLAN_ARGS := reports/paper.html PARAMS=$(PARAMS)

# ---- the project's own code, compiled: every step and kernel imports `analysis` and
# `pipeline` afresh, and with PYTHONDONTWRITEBYTECODE it would compile them each time
# (~0.05 s a process). Hash-checked .pyc files (src/*/__pycache__/) are used only while
# their source has the hash they record; an edited module compiles in memory (or,
# without PYTHONDONTWRITEBYTECODE, Python rewrites its .pyc) until the next build. A
# source that does not compile, or a src/ that cannot be written, is left to the step
# that imports it (which names the error). -f: a date-based .pyc that an import wrote
# first (without PYTHONDONTWRITEBYTECODE) is replaced too. The stamp has the time the
# compilation started: a source saved meanwhile is compiled again. (pipeline.snapshot
# makes the __pycache__ folders before it starts, so that the no-op check below never
# sees src/analysis or src/pipeline dated after it.)
BYTECODE := $(BUILD)/bytecode.ok
$(BYTECODE): $(PKG_SRC) | $(ENV)
	@mkdir -p $(@D); t=$$(date +%s.%N); \
	$(PY) -m compileall -f -qq --invalidation-mode checked-hash src/analysis src/pipeline >/dev/null 2>&1 || true; \
	touch -d "@$$t" $@

# ---- stages
# papermill through the runner, on the notebook's snapshot and its section's params
# snapshot; outputs into .build/out (published by the paper stage)
$(OUT)/notebooks/%.ipynb: $(NBSNAP)/%.ipynb $(STAGE_SRC) $(ENV) $(ENVSNAP) requirements.lock | $(BYTECODE)
	@$(if $(filter fresh,$(SNAPSHOT_SKIPPED)),$(SNAPSHOT) &&) \
	  $(STEP) pipeline.run notebooks/$*.ipynb --build --out $@ --inputs $(filter-out $(ENV),$^)

# Each stage's inputs are declared once: its params section (the stamp of the section
# its name carries) and the tables it reads, which the runner records when it runs
# (.build/deps/<notebook>.mk, like a compiler's dependency files). Before its first
# run a stage waits for every processed table.
$(foreach s,$(SECTIONS),$(foreach nb,$(wildcard notebooks/[0-9][0-9]_$(s).ipynb),\
  $(eval $(OUT)/notebooks/$(notdir $(nb)): $(STAMPS)/$(s).json)))
# the data stage: validates data/raw, writes data/processed (only files whose content changes)
DATA_STAGE := $(filter %_data.ipynb,$(patsubst notebooks/%,$(OUT)/notebooks/%,$(NOTEBOOKS)))
$(DATA_STAGE): $(RAW)
$(PROCESSED): $(DATA_STAGE) ;
$(foreach t,$(filter-out $(DATA_STAGE),$(EXECUTED)),\
  $(if $(wildcard $(BUILD)/deps/$(notdir $(t:.ipynb=.mk))),,$(eval $(t): $(PROCESSED))))
-include $(wildcard $(BUILD)/deps/*.mk)
# figures and per-notebook results are written by the runner with the executed copy
ANALYSES := $(filter-out $(DATA_STAGE),$(EXECUTED))
RESULT_FILES := $(patsubst $(OUT)/notebooks/%.ipynb,$(OUT)/results/%.json,$(ANALYSES))
$(RESULT_FILES): $(OUT)/results/%.json: $(OUT)/notebooks/%.ipynb ;

## results: merge the recorded results into .build/out/results.json (the paper stage merges them itself)
.PHONY: results
results: $(OUT)/results.json
$(OUT)/results.json: $(RESULT_FILES) src/analysis/results.py src/pipeline/merge.py $(ENV) | $(BYTECODE)
	@$(STEP) pipeline.merge $(RESULT_FILES) --out $@

## data: validate the raw data package and write data/processed/
.PHONY: data
data: $(DATA_STAGE)

## analyses: execute every notebook (into .build/out/; `make report` publishes them)
.PHONY: analyses
analyses: $(EXECUTED)

# executed notebooks as HTML pages (code shown), linked from the paper. The runner
# writes a notebook's page right after its executed copy (pipeline.run.page), so this
# step runs `pipeline.report` only for a page that is still older than one of its
# prerequisites (report.py changed, or the runner could not make it): make dated the
# page before the runner wrote it, so the recipe looks again itself.
NOTEBOOK_PAGES := $(EXECUTED:.ipynb=.html)
$(NOTEBOOK_PAGES): $(OUT)/notebooks/%.html: $(OUT)/notebooks/%.ipynb src/pipeline/report.py $(ENV) | $(BYTECODE)
	@for p in $^; do if [ ! -e $@ ] || [ "$$p" -nt $@ ]; then exec $(STEP) pipeline.report $<; fi; done

## report: build reports/paper.html (sets up the environment if needed)
# The paper stage checks every stage's fingerprint, renders the paper, and publishes
# it with results.json, figures and executed notebooks into reports/, together.
.PHONY: report
report: reports/paper.html
# make never deletes it (it deletes the target of an interrupted or failed recipe
# whose date changed): the paper stage moves it into place last, in one rename, so
# the paper.html there is always a whole one. Deleted after that move, it left no
# report at all; kept, it is the new one (a publication interrupted before its end
# leaves the marker that makes the next build publish again: pipeline.publish).
.PRECIOUS: reports/paper.html
# The paper names the commit it was built from: a commit, or a checkout of another,
# makes it again (git's HEAD and the branch ref it points to; none outside a git
# checkout, e.g. in a scratch copy). Before, a paper built before a commit kept the
# old commit's name, and `make verify` failed on it.
GIT_REFS := $(shell git rev-parse --git-path HEAD --git-common-dir --symbolic-full-name HEAD 2>/dev/null)
GIT_REF_FILES := $(wildcard $(firstword $(GIT_REFS)) \
  $(if $(word 3,$(GIT_REFS)),$(word 2,$(GIT_REFS))/$(word 3,$(GIT_REFS)) $(word 2,$(GIT_REFS))/packed-refs))
reports/paper.html: paper/paper.md $(RESULT_FILES) $(NOTEBOOK_PAGES) $(PKG_SRC) $(ENV) \
  $(ENVSNAP) data/raw/datapackage.json requirements.lock $(GIT_REF_FILES) \
  $(addprefix $(STAMPS)/,$(addsuffix .json,$(SECTIONS))) $(wildcard $(STAMPS)/file.txt) \
  $(wildcard $(BUILD)/stages.txt) | $(BYTECODE)
	@$(STEP) pipeline.paper --source paper/paper.md --build $(OUT) --stamps $(STAMPS) --out $@ \
	  $(notdir $(basename $(EXECUTED))) --results $(RESULT_FILES)

## verify: re-execute every notebook in a scratch folder and check every result and figure
.PHONY: verify
verify: $(ENV)
	@$(PY) -m pipeline.verify --params $(PARAMS)

## record: deliberately update reports/expected-results.json (shows what changed)
.PHONY: record
record: $(ENV)
	@$(PY) -m pipeline.verify --record --params $(PARAMS)

## test: unit, data-validation, notebook tests and the standard tools (pytest)
.PHONY: test
# one worker more than cores: the workers wait on their builds' warm servers, on
# Java, Chromium and subprocesses, and a third keeps both cores busy meanwhile (on the
# 2-core development machine, medians of 4 interleaved runs: 129 s, against 138 s).
# --dist loadgroup with no groups: each test is handed to the next worker that frees
# up (a few queued each), in the order tests/conftest.py gives them (slow ones first)
test: $(ENV) $(BYTECODE) $(if $(NPM),$(NODE_TOOLS))
	$(PY) -m pytest -n $$(( $(NPROC) + 1 )) --dist loadgroup

## bench: first run, clean, incremental, no-op builds, make test vs baselines (BENCH_ARGS=--no-test)
.PHONY: bench
bench: $(ENV)
	$(PY) bench/bench.py $(BENCH_ARGS)

## lint: ruff on the package, tests, tools and notebooks
.PHONY: lint
lint: $(ENV)
	$(PY) -m ruff check src tests tools bench notebooks

## node_modules: install the HTML checkers (Nu checker, axe-core) from package-lock.json
.PHONY: node_modules
node_modules: $(NODE_TOOLS)
$(NODE_TOOLS): package.json package-lock.json
	$(if $(NPM),,$(error npm is needed for the HTML checkers (apt-get install npm)))
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

## check: the ecosystem's own tools: frictionless, mypy, pre-commit hooks, Nu checker and axe on reports/
.PHONY: check
check: $(ENV) $(NODE_TOOLS) reports/paper.html
	$(PY) -m frictionless validate data/raw/datapackage.json
	$(PY) -m mypy
	$(PY) -m pre_commit run --all-files --show-diff-on-failure
	$(PY) -m pipeline.check_html reports/paper.html $(NOTEBOOK_PAGES)

## notebook: scaffold a new stage: make notebook NAME=<section> (notebook, params entry, schema)
.PHONY: notebook
notebook: $(ENV)
	@$(PY) -m pipeline.scaffold $(NAME)

## lab: open JupyterLab on the project kernel
.PHONY: lab
lab: $(ENV) $(PROCESSED) $(BYTECODE)
	$(PY) -m jupyterlab --notebook-dir=. --ServerApp.default_url=/lab/tree/notebooks

## checksums: deliberately record new sha256 sums after editing data/raw/
.PHONY: checksums
checksums: $(ENV)
	$(PY) -m pipeline.checksums --update

## lock: recompile requirements.lock from the pins in environment.yml (needs uv)
.PHONY: lock
lock: $(ENV)
	$(PY) tools/lock.py

## clean: remove every generated output (keeps .venv; `make distclean` removes it too)
.PHONY: clean distclean
clean:
	rm -rf $(BUILD) scratch/outputs scratch/.tmp
	find src -name __pycache__ -type d -prune -exec rm -rf {} +
	find reports -mindepth 1 -maxdepth 1 ! -name .gitkeep ! -name expected-results.json \
	  ! -name expected-figures -exec rm -rf {} +
	find data/processed -type f ! -name .gitkeep -delete
## distclean: `make clean`, and remove .venv and the bootstrapped uv too
distclean: clean
	rm -rf $(VENV) .tools
