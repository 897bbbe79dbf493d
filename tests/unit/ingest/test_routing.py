import msgspec
import pytest

from fleetlink.contracts import headers as h
from fleetlink.ingest.routing import DLQ_MAX_PAYLOAD, DlqReason, Inbound, Router, content_hash
from fleetlink.security.ratelimit import RateLimiter
from fleetlink.settings import MappingRule, default_mappings

VIN = "WVWZZZ1JZXW000001"
NOW = 1_764_000_000_000


def router(**kwargs: int) -> Router:
    options = {"max_payload_bytes": 4096, "late_after_ms": 60_000, **kwargs}
    return Router(default_mappings(), **options)


def inbound(topic: str, payload: bytes | str, **kwargs: object) -> Inbound:
    raw = payload.encode() if isinstance(payload, str) else payload
    return Inbound(topic=topic, payload=raw, qos=1, received_ms=NOW, **kwargs)  # type: ignore[arg-type]


def telemetry(seq: int = 1, ts: int = NOW, **extra: object) -> bytes:
    return msgspec.json.encode({"ts": ts, "seq": seq, "signals": {"Vehicle.Speed": 50}, **extra})


def test_telemetry_goes_to_fleet_telemetry_keyed_by_vin_with_headers() -> None:
    message = inbound(
        f"vehicles/{VIN}/telemetry",
        telemetry(seq=7, ts=NOW - 1000),
        user_properties=[("fw", "2.1"), ("fl.msg_id", "spoof"), ("content-type", "x")],
        content_type="application/json; charset=utf-8",
        redelivered=True,
    )
    record = router().route(message)
    assert record.topic == "fleet.telemetry"
    assert record.key == VIN.encode()
    assert record.value == message.payload  # raw bytes, untouched
    assert record.dlq_reason is None
    headers = dict(record.headers)
    assert headers[h.MESSAGE_ID] == f"{VIN}-7-{NOW - 1000}".encode()
    assert headers[h.MQTT_TOPIC] == f"vehicles/{VIN}/telemetry".encode()
    assert headers[h.QOS] == b"1"
    assert headers[h.EVENT_TIME] == str(NOW - 1000).encode()
    assert headers[h.INGEST_TIME] == str(NOW).encode()
    assert headers[h.CONTENT_TYPE] == b"application/json; charset=utf-8"
    assert headers[h.MAPPING] == b"telemetry"
    assert headers[h.REDELIVERED] == b"1"
    assert headers["fw"] == b"2.1"
    # user properties never shadow our own headers
    assert headers["user.fl.msg_id"] == b"spoof"
    assert headers["user.content-type"] == b"x"
    assert h.LATE not in headers


def test_vehicle_msg_id_wins_and_content_hash_is_the_fallback() -> None:
    with_id = router().route(inbound(f"vehicles/{VIN}/telemetry", telemetry(msg_id="abc-1")))
    assert with_id.message_id == "abc-1"
    presence = inbound(f"vehicles/{VIN}/presence", '{"status":"online","ts":5}')
    routed = router().route(presence)
    assert routed.topic == "fleet.presence"
    assert routed.message_id == content_hash(presence.topic, presence.payload)
    assert router().route(presence).message_id == routed.message_id  # stable on redelivery


def test_events_and_command_responses_route_by_their_rules() -> None:
    event = router().route(inbound(f"vehicles/{VIN}/events/crash", '{"ts":5,"seq":2}'))
    assert (event.topic, event.key) == ("fleet.events", VIN.encode())
    response = router().route(
        inbound(f"vehicles/{VIN}/command-responses/cmd-42", '{"ts":5,"status":"succeeded"}')
    )
    assert (response.topic, response.key) == ("fleet.command-responses", b"cmd-42")


def test_old_and_resent_data_is_flagged_late() -> None:
    old = router().route(inbound(f"vehicles/{VIN}/telemetry", telemetry(ts=NOW - 61_000)))
    assert old.late
    assert dict(old.headers)[h.LATE] == b"1"
    resent = router().route(inbound(f"vehicles/{VIN}/telemetry", telemetry(resent=True)))
    assert resent.late
    fresh = router().route(inbound(f"vehicles/{VIN}/telemetry", telemetry(ts=NOW - 59_000)))
    assert not fresh.late


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("vehicles/NOTAVIN/telemetry", telemetry(), DlqReason.INVALID_VIN),
        ("vehicles/WVWZZZ1JZXW00000I/telemetry", telemetry(), DlqReason.INVALID_VIN),
        (f"vehicles/{VIN}/telemetry", b"\xff\xfe not json", DlqReason.INVALID_UTF8),
        (f"vehicles/{VIN}/telemetry", b"{not json", DlqReason.NOT_JSON),
        (f"vehicles/{VIN}/telemetry", b'{"seq":1,"signals":{}}', DlqReason.MISSING_TIMESTAMP),
        (f"vehicles/{VIN}/telemetry", b'{"ts":1,"seq":"x","signals":{}}', DlqReason.SCHEMA),
        (f"vehicles/{VIN}/telemetry", b'{"ts":1,"seq":1,"signals":{"x":1}}', DlqReason.SCHEMA),
        (
            f"vehicles/{VIN}/telemetry",
            telemetry(vin="WVWZZZ1JZXW000002"),
            DlqReason.VIN_MISMATCH,
        ),
        (f"vehicles/{VIN}/telemetry", b"x" * 5000, DlqReason.TOO_LARGE),
        (f"vehicles/{VIN}/events/teleport", b'{"ts":1,"seq":1}', DlqReason.UNKNOWN_EVENT_KIND),
        (f"vehicles/{VIN}/radio", b"{}", DlqReason.NO_MAPPING),
    ],
)
def test_bad_input_becomes_a_dead_letter_with_its_raw_bytes(
    topic: str, payload: bytes, reason: DlqReason
) -> None:
    message = inbound(topic, payload)
    record = router().route(message)
    assert record.topic == "fleet.dlq"
    assert record.dlq_reason is reason
    assert record.value == payload
    headers = dict(record.headers)
    assert headers[h.DLQ_REASON] == reason.value.encode()
    assert headers[h.DLQ_DETAIL]
    assert headers[h.MQTT_TOPIC] == topic.encode()
    # keyed by the VIN when the topic holds a valid one, so a vehicle's letters stay together
    expected_key = VIN.encode() if VIN in topic else None
    assert record.key == expected_key


def test_huge_dead_letter_is_truncated_but_its_size_kept() -> None:
    big = b"y" * (DLQ_MAX_PAYLOAD + 10)
    record = router(max_payload_bytes=1024).route(inbound(f"vehicles/{VIN}/telemetry", big))
    assert record.dlq_reason is DlqReason.TOO_LARGE
    assert len(record.value) == DLQ_MAX_PAYLOAD
    assert dict(record.headers)[h.DLQ_ORIGINAL_SIZE] == str(len(big)).encode()


def test_raw_rule_with_hash_wildcard_and_no_key() -> None:
    rules = [
        MappingRule(
            name="diag",
            mqtt_filter="diag/#",
            kafka_topic="diag.raw",
            key_level=None,
            vin_level=None,
        )
    ]
    router_ = Router(rules, max_payload_bytes=100, late_after_ms=1000)
    record = router_.route(inbound("diag/a/b/c", b"anything at all"))
    assert (record.topic, record.key, record.dlq_reason) == ("diag.raw", None, None)
    assert router_.route(inbound("other", b"x")).dlq_reason is DlqReason.NO_MAPPING


@pytest.mark.parametrize("bad", ["$share/g/a", "a/b+/c", "a/#/c", "a/#x"])
def test_bad_mapping_filters_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="mqtt_filter"):
        MappingRule(name="x", mqtt_filter=bad, kafka_topic="t")


def test_a_flooding_vehicle_is_throttled_alone_and_nothing_is_dropped() -> None:
    clock = [0.0]
    limited = Router(
        default_mappings(),
        max_payload_bytes=4096,
        late_after_ms=60_000,
        vehicle_limiter=RateLimiter(rate=10, burst=5),
        clock=lambda: clock[0],
    )
    other = "WVWZZZ1JZXW000002"
    flood = [limited.route(inbound(f"vehicles/{VIN}/telemetry", telemetry(n))) for n in range(8)]
    assert [r.dlq_reason for r in flood] == [None] * 5 + [DlqReason.RATE_LIMITED] * 3
    assert all(r.value == telemetry(n) for n, r in enumerate(flood))  # parked, not lost
    assert flood[-1].topic == "fleet.dlq"
    assert dict(flood[-1].headers)[h.DLQ_REASON] == b"rate-limited"
    calm = limited.route(inbound(f"vehicles/{other}/telemetry", telemetry(1)))
    assert calm.dlq_reason is None  # another car has its own bucket
    assert limited.throttled == {VIN: 3}
    clock[0] = 0.1  # a tenth of a second later: one more token
    assert limited.route(inbound(f"vehicles/{VIN}/telemetry", telemetry(9))).dlq_reason is None
