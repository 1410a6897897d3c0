# One entry point per job, for people and CI alike.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean venv mutate

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -qq --upgrade pip
	@$(BIN)/python -m pip install -qq -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# Ctrl-C ends the demo with exit 0 (it stops its sandbox and service itself): no make error line.
demo: $(STAMP)
	@$(BIN)/python -m permatoken.demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# Mutation testing of the security-critical modules against their own fast tests; slow, so not
# part of `make test` (docs/development.md). MODULE=crypto (or access, audit, secret, errors,
# auth, steps) narrows it to one module; MUTATE_JOBS sets the parallel mutants (default 2).
MUTATE_JOBS ?= 2
mutate: $(STAMP)
	@$(BIN)/python tools/mutate.py --jobs $(MUTATE_JOBS) $(MODULE)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
