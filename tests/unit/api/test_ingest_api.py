"""HTTP ingest without a broker: a car's own data is written once with its headers; every bad
request is answered and never written; a car speaks only for itself."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import pytest

from fleetlink.adapters.kafka.dedup import message_id
from fleetlink.contracts import headers as h
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.users import UserRole
from tests.support.api import CAR, OTHER, run, running_api
from tests.support.stack import user_token


def telemetry(seq: int) -> bytes:
    now = time.time_ns() // 1_000_000
    return msgspec.json.encode({"ts": now, "seq": seq, "signals": {"Vehicle.Speed": 12.5}})


def test_a_cars_telemetry_is_written_once_with_its_headers_after_the_ack(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            car = user_token(api.settings, CAR, UserRole.VEHICLE)
            reply = await api.client.post(
                f"/v1/vehicles/{CAR}/telemetry", content=telemetry(1), headers=car
            )
            assert reply.status_code == 202, reply.text
            answer = reply.json()
            topic = api.settings.topic_map()[KafkaTopic.TELEMETRY]
            [record] = api.kafka.records(topic)
            assert (answer["topic"], answer["offset"]) == (topic, record.offset())
            assert record.key() == CAR.encode()
            assert (h.SOURCE, b"http") in record.headers()
            assert message_id(record.headers()) == answer["message_id"]

    run(scenario())


@pytest.mark.parametrize(
    ("path", "payload", "status", "error"),
    [
        (f"/v1/vehicles/{CAR}/telemetry", b"{not json", 400, "not-json"),
        (f"/v1/vehicles/{CAR}/telemetry", b"", 400, "empty"),
        (f"/v1/vehicles/{CAR}/telemetry", b'{"seq":1,"signals":{}}', 422, "missing-timestamp"),
        ("/v1/vehicles/NOT-A-VIN/telemetry", b"{}", 422, "invalid-vin"),
        (f"/v1/vehicles/{CAR}/telemetry", b"x" * (300 * 1024), 413, "too-large"),
        (f"/v1/vehicles/{CAR}/events/teleport", b"{}", 422, "invalid-request"),
        (f"/v1/vehicles/{OTHER}/telemetry", b"{}", 403, "forbidden"),
    ],
)
def test_a_bad_request_is_answered_and_never_written(
    tmp_path: Path, path: str, payload: bytes, status: int, error: str
) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            car = user_token(api.settings, CAR, UserRole.VEHICLE)
            reply = await api.client.post(path, content=payload, headers=car)
            assert reply.status_code == status, reply.text
            assert reply.json()["error"] == error
            written = api.records(KafkaTopic.TELEMETRY) + api.records(KafkaTopic.EVENTS)
            assert written == []

    run(scenario())
