"""An outside OpenAPI fuzzer holds the API to its published document: schemathesis, in-process on
the in-memory Kafka, every phase (examples, coverage, fuzzing, and stateful walks along the
document's links), derandomized and bounded by ``schemathesis.toml``."""

from __future__ import annotations

from pathlib import Path

from fleetlink.api.commands import EXAMPLE_VIN
from fleetlink.contracts.topics import KafkaTopic
from tests.support.api import CAR, OTHER, hermetic_app
from tests.support.conformance import FUZZED_API, PHASES, check_conformance


def test_the_api_keeps_its_published_contract(tmp_path: Path) -> None:
    # the document's example car is one the platform has seen
    app, kafka, settings = hermetic_app(tmp_path, cars=(CAR, OTHER, EXAMPLE_VIN), **FUZZED_API)
    result = check_conformance(app, settings)
    assert not result.failures, f"the API breaks its document:\n{result.report()}"
    assert result.completed
    assert result.passed_phases >= PHASES
    # create -> get -> cancel (commands) and create -> get -> revoke (keys), and the rest
    assert result.links >= 4
    # the run reached the API's rules, not only its doors: bodies it accepted are in Kafka
    topics = settings.topic_map()
    wrote = (KafkaTopic.TELEMETRY, KafkaTopic.EVENTS, KafkaTopic.COMMANDS, KafkaTopic.GRANTS)
    for topic in (*wrote, KafkaTopic.GEOFENCES):
        assert kafka.records(topics[topic]), f"nothing reached {topic}"
