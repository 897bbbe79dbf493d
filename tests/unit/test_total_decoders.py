"""Every decoder is total: any bytes become a record, or a dead letter / a skip with a reason.

Property tests over arbitrary bytes, arbitrary JSON and valid-looking messages, for each place
fleetlink reads input: the contract codec, the uplink router, the downlink, the tracker, the
API's read model and the in-vehicle agent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
import pytest
from confluent_kafka import Producer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from fleetlink.adapters.mqtt.vehicle_link import VehicleLink
from fleetlink.commands.downlink import Downlink
from fleetlink.commands.read_model import ReadModel
from fleetlink.commands.tracker import Tracker
from fleetlink.contracts import headers as h
from fleetlink.contracts.codec import DlqReason, UndecodableError, decode, decode_text
from fleetlink.contracts.models import MODELS, Command, CommandName, Telemetry, Transition
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.ingest.routing import DLQ_MAX_PAYLOAD, Inbound, Router
from fleetlink.security.signing import Signer, Verifier
from fleetlink.settings import MappingRule, Settings, default_mappings, load_settings
from fleetlink.testing.isolated import isolated_gateway_settings
from fleetlink.vehicle.commands import CommandExecutor, read_command
from fleetlink.vehicle.state import VehicleState
from tests.support.fakes import FakeMessage
from tests.support.strategies import (
    HEADERS,
    JSON,
    KEYS,
    LONE_SURROGATE,
    NOW,
    PAYLOADS,
    PROPERTY,
    RAW_VALUES,
    VALID,
    VALID_OF,
    VIN,
    with_bad_bytes,
)

NOWHERE = "127.0.0.1:9"  # the discard port: clients are built, nothing is ever sent


def outcome(call: Callable[[], object]) -> object:
    """What a decoder gives: its value, or the reason it refused (anything else escapes)."""
    try:
        return call()
    except UndecodableError as error:
        return error.reason if error.detail else "a reason without a detail"


@given(model=st.sampled_from(sorted(MODELS)), raw=RAW_VALUES)
@PROPERTY
def test_the_codec_gives_a_model_or_a_reason(model: str, raw: bytes | None) -> None:
    result = outcome(lambda: decode(MODELS[model], raw))
    assert isinstance(result, MODELS[model] | DlqReason)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, DlqReason.TOMBSTONE),
        (b"", DlqReason.EMPTY),
        (b'{"ts":1,"seq":1,"signals":{"Vehicle.X":"' + LONE_SURROGATE + b'"}}', "invalid-utf8"),
        (b"\xff{", DlqReason.INVALID_UTF8),
        (b"{no", DlqReason.NOT_JSON),
        (b'{"seq":1,"signals":{}}', DlqReason.MISSING_TIMESTAMP),
        (b'{"ts":1,"seq":-1,"signals":{}}', DlqReason.SCHEMA),
    ],
)
def test_each_kind_of_bad_input_has_its_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(UndecodableError) as caught:
        decode(Telemetry, raw)
    assert caught.value.reason == reason


@given(raw=KEYS)
@PROPERTY
def test_keys_are_text_or_a_reason(raw: bytes | None) -> None:
    result = outcome(lambda: decode_text(raw, "key"))
    assert isinstance(result, str) or result is DlqReason.INVALID_KEY


RULES = [
    *default_mappings(),
    MappingRule(name="all", mqtt_filter="vehicles/#", kafka_topic="fleet.raw", key_level=1),
    MappingRule(name="deep", mqtt_filter="+/+/+/#", kafka_topic="fleet.deep", vin_level=4),
]
LEVELS = st.sampled_from(["vehicles", VIN, "telemetry", "events", "crash", "presence", "+", ""])
CHANNELS = st.sampled_from(
    [
        f"vehicles/{VIN}/telemetry",
        f"vehicles/{VIN}/events/crash",
        f"vehicles/{VIN}/presence",
        f"vehicles/{VIN}/command-responses/c-1",
    ]
)
TOPICS = (
    CHANNELS
    | CHANNELS
    | st.lists(LEVELS | st.text(max_size=8), min_size=1, max_size=6).map("/".join)
)


@given(
    topic=TOPICS,
    payload=PAYLOADS,
    properties=st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=3),
    content_type=st.none() | st.text(max_size=20),
    rules=st.sampled_from([default_mappings(), RULES]),
)
@PROPERTY
def test_the_router_gives_a_record_or_a_dead_letter_for_any_message(
    topic: str,
    payload: bytes,
    properties: list[tuple[str, str]],
    content_type: str | None,
    rules: list[MappingRule],
) -> None:
    router = Router(rules, max_payload_bytes=4096, late_after_ms=60_000)
    message = Inbound(
        topic=topic,
        payload=payload,
        qos=1,
        received_ms=NOW,
        user_properties=properties,
        content_type=content_type,
    )
    record = router.route(message)
    names = dict(record.headers)
    assert record.value == payload[:DLQ_MAX_PAYLOAD]
    if record.dlq_reason is None:
        assert record.topic in {rule.kafka_topic for rule in rules}
    else:
        assert record.topic == "fleet.dlq"
        assert names[h.DLQ_REASON] == record.dlq_reason.value.encode()


CHANNEL_MODELS = {
    f"vehicles/{VIN}/telemetry": "telemetry",
    f"vehicles/{VIN}/events/crash": "event",
    f"vehicles/{VIN}/presence": "presence",
    f"vehicles/{VIN}/command-responses/c-1": "response",
}


@given(data=st.data())
@PROPERTY
def test_a_valid_message_with_bad_bytes_in_a_string_is_a_dead_letter(data: st.DataObject) -> None:
    topic, model = data.draw(st.sampled_from(sorted(CHANNEL_MODELS.items())))
    payload = data.draw(with_bad_bytes(VALID_OF[model]))
    router = Router(default_mappings(), max_payload_bytes=4096, late_after_ms=60_000)
    record = router.route(Inbound(topic, payload, 1, NOW))
    assert record.dlq_reason is DlqReason.INVALID_UTF8


def test_the_poison_pill_of_the_bug_report_is_a_dead_letter_not_an_exception() -> None:
    router = Router(default_mappings(), max_payload_bytes=4096, late_after_ms=60_000)
    bad = b'{"ts":1764000000000,"seq":1,"signals":{"Vehicle.X":"' + LONE_SURROGATE + b'"}}'
    record = router.route(Inbound(f"vehicles/{VIN}/telemetry", bad, 1, NOW))
    assert record.dlq_reason is DlqReason.INVALID_UTF8
    assert record.key == VIN.encode()
    assert "invalid UTF-8 at byte 52 (ed a0 80" in (record.dlq_detail or "")


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    base = load_settings(
        kafka={"bootstrap_servers": NOWHERE},
        runtime={"journal_dir": tmp_path_factory.mktemp("journal")},
    )
    return isolated_gateway_settings(base, "unit")


@pytest.fixture(scope="module")
def tracker(isolated: Settings) -> Tracker:
    return Tracker(isolated, logging.getLogger("test.tracker"))


def _inputs(settings: Settings) -> list[str]:
    return settings.topic_map().names(
        (
            KafkaTopic.COMMANDS,
            KafkaTopic.COMMAND_DISPATCH,
            KafkaTopic.TELEMETRY,
            KafkaTopic.PRESENCE,
            KafkaTopic.COMMAND_RESPONSES,
        )
    )


def matching(settings: Settings) -> dict[str, str]:
    """Each topic the consumers read, with the model its records hold."""
    topics = settings.topic_map()
    return {
        topics[KafkaTopic.COMMANDS]: "command",
        topics[KafkaTopic.COMMAND_DISPATCH]: "transition",
        topics[KafkaTopic.COMMAND_STATUS]: "transition",
        topics[KafkaTopic.PRESENCE]: "presence",
        topics[KafkaTopic.COMMAND_RESPONSES]: "response",
    }


@st.composite
def broken_records(draw: st.DrawFn, settings: Settings, topics: list[str]) -> FakeMessage:
    """A record of the right model for its topic, with invalid UTF-8 inside one of its strings."""
    topic = draw(st.sampled_from(topics))
    value = draw(with_bad_bytes(VALID_OF[matching(settings)[topic]]))
    return FakeMessage(topic, VIN.encode(), value, _offset=draw(st.integers(0, 10**6)))


@st.composite
def records(draw: st.DrawFn, topics: list[str]) -> FakeMessage:
    """Records of the topics a consumer reads, keyed mostly by a real VIN (else most would be
    refused for their key before their value is even read)."""
    value = RAW_VALUES | with_bad_bytes(VALID) | COMMANDS.map(msgspec.json.encode)
    return FakeMessage(
        draw(st.sampled_from(topics)),
        draw(st.just(VIN.encode()) | KEYS),
        draw(value),
        draw(HEADERS),
        _offset=draw(st.integers(min_value=0, max_value=10**6)),
    )


COMMANDS = st.builds(
    Command,
    command_id=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,20}\Z"),
    name=st.sampled_from(list(CommandName)),
    issued_at=st.integers(min_value=0, max_value=4_102_444_800_000),
    expires_at=st.integers(min_value=0, max_value=4_102_444_800_000),
    params=st.dictionaries(st.sampled_from(["target_c", "on", "feature", "x"]), JSON, max_size=3),
)


@given(data=st.data())
@PROPERTY
def test_the_tracker_takes_any_record_or_skips_it_with_a_reason(
    tracker: Tracker, isolated: Settings, data: st.DataObject
) -> None:
    inputs = _inputs(isolated)
    kafka_inputs = [t for t in inputs if t in matching(isolated)]
    message = data.draw(records(inputs) | broken_records(isolated, kafka_inputs))
    skipped = tracker.skipped.total
    steps = tracker._apply(message)  # type: ignore[arg-type]
    assert isinstance(steps, list)
    assert tracker.skipped.total in (skipped, skipped + 1)


@pytest.fixture(scope="module")
def downlink(isolated: Settings) -> Downlink:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="unit", protocol=mqtt.MQTTv5)
    producer = Producer({"bootstrap.servers": NOWHERE})
    log = logging.getLogger("test.downlink")
    link = VehicleLink(client)
    downlink = Downlink(isolated, link, producer, "unit", log, mqtt_connected=lambda: True)
    downlink._apply(downlink._queue.presence(VIN, online=True))
    return downlink


@given(data=st.data())
@PROPERTY
def test_the_downlink_takes_any_record_or_skips_it_with_a_reason(
    downlink: Downlink, isolated: Settings, data: st.DataObject
) -> None:
    topic = isolated.topic_map()[KafkaTopic.COMMANDS]
    if data.draw(st.booleans()):  # a well-formed command for an online car: it is published
        value = msgspec.json.encode(data.draw(COMMANDS))
        message = FakeMessage(topic, VIN.encode(), value, data.draw(HEADERS))
    else:
        message = data.draw(records([topic]) | broken_records(isolated, [topic]))
    skipped = downlink.skipped.total
    downlink._handle(message)  # type: ignore[arg-type]
    assert downlink.skipped.total in (skipped, skipped + 1)


def test_the_downlink_publishes_a_well_formed_command(
    downlink: Downlink, isolated: Settings
) -> None:
    """The property test's happy path is real: a valid command reaches the MQTT client."""
    topic = isolated.topic_map()[KafkaTopic.COMMANDS]
    before = len(downlink._awaiting_ack)
    command = Command("unit-ok", CommandName.FLASH, NOW, 4_102_444_800_000)
    message = FakeMessage(topic, VIN.encode(), msgspec.json.encode(command))
    downlink._handle(message)  # type: ignore[arg-type]
    assert len(downlink._awaiting_ack) == before + 1
    unreadable = FakeMessage(topic, VIN.encode(), b"\xed\xa0\x80")
    skipped = downlink.skipped.counts[(topic, "invalid-utf8")]
    downlink._handle(unreadable)  # type: ignore[arg-type]
    assert downlink.skipped.counts[(topic, "invalid-utf8")] == skipped + 1


@pytest.fixture(scope="module")
def view(isolated: Settings) -> ReadModel:
    return ReadModel(isolated, logging.getLogger("test.view"))


@given(data=st.data())
@PROPERTY
def test_the_api_read_model_takes_any_record_or_skips_it(
    view: ReadModel, isolated: Settings, data: st.DataObject
) -> None:
    topics = isolated.topic_map().names(
        (KafkaTopic.COMMAND_STATUS, KafkaTopic.GRANTS, KafkaTopic.AUDIT, KafkaTopic.PRESENCE)
    )
    kafka_topics = [t for t in topics if t in matching(isolated)]
    message = data.draw(records(topics) | broken_records(isolated, kafka_topics))
    result = outcome(lambda: view._read(message))  # type: ignore[arg-type]
    assert result is None or isinstance(result, Transition | DlqReason)


_KEY = Ed25519PrivateKey.generate()


@given(
    payload=RAW_VALUES | with_bad_bytes(VALID_OF["command"]),
    command=COMMANDS,
    now=st.integers(min_value=0, max_value=2**42),
)
@PROPERTY
def test_the_vehicle_answers_any_payload_and_any_signed_command(
    payload: bytes | None, command: Command, now: int
) -> None:
    assert isinstance(outcome(lambda: read_command(payload or b"")), Command | DlqReason)
    state = VehicleState(vin=VIN, latitude=52.52, longitude=13.40)
    executor = CommandExecutor(state, verifier=Verifier.of(_KEY.public_key()))
    signed = Signer(_KEY).sign_command(msgspec.structs.replace(command, vin=VIN))
    answers: list[Any] = executor.handle(signed, now)
    assert answers, "every command gets an answer"


def test_journal_dir_defaults_beside_the_stack_state(tmp_path: Path) -> None:
    settings = load_settings(stack={"state_dir": tmp_path})
    assert settings.journal_dir() == tmp_path / "journal"
