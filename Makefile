# Parity: every habit is one command. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo install test lint bench bench-tools services browser clean fuzz

# Everything: Parity with every extra, the test and lint tools.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# What the demo needs: Parity itself on the embedded defaults (no extra, no test tools);
# nothing to install when the full install is already there and current.
$(DEMO_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if [ ! $(STAMP) -nt pyproject.toml ]; then \
		$(PIP) install --quiet --upgrade pip && $(PIP) install --quiet -e .; fi
	touch $(DEMO_STAMP)

# The guided tour (examples/demo.py); KEEP=1 keeps its repo and prints where it is.
demo: $(DEMO_STAMP)
	$(PY) examples/demo.py $(if $(KEEP),--keep)

services:
	bash scripts/services.sh

# The headless browser the report test opens pages in (Debian's chromium package).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

test: $(STAMP) services browser
	$(PY) -m pytest -n 2 --dist loadfile --durations=30

# The HTTP fuzz run, long: schemathesis over /openapi.json on SQLite and Redis, many more
# examples per operation than `make test` runs (PARITY_FUZZ_EXAMPLES; PARITY_FUZZ_SEED=N for
# other inputs than the derandomized ones). Minutes to an hour, depending on the machine.
PARITY_FUZZ_EXAMPLES ?= 1500
fuzz: $(STAMP) services
	PARITY_FUZZ_EXAMPLES=$(PARITY_FUZZ_EXAMPLES) $(PY) -m pytest tests/fuzz -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

# The serving benchmark's load generator (Debian package); not needed by `make test`.
bench-tools:
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)

bench: $(STAMP) services bench-tools
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
