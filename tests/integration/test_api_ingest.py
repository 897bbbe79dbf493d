"""HTTP ingest on the real Kafka: 202 after the ack, 4xx JSON for bad input, 503 when Kafka
is not there (for commands too)."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
from fastapi.testclient import TestClient

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.api.app import create_app
from fleetlink.contracts import headers as h
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings, load_settings
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import free_port_block
from tests.support.gateway import gateway_config, header
from tests.support.stack import user_token

VIN = "WVWZZZ1JZXW000042"
# the body that stopped the uplink: a string holding the UTF-8 bytes of a lone surrogate
LONE_SURROGATE_TELEMETRY = b'{"ts":1764000000000,"seq":1,"signals":{"Vehicle.X":"\xed\xa0\x80"}}'


def body(seq: int) -> bytes:
    return msgspec.json.encode(
        {"ts": time.time_ns() // 1_000_000, "seq": seq, "signals": {"Vehicle.Speed": 12.5}}
    )


def test_http_ingest_answers_after_the_kafka_ack(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    _config, settings, topics = gateway_config(tmp_path, stack_config)
    car = user_token(settings, VIN, UserRole.VEHICLE)
    with TestClient(create_app(settings), headers=car) as client:
        accepted = client.post(
            f"/v1/vehicles/{VIN}/telemetry",
            content=body(1),
            headers={"content-type": "application/json"},
        )
        assert accepted.status_code == 202, accepted.text
        answer = accepted.json()
        assert answer["topic"] == topics.telemetry
        assert answer["offset"] >= 0
        event = client.post(f"/v1/vehicles/{VIN}/events/harsh-braking", content=body(2))
        assert event.status_code == 202, event.text

        cases = [
            (f"/v1/vehicles/{VIN}/telemetry", b"{not json", 400, "not-json"),
            (f"/v1/vehicles/{VIN}/telemetry", LONE_SURROGATE_TELEMETRY, 400, "invalid-utf8"),
            (f"/v1/vehicles/{VIN}/telemetry", b"", 400, "empty"),
            (f"/v1/vehicles/{VIN}/telemetry", b'{"seq":1,"signals":{}}', 422, "missing-timestamp"),
            ("/v1/vehicles/NOT-A-VIN/telemetry", body(3), 422, "invalid-vin"),
            (f"/v1/vehicles/{VIN}/telemetry", b"x" * (300 * 1024), 413, "too-large"),
            (f"/v1/vehicles/{VIN}/events/teleport", body(4), 422, "invalid-request"),
        ]
        for path, payload, status, error in cases:
            reply = client.post(path, content=payload)
            assert reply.status_code == status, (path, reply.text)
            assert reply.json()["error"] == error
        deadline = time.monotonic() + 15
        while client.get("/readyz").status_code != 200:  # still reading the fleet's state
            assert time.monotonic() < deadline, "the API did not get ready"
            time.sleep(0.1)
        metrics = client.get("/metrics").text
        assert (
            'fleetlink_api_ingest_requests_total{channel="telemetry",status="202"} 1.0' in metrics
        )

    records = read_topic(KafkaClients.of(settings), topics.telemetry)
    assert len(records) == 1  # bad requests were answered, never written
    record = records[0]
    assert record.key() == VIN.encode()
    assert header(record, h.SOURCE) == b"http"
    assert header(record, h.MESSAGE_ID).decode() == answer["message_id"]
    assert len(read_topic(KafkaClients.of(settings), topics.events)) == 1


def test_http_ingest_says_503_with_retry_after_when_kafka_is_down(tmp_path: Path) -> None:
    nothing_there = free_port_block(1)
    config = tmp_path / "down.toml"
    config.write_text(
        f'[kafka]\nbootstrap_servers = "127.0.0.1:{nothing_there}"\n[api]\nkafka_timeout_s = 2\n'
        f'[stack]\nstate_dir = "{tmp_path}"\n'
    )
    settings = load_settings(config)
    car = user_token(settings, VIN, UserRole.VEHICLE)
    with TestClient(create_app(settings), headers=car) as client:
        started = time.monotonic()
        reply = client.post(f"/v1/vehicles/{VIN}/telemetry", content=body(1))
        assert reply.status_code == 503
        assert reply.headers["retry-after"] == "2"
        assert reply.json()["error"] == "kafka-unavailable"
        assert time.monotonic() - started < 10
        assert client.get("/readyz").status_code == 503
        # a command is not taken either: the API cannot know the fleet without Kafka
        admin = user_token(settings, "ada", UserRole.FLEET_ADMIN)
        command = client.post(f"/v1/vehicles/{VIN}/commands", json={"name": "honk"}, headers=admin)
        assert command.status_code == 503
        assert command.headers["retry-after"] == "2"
