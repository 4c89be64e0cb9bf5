# The compendium's build graph. `make help` lists the targets.
#
#   data/raw/* + datapackage.json --01_data--> data/processed/*
#   notebooks/NN_*.ipynb (papermill, params section) --> reports/notebooks/*
#   reports/notebooks/* --> reports/paper.html
#
# Every stage lists all it depends on: its notebook, its params section (a
# stamp rewritten only when that section changes), its input files, the
# `analysis` package sources and the environment (built from the lock file).

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
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
# `make data PY=python` (Binder, conda): use an interpreter that already has the
# pins of environment.yml and the `analysis` package; no .venv is built
ifeq ($(origin PY),command line)
ENV := .build/env-$(subst /,_,$(PY))
else
PY := $(VENV)/bin/python
ENV := $(VENV)/.installed
endif
NPM := $(shell command -v npm 2>/dev/null)
NODE_TOOLS := node_modules/.installed
KERNEL := kz-civil-society
UV := $(shell command -v uv 2>/dev/null)

PKG_SRC := $(sort $(wildcard src/analysis/*.py src/analysis/templates/*)) pyproject.toml
# what the notebooks import: the paper's assembly and template do not rerun analyses
ANALYSIS_SRC := $(filter-out src/analysis/paper.py src/analysis/report.py src/analysis/verify.py \
  src/analysis/progress.py src/analysis/templates/%,$(PKG_SRC))
RAW := $(sort $(wildcard data/raw/*.csv)) data/raw/datapackage.json
BUILD := .build
STAMPS := $(BUILD)/params

SECTIONS := data ngo parliament survey claims
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
EXECUTED := $(patsubst notebooks/%,reports/notebooks/%,$(NOTEBOOKS))
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
else
$(ENV): requirements.lock pyproject.toml
	@echo "[env] building $(VENV) from requirements.lock"
	@test -x $(PY) || $(if $(UV),$(UV) venv --quiet --python $(PYTHON) $(VENV),$(PYTHON) -m venv $(VENV))
ifneq ($(UV),)
	$(UV) pip sync --quiet --python $(PY) --compile-bytecode --require-hashes requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation --compile-bytecode -e .
else
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . 2>&1 | { grep -v 'is ignored: it is neither' || true; }
endif
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python ($(KERNEL))" >/dev/null
	@$(GIT_FILTER)
	@touch $@
endif

# nbstripout as a git filter (.gitattributes): whatever a researcher saves from
# JupyterLab, git sees the notebook without outputs; its settings are those of
# the pre-commit hook (.pre-commit-config.yaml), cell ids are kept
NBSTRIPOUT_ARGS := --keep-id --extra-keys "metadata.language_info.version cell.metadata.execution cell.metadata.papermill"
# (in a linked worktree, only with extensions.worktreeConfig, so that the other
# worktrees of the repository keep their own settings)
NBSTRIPOUT := '"$(abspath $(VENV))/bin/python" -m nbstripout $(NBSTRIPOUT_ARGS)'
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
.PHONY: git-filter
git-filter:
	@$(GIT_FILTER)

# ---- parameters: one stamp per section, rewritten only when that section changes.
# Written while make reads this file (one quick python call), so that plain file
# dates are exact and `make -n` (the progress plan) tells the truth.
NO_STAMPS_FOR := help clean distclean env git-filter node_modules lock test lint checksums bench verify record
ifneq ($(wildcard $(ENV)),)
ifeq ($(KZ_NO_STAMPS),)
ifneq ($(filter-out $(NO_STAMPS_FOR),$(or $(MAKECMDGOALS),report)),)
STAMP_OUT := $(shell $(PY) -m analysis.params $(PARAMS) --stamps $(STAMPS) 2>&1 || echo PARAMS-ERROR)
ifneq ($(findstring PARAMS-ERROR,$(STAMP_OUT)),)
$(error $(subst PARAMS-ERROR,,$(STAMP_OUT)))
endif
ifneq ($(STAMP_OUT),)
$(info $(STAMP_OUT))
endif
endif
endif
endif
# on a fresh clone the environment comes first, then the stamps
$(STAMPS)/%.json: | $(ENV)
	@$(PY) -m analysis.params $(PARAMS) --stamps $(STAMPS)

# ---- build-wide progress: which notebooks will run, in order (a cheap `make -n`)
PLAN := $(BUILD)/plan.json
.PHONY: $(PLAN)
$(PLAN): $(ENV)
	@$(PY) -m analysis.progress plan reports/paper.html PARAMS=$(PARAMS)

# ---- stages
# papermill through the runner; the section stamp named by the notebook
reports/notebooks/%.ipynb: notebooks/%.ipynb $(ANALYSIS_SRC) $(ENV) | $(PLAN)
	@$(PY) -m analysis.run $< --params $(PARAMS) --out $@ --inputs $(filter-out $(ENV),$^) requirements.lock

# 01_data: validates data/raw, writes data/processed (only files whose content changes)
reports/notebooks/01_data.ipynb: $(STAMPS)/data.json $(RAW)
$(PROCESSED): reports/notebooks/01_data.ipynb ;

# analyses: each notebook's params section and the processed tables it reads
P := data/processed
reports/notebooks/02_ngo.ipynb: $(STAMPS)/ngo.json $(P)/ngo_counts.csv \
  $(P)/ngo_activity_areas.csv $(P)/ngo_state_funding.csv $(P)/civic_space_scores.csv \
  $(P)/civic_space_indices.csv $(P)/civic_space_ratings.csv
reports/notebooks/03_parliament.ipynb: $(STAMPS)/parliament.json \
  $(P)/women_parliament_elections.csv $(P)/women_parliament_tiers.csv $(P)/women_parliament_annual.csv
reports/notebooks/04_survey.ipynb: $(STAMPS)/survey.json $(P)/survey_results.csv $(P)/surveys.csv
reports/notebooks/05_claims.ipynb: $(STAMPS)/claims.json $(P)/claims.csv $(P)/ngo_counts.csv $(P)/ngo_growth_statements.csv \
  $(P)/ngo_state_funding.csv $(P)/women_parliament_annual.csv \
  $(P)/women_parliament_elections.csv $(P)/policy_events.csv
# figures and per-notebook results are published by the runner with the executed copy
ANALYSES := $(filter-out reports/notebooks/01_data.ipynb,$(EXECUTED))
RESULT_FILES := $(patsubst reports/notebooks/%.ipynb,reports/results/%.json,$(ANALYSES))
$(RESULT_FILES): reports/results/%.json: reports/notebooks/%.ipynb ;

## results: merge the recorded results into reports/results.json
.PHONY: results
results: reports/results.json
reports/results.json: $(RESULT_FILES) src/analysis/results.py $(ENV)
	@$(PY) -m analysis.results $(RESULT_FILES) --out $@

## data: validate the raw data package and write data/processed/
.PHONY: data
data: reports/notebooks/01_data.ipynb

## analyses: execute every notebook (reports/notebooks/)
.PHONY: analyses
analyses: $(EXECUTED)

# executed notebooks as HTML pages (code shown), linked from the paper: one process
# for all of them (nbconvert's start-up is the cost), each page rewritten only if changed
NOTEBOOK_PAGES := $(EXECUTED:.ipynb=.html)
$(NOTEBOOK_PAGES) &: $(EXECUTED) src/analysis/report.py $(ENV)
	@$(PY) -m analysis.report $(if $(filter src/% $(ENV),$?),$(EXECUTED),$(filter %.ipynb,$?))
	@touch $(NOTEBOOK_PAGES)

## report: build reports/paper.html (sets up the environment if needed)
.PHONY: report
report: reports/paper.html
reports/paper.html: paper/paper.md reports/results.json $(RESULT_FILES) $(NOTEBOOK_PAGES) $(PKG_SRC) $(ENV) \
  data/raw/datapackage.json requirements.lock $(addprefix $(STAMPS)/,$(addsuffix .json,$(SECTIONS)))
	@$(PY) -m analysis.paper --source paper/paper.md --results reports/results.json --figures reports/figures \
	  --stamps $(STAMPS) --out $@

## verify: re-execute every notebook in a scratch folder and check every result and figure
.PHONY: verify
verify: $(ENV)
	@$(PY) -m analysis.verify --params $(PARAMS)

## record: deliberately update reports/expected-results.json (shows what changed)
.PHONY: record
record: $(ENV)
	@$(PY) -m analysis.verify --record --params $(PARAMS)

## test: unit, data-validation, notebook tests and the standard tools (pytest)
.PHONY: test
test: $(ENV) $(if $(NPM),$(NODE_TOOLS))
	$(PY) -m pytest

## bench: time clean, no-op and incremental builds against plain nbconvert (bench/results.json)
.PHONY: bench
bench: $(ENV)
	$(PY) bench/bench.py

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
	$(PY) tools/check_html.py reports/paper.html $(NOTEBOOK_PAGES)

## lab: open JupyterLab on the project kernel
.PHONY: lab
lab: $(ENV) $(PROCESSED)
	$(PY) -m jupyterlab --notebook-dir=. --ServerApp.default_url=/lab/tree/notebooks

## checksums: deliberately record new sha256 sums after editing data/raw/
.PHONY: checksums
checksums: $(ENV)
	$(PY) -m analysis.data --update-checksums

## lock: recompile requirements.lock from the pins in environment.yml (needs uv)
.PHONY: lock
lock: $(ENV)
	$(PY) tools/lock.py

## clean: remove generated outputs (keeps .venv; `make distclean` removes it too)
.PHONY: clean distclean
clean:
	rm -rf $(BUILD) reports/notebooks reports/figures reports/results reports/paper.html
	find data/processed -type f ! -name .gitkeep -delete
distclean: clean
	rm -rf $(VENV)
