# The README's commands. Each target installs what it needs, idempotently:
#   make demo   the keeper's world on the embedded devnet (anvil + real Perp v2 / Uniswap contracts)
#   make test   the whole suite: forge tests, then pytest (unit + integration on the devnet, and the
#               bounded chaos run, tests/e2e/test_chaos.py, about 2 minutes)
#   make bench  benchmarks (numbers printed, nothing asserted)
#   make chaos  the live keeper through RPC faults, kill -9, reorgs and a stuck tx; prints the audit
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FORGE = $(firstword $(wildcard node_modules/@foundry-rs/forge-*/bin/forge))

.PHONY: demo test bench chaos chaos-test deps pydeps npmdeps contracts clean

demo: deps
	$(BIN)/keeper run --config config/devnet.toml

# Forge under the `ci` profile (foundry.toml): 10,000 runs of the access-control fuzz tests and the
# stranger invariant, with a fresh random seed each time (printed by forge; replay with --fuzz-seed).
test: deps
	FOUNDRY_PROFILE=ci $(FORGE) test --no-match-path 'contracts/test/fork/*' --fuzz-seed 0x$$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
	$(BIN)/python -m pytest

bench: deps
	$(BIN)/python -m bench

chaos: deps
	$(BIN)/python -m keeper.chaos --steps 150

# The bounded chaos run (one cycle) alone; `make test` runs it too.
chaos-test: deps
	$(BIN)/python -m pytest -m chaos

deps: pydeps npmdeps contracts

pydeps: $(VENV)/.installed
npmdeps: node_modules/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# The git-dependency packages (@perp/curie-contract, @chainlink/contracts) install through the
# "overrides" in package.json; install scripts are skipped, so the foundry binaries get +x here.
# `npm install` (not `npm ci`): it follows the lock, but npm's lock omits the other platforms'
# optional @foundry-rs binaries and `npm ci` then refuses the lock as out of sync.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --ignore-scripts
	chmod +x node_modules/@foundry-rs/*-*-*/bin/*
	@touch $@

contracts: npmdeps
	$(FORGE) build --quiet

clean:
	rm -rf out cache build .pytest_cache .hypothesis
