"""The API on the real Kafka keeps its published document too: a short schemathesis run (every
phase, fewer cases than the hermetic one) against the app on the session's stack."""

from __future__ import annotations

from pathlib import Path

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.api.app import create_app
from fleetlink.api.commands import EXAMPLE_VIN
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import Presence, PresenceStatus
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.conformance import FUZZED_API, PHASES, check_conformance
from tests.support.gateway import gateway_config


def test_the_api_on_real_kafka_keeps_its_published_contract(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    _config, isolated, topics = gateway_config(tmp_path, stack_config)
    settings = isolated.model_copy(update={"api": isolated.api.model_copy(update=FUZZED_API)})
    clients = KafkaClients.of(settings)
    producer = clients.producer()
    online = Presence(status=PresenceStatus.ONLINE, ts=1)
    producer.produce(topics.presence, encode(online), EXAMPLE_VIN.encode())
    assert producer.flush(10) == 0

    result = check_conformance(create_app(settings), settings, max_examples=3)

    assert not result.failures, f"the API breaks its document:\n{result.report()}"
    assert result.completed
    assert result.passed_phases >= PHASES
    assert read_topic(clients, topics.telemetry), "no accepted telemetry reached Kafka"
    assert read_topic(clients, topics.commands), "no accepted command reached Kafka"
