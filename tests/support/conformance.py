"""schemathesis (pinned) against the API app in-process, with the repository's
``schemathesis.toml``: every phase, and a report of what broke the document."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events
from schemathesis.python import asgi

from fleetlink.adapters.polling import wait_until
from fleetlink.api.commands import EXAMPLE_VIN
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings
from tests.support.stack import user_token

CONFIG = Path(__file__).resolve().parents[2] / "schemathesis.toml"
PHASES = frozenset({"examples", "coverage", "fuzzing", "stateful"})
# the fuzzer is one fast client; the cancel route need not wait for a downlink that is not there
FUZZED_API = {"cancel_wait_s": 0.05, "client_rate_per_s": 1e6, "client_burst": 1_000_000}


@dataclass
class Conformance:
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    passed_phases: set[str] = field(default_factory=set)
    links: int = 0
    completed: bool = False

    def report(self) -> str:
        return "\n".join(f"{' '.join(where)}: {why}" for where, why in self.failures.items())


def check_conformance(app: Any, settings: Settings, max_examples: int | None = None) -> Conformance:
    """Run every phase against ``app`` as a fleet admin (the ingest as the example car)."""
    user_token(settings, "courier", UserRole.SERVICE)  # the grantee of the document's example
    tokens = {
        "FLEETLINK_TOKEN": user_token(settings, "ada", UserRole.FLEET_ADMIN),
        "FLEETLINK_VEHICLE_TOKEN": user_token(settings, EXAMPLE_VIN, UserRole.VEHICLE),
    }
    saved = {name: os.environ.get(name) for name in tokens}
    os.environ.update({n: h["Authorization"].removeprefix("Bearer ") for n, h in tokens.items()})
    try:
        config = SchemathesisConfig.from_path(CONFIG)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if max_examples is not None:
        config.projects.default.generation.update(max_examples=max_examples)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    try:
        # loading the document started the app; its answers count once it has read the fleet
        views = (
            app.state.commands.view,
            app.state.hazards,
            app.state.parking,
            app.state.fleet,
        )
        if not wait_until(
            lambda: all(view.ready.is_set() for view in views), timeout=30, interval=0.05
        ):
            raise AssertionError("the API did not finish reading the fleet in 30 s")
        return _run(schema)
    finally:
        asgi.shutdown_lifespans()  # the app's Kafka clients stop with the run, not at exit


def _run(schema: Any) -> Conformance:
    result = Conformance()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status is Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        where = (event.phase.value, str(failure.operation), check.name)
                        result.failures.setdefault(where, _explain(event, case_id, failure.message))
        elif isinstance(event, events.PhaseStarted) and event.payload is not None:
            result.links = max(result.links, event.payload.transitions_total)
        elif isinstance(event, events.PhaseFinished) and event.status is Status.SUCCESS:
            result.passed_phases.add(event.phase.name.value)
        elif isinstance(event, events.FatalError | events.NonFatalError):
            raise AssertionError(f"schemathesis could not run: {event}")
        elif isinstance(event, events.EngineFinished):
            result.completed = event.stop_reason.value == "completed"
    return result


def _explain(event: events.ScenarioFinished, case_id: str, message: str) -> str:
    """The failure with the request and the answer that broke it."""
    exchange = event.recorder.interactions.get(case_id)
    if exchange is None or exchange.response is None:
        return message
    request, response = exchange.request, exchange.response
    answer = response.content[:300] if response.content else b""
    return f"{message} | {request.method} {request.uri} -> {response.status_code} {answer!r}"
