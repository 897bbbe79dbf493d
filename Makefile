# The README's two commands are `make demo` and `make test`; both install what is missing first.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bootstrap lint format typecheck unit integration conformance schemas clean

demo: bootstrap
	$(BIN)/fleetlink demo

# unit tests are pure and spread over every core; integration tests share one platform, in turn
test: bootstrap lint typecheck
	$(BIN)/pytest -v -n auto tests/unit
	$(BIN)/pytest -v tests/integration

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
	$(BIN)/pytest -v -n auto tests/unit

integration: bootstrap
	$(BIN)/pytest -v tests/integration

# The API of a running platform (`make demo` in another shell) against its OpenAPI document, with
# schemathesis and schemathesis.toml: as a fleet admin, the ingest as the document's example car.
API_URL ?= http://127.0.0.1:8080
EXAMPLE_CAR := WVWZZZ1JZXW000001
conformance: bootstrap
	@$(BIN)/fleetlink users add conformance-admin --role fleet-admin >/dev/null
	@$(BIN)/fleetlink users add courier --role service >/dev/null
	@$(BIN)/fleetlink users add $(EXAMPLE_CAR) --role vehicle >/dev/null
	FLEETLINK_TOKEN=$$($(BIN)/fleetlink token conformance-admin) \
	FLEETLINK_VEHICLE_TOKEN=$$($(BIN)/fleetlink token $(EXAMPLE_CAR)) \
	$(BIN)/schemathesis --config-file schemathesis.toml run $(API_URL)/openapi.json

schemas:
	$(BIN)/fleetlink contracts schema --out schemas

clean:
	-$(BIN)/fleetlink stack down
	rm -rf $(VENV) .fleetlink .pytest_cache .mypy_cache .ruff_cache
