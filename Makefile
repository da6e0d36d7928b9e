# The README's commands. Each creates .venv and installs what it needs: tocsin
# itself, editable, and the dev dependency group of pyproject.toml (PEP 735: the
# tools for working on tocsin, which its published metadata does not list).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# The oldest SQLAlchemy that pyproject.toml allows, in a second virtualenv: the
# SQLAlchemy tests run on it too. Keep it equal to the floor in pyproject.toml.
SA_OLDEST := 2.0.30
OLDEST := .venv-sa-oldest
OLDEST_STAMP := $(OLDEST)/.installed-$(SA_OLDEST)-$(shell cksum pyproject.toml | cut -d' ' -f1)
# The tests that import tocsin.integrations.sqlalchemy (the doctests of its guides
# run on the newest only).
SA_TESTS := tests/integrations/test_sqlalchemy_*.py
# Mutation testing (make mutation MODULE=src/tocsin/transaction.py), in its own
# virtualenv: the project's dev extra plus this mutmut.
MUTMUT_VERSION := 3.8.1
MUTATION := .venv-mutation
MUTATION_STAMP := $(MUTATION)/.installed-mutmut-$(MUTMUT_VERSION)-$(shell cksum pyproject.toml | cut -d' ' -f1)
JOBS ?= 2

# $(call virtualenv,DIR,EXTRA PACKAGES): DIR with the project's dev group (and
# the packages), stamped by the target's file.
define virtualenv
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(1)/bin/python -m pip install --quiet -e . --group dev $(2)
	rm -f $(1)/.installed-*
	touch $@
endef

.PHONY: demo test lint docs bench mutation clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "tocsin needs Python 3.11 or newer: make ... PYTHON=python3.11")'
	$(call virtualenv,$(VENV))

$(OLDEST_STAMP): pyproject.toml
	$(call virtualenv,$(OLDEST),"sqlalchemy[asyncio]==$(SA_OLDEST)")

$(MUTATION_STAMP): pyproject.toml
	$(call virtualenv,$(MUTATION),"mutmut==$(MUTMUT_VERSION)")

demo: $(STAMP)
	$(BIN)/python -m examples.shop $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/ruff format --check src tests benchmarks examples scripts
	$(BIN)/mypy --strict src examples

test: lint docs $(OLDEST_STAMP)
	@bash scripts/ensure-postgresql.sh
	@bash scripts/ensure-graphviz.sh
	@bash scripts/ensure-chromium.sh
	@bash scripts/ensure-services.sh
	$(BIN)/pytest $(PYTEST_ARGS)
	@PYTEST_ARGS="$(PYTEST_ARGS)" bash scripts/test-other-pythons.sh
	$(OLDEST)/bin/pytest -q $(SA_TESTS)

# The documentation site, into site/ (any static host can serve it). --strict
# turns every warning (a broken link, a reference mkdocstrings cannot resolve, a
# page missing from the nav) into a failure; make test builds it the same way.
# First the demo's signal graph in docs/inspection.md, rendered by Graphviz from
# `tocsin graph --format dot` (tests/cli/test_docs_output.py checks it is current).
docs: $(STAMP)
	@bash scripts/ensure-graphviz.sh
	$(BIN)/tocsin -A examples.shop.wiring graph --format dot | dot -Tsvg -o docs/images/shop-graph.svg
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

# One module's mutants (a few minutes); the report goes to reports/mutation/.
mutation: $(MUTATION_STAMP)
	@test -n "$(MODULE)" || { echo "make mutation MODULE=src/tocsin/<module>.py (or a package's folder)"; exit 2; }
	@bash scripts/ensure-postgresql.sh
	$(MUTATION)/bin/python scripts/mutation.py $(MODULE) --jobs $(JOBS)

clean:
	rm -rf $(VENV) $(OLDEST) $(MUTATION) .mutation .venv-py3.* .pytest_cache .mypy_cache .ruff_cache site
