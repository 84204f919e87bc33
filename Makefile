# Quick start: `make run` (set up, then run the appliance) and `make test` (set up, lint, test).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint unit clean

setup:
	@bash scripts/setup.sh

run: setup
	$(BIN)/nameplate up

lint: setup
	$(BIN)/ruff check appliance camera rules erp_bridge training tests bench
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest

test: lint unit

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
