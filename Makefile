# The two commands of the README: `make audit` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLES := sample_models/manifest.json
DEMO   := policies/credit_scoring.yaml

.PHONY: audit test install samples bench clean

audit: $(STAMP) $(SAMPLES)
	@$(BIN)/auditkit run $(DEMO); code=$$?; \
	if [ $$code -eq 1 ]; then \
	  echo "make audit: exit 1 is expected: the demo's failures are planted on purpose (see sample_models/README.md); reports are in reports/credit_scoring/"; \
	elif [ $$code -ne 0 ]; then \
	  echo "make audit: auditkit exited $$code"; exit $$code; \
	else \
	  echo "make audit: reports are in reports/credit_scoring/"; \
	fi

# Two processes, a test file's tests in one of them (module fixtures such as the demo run once).
test: $(STAMP) $(SAMPLES)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

samples: $(SAMPLES)

# Built once, deterministically; delete sample_models/manifest.json to rebuild.
$(SAMPLES): sample_models/build.py $(STAMP)
	$(BIN)/python sample_models/build.py

bench: $(STAMP) $(SAMPLES)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit $$?; done

clean:
	rm -rf reports .pytest_cache
