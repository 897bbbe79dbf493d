# The README's two commands are `make demo` and `make test`; both install what is missing first.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bootstrap lint format typecheck unit integration schemas clean

demo: bootstrap
	$(BIN)/fleetlink demo

test: bootstrap lint typecheck
	$(BIN)/pytest -v

bootstrap:
	@scripts/bootstrap.sh

lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

format:
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

typecheck:
	$(BIN)/mypy src

unit: bootstrap
	$(BIN)/pytest -v tests/unit

integration: bootstrap
	$(BIN)/pytest -v tests/integration

schemas:
	$(BIN)/fleetlink contracts schema --out schemas

clean:
	-$(BIN)/fleetlink stack down
	rm -rf $(VENV) .fleetlink .pytest_cache .mypy_cache .ruff_cache
