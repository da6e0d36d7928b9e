# The README's commands. Each creates .venv and installs what it needs.
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

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "tocsin needs Python 3.11 or newer: make ... PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

$(OLDEST_STAMP): pyproject.toml
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST)/bin/python -m pip install --quiet -e ".[dev]" "sqlalchemy[asyncio]==$(SA_OLDEST)"
	rm -f $(OLDEST)/.installed-*
	touch $@

demo: $(STAMP)
	$(BIN)/python -m examples.shop $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/ruff format --check src tests benchmarks examples scripts
	$(BIN)/mypy --strict src examples

test: lint $(OLDEST_STAMP)
	@bash scripts/ensure-services.sh
	$(BIN)/pytest $(PYTEST_ARGS)
	@PYTEST_ARGS="$(PYTEST_ARGS)" bash scripts/test-other-pythons.sh
	$(OLDEST)/bin/pytest -q $(SA_TESTS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) $(OLDEST) .venv-py3.* .pytest_cache .mypy_cache .ruff_cache
