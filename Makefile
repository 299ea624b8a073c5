# METS: `make run` for the demo, `make test` for the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=
# pytest-xdist processes for `make test` (each with its own SQLite file and PostgreSQL database); 0: none.
# Work stealing: an idle process takes tests queued for a busy one, so a few long tests do not leave a tail.
TEST_WORKERS ?= 3

.PHONY: run test lint migrate seed clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.installed
	$(BIN)/flask --app wsgi db upgrade

seed: migrate
	$(BIN)/flask --app wsgi mets seed-demo --if-empty

# Links in mail and on the console follow the address served (METS_BASE_URL, unless set already).
run seed: export METS_BASE_URL ?= http://$(HOST):$(PORT)

# Both run in the background so that the shell's traps fire at once; a signal stops both with SIGTERM
# (never `kill 0`: that signals make and the shell itself, whose trap then re-fires until it crashes).
run: seed
	@echo "METS on $(METS_BASE_URL) with its worker (mail to instance/maildir every 2 s, SLA tick every minute). Ctrl-C stops both."
	@$(BIN)/python worker.py & worker=$$!; \
	$(BIN)/flask --app wsgi run --host $(HOST) --port $(PORT) & web=$$!; \
	trap 'kill $$worker $$web 2>/dev/null; wait' EXIT; trap 'exit 0' INT TERM HUP; \
	wait $$web

# With TEST_DATABASE_URL unset, the local PostgreSQL is used when one answers at 127.0.0.1:5432
# (database mets_test, created by the suite); NO_POSTGRES=1 runs SQLite only.
test: $(VENV)/.installed-dev
	@url="$${TEST_DATABASE_URL:-}"; \
	if [ -z "$$url" ] && [ -z "$(NO_POSTGRES)" ]; then url="$$($(BIN)/python -m tests.local_postgres)"; fi; \
	if [ -n "$$url" ]; then echo "make test: every database test on SQLite and on PostgreSQL ($$url)"; \
	else echo "make test: SQLite only (no PostgreSQL at 127.0.0.1:5432 and no TEST_DATABASE_URL)"; fi; \
	TEST_DATABASE_URL="$$url" $(BIN)/pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist worksteal) $(PYTEST_ARGS)

# ruff (pyproject.toml) and the import-linter contracts that hold the layers (docs/architecture.md).
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	PYTHONPATH=. $(BIN)/lint-imports

clean:
	rm -rf $(VENV) instance .pytest_cache
