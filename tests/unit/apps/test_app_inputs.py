"""The apps' decoders are total: any record becomes an input or a dead letter with a reason,
and what they let through the hazard logic takes; the car's warning book takes any message."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fleetlink.apps.fleet.tracking import FleetShard, TrackingParams
from fleetlink.apps.hazards.app import is_report
from fleetlink.apps.hazards.logic import HazardParams, HazardShard
from fleetlink.apps.maintenance.logic import MaintenanceParams, MaintenanceShard
from fleetlink.apps.runtime.inputs import (
    ack_input,
    event_input,
    presence_input,
    service_input,
    telemetry_input,
    tick_input,
)
from fleetlink.contracts import headers as h
from fleetlink.contracts.codec import DlqReason
from fleetlink.contracts.topics import MqttTopic
from fleetlink.settings.apps import HazardAppSettings
from fleetlink.vehicle.warnings import WarningBook
from tests.support.strategies import RAW_VALUES, VIN
from tests.unit.apps.stores import JsonStore

REASONS = {reason.value for reason in DlqReason}
RULES = HazardAppSettings()
TOPICS = st.sampled_from(
    [
        MqttTopic.event(VIN, "harsh-braking"),
        MqttTopic.event(VIN, "crash"),
        MqttTopic.event(VIN, "no-such-kind"),
        MqttTopic.telemetry(VIN),
        MqttTopic.presence(VIN),
        "geo/x/warnings/y",
        "vehicles//events/crash",
    ]
).map(str.encode) | st.binary(max_size=30)
GATEWAY_HEADERS = st.lists(
    st.tuples(
        st.sampled_from([h.MQTT_TOPIC, h.MESSAGE_ID, h.LATE, "x"]),
        TOPICS | st.none(),
    ),
    max_size=4,
)


def check(value: dict[str, Any], ok: str) -> None:
    assert value["t"] in (ok, "dead")
    if value["t"] == "dead":
        assert value["reason"] in REASONS


@given(RAW_VALUES, GATEWAY_HEADERS)
def test_any_event_record_is_an_input_or_a_dead_letter(raw: bytes | None, headers: Any) -> None:
    value = event_input(raw, headers)
    check(value, "event")
    if value["t"] == "event" and is_report(value, RULES):
        report = {"t": "report", **value, "late": False}
        shard = HazardShard(JsonStore(), HazardParams())
        shard.handle(report)
        shard.tick(report["ts"])  # the watermark passes it: judged


@given(RAW_VALUES, GATEWAY_HEADERS)
def test_any_telemetry_record_is_an_input_or_a_dead_letter(raw: bytes | None, headers: Any) -> None:
    check(telemetry_input(raw, headers), "telemetry")


@given(
    st.lists(
        st.tuples(st.sampled_from(["event", "telemetry", "presence"]), RAW_VALUES, GATEWAY_HEADERS),
        max_size=6,
    )
)
def test_any_vehicle_record_is_an_input_or_a_dead_letter_and_the_tracker_takes_it(
    records: list[tuple[str, bytes | None, Any]],
) -> None:
    decoders = {"event": event_input, "telemetry": telemetry_input, "presence": presence_input}
    shard = FleetShard(JsonStore(), TrackingParams())
    for kind, raw, headers in records:
        value = decoders[kind](raw, headers)
        check(value, kind)
        if value["t"] != "dead":
            shard.handle(value)
            shard.tick(int(value["ts"]) + 3_600_000)


@given(RAW_VALUES)
def test_any_tick_record_is_a_tick_or_a_dead_letter(raw: bytes | None) -> None:
    check(tick_input(raw), "tick")


@given(st.text(max_size=60), RAW_VALUES)
def test_the_car_takes_any_warning_message(topic: str, raw: bytes | None) -> None:
    book = WarningBook()
    book.receive(topic, raw or b"", 0)
    assert all(hazard.hazard_id == key for key, hazard in book.held.items())


def test_a_gateway_record_is_an_event_and_a_tombstone_a_dead_letter() -> None:
    headers = [(h.MQTT_TOPIC, MqttTopic.event(VIN, "crash").encode()), (h.MESSAGE_ID, b"m1")]
    raw = b'{"ts":5,"seq":1,"latitude":52.5,"longitude":13.4,"heading_deg":90}'
    value = event_input(raw, headers)
    assert (value["t"], value["kind"], value["vin"], value["heading"]) == (
        "event",
        "crash",
        VIN,
        90,
    )
    assert is_report(value, RULES)
    assert event_input(None, headers)["reason"] == "tombstone"
    assert event_input(raw, headers[:1])["reason"] == "invalid-key"  # no message id


def test_only_braking_as_hard_as_an_emergency_stop_may_make_a_hazard() -> None:
    topic = MqttTopic.event(VIN, "harsh-braking").encode()
    headers = [(h.MQTT_TOPIC, topic), (h.MESSAGE_ID, b"m1")]

    def braking(data: str) -> dict[str, Any]:
        raw = b'{"ts":5,"seq":1,"latitude":52.5,"longitude":13.4,"data":' + data.encode() + b"}"
        return event_input(raw, headers)

    assert not is_report(braking('{"deceleration_ms2": 4.5}'), RULES)  # a red light
    assert is_report(braking('{"deceleration_ms2": 7.2}'), RULES)
    assert is_report(braking("{}"), RULES)  # the car does not say: its own word counts
    assert is_report(braking('{"deceleration_ms2": "hard"}'), RULES)


def test_hazard_lights_count_on_a_car_that_has_stood_a_while() -> None:
    topic = MqttTopic.event(VIN, "hazard-lights").encode()
    headers = [(h.MQTT_TOPIC, topic), (h.MESSAGE_ID, b"m1")]

    def lights(speed: float, data: str) -> dict[str, Any]:
        raw = (
            b'{"ts":5,"seq":1,"latitude":52.5,"longitude":13.4,"speed_kmh":'
            + str(speed).encode()
            + b',"data":'
            + data.encode()
            + b"}"
        )
        return event_input(raw, headers)

    assert not is_report(lights(40.0, '{"standing_s": 60}'), RULES)  # moving
    assert not is_report(lights(0.0, '{"standing_s": 0}'), RULES)  # stopped hard, drives on
    assert is_report(lights(0.0, '{"standing_s": 35}'), RULES)  # broken down
    assert is_report(lights(0.0, "{}"), RULES)  # the car does not say


SERVICES = st.builds(
    lambda vin, ts, odo: (
        b'{"vin": "%s", "ts": %d, "odometer_km": %s, "by": "ada"}'
        % (vin.encode(), ts, str(odo).encode())
    ),
    st.sampled_from([VIN, "not a vin"]),
    st.integers(-1, 2**45),
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(-5, 10**7),
)
ACKS = st.builds(
    lambda vin, ts, alert: (
        b'{"vin": "%s", "ts": %d, "alert_id": "%s", "by": "ada"}'
        % (vin.encode(), ts, alert.encode())
    ),
    st.sampled_from([VIN, "not a vin"]),
    st.integers(-1, 2**45),
    st.text(alphabet="abc/-0", max_size=20),
)


@given(RAW_VALUES | SERVICES | ACKS)
def test_any_ack_or_service_record_is_an_input_or_a_dead_letter_the_logic_takes(
    raw: bytes | None,
) -> None:
    for decoder, kind in ((ack_input, "ack"), (service_input, "service")):
        value = decoder(raw)
        check(value, kind)
        if value["t"] != "dead":
            MaintenanceShard(JsonStore(), MaintenanceParams()).handle(value)
