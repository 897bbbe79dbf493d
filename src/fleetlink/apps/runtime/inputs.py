"""What the apps read, decoded totally: any record becomes an input dict or a dead letter.

Quix Streams calls a value deserializer with the record's bytes and headers; these never raise,
so no record stops an app. A record the apps cannot use becomes ``{"t": "dead", ...}`` with its
raw bytes and a reason, for the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quixstreams.models.serializers import Deserializer, SerializationContext

from fleetlink.adapters.kafka.headers import header_value
from fleetlink.contracts import headers as h
from fleetlink.contracts import vss
from fleetlink.contracts.alerts import AlertAck, ServiceRecord
from fleetlink.contracts.codec import DlqReason, UndecodableError, decode, decode_text
from fleetlink.contracts.models import (
    Event,
    EventKind,
    Presence,
    PresenceStatus,
    Telemetry,
    Tick,
)
from fleetlink.contracts.topics import MqttTopic, VehicleChannel

Headers = Sequence[tuple[str, bytes | None]] | None
_EVENT_KINDS = frozenset(kind.value for kind in EventKind)


def dead(raw: bytes | None, reason: DlqReason, detail: str) -> dict[str, Any]:
    return {"t": "dead", "raw": raw, "reason": reason.value, "detail": detail}


def _origin(headers: Headers, channel: VehicleChannel) -> tuple[str, str | None, str, bool]:
    """VIN, event kind, message id and late flag from the gateway's headers."""
    topic = MqttTopic.parse_vehicle_topic(decode_text(header_value(headers, h.MQTT_TOPIC), "topic"))
    if topic is None or topic.channel is not channel:
        raise UndecodableError(DlqReason.NO_MAPPING, f"not a vehicle {channel} record")
    msg_id = decode_text(header_value(headers, h.MESSAGE_ID), h.MESSAGE_ID)
    return topic.vin, topic.detail, msg_id, header_value(headers, h.LATE) == b"1"


def event_input(raw: bytes | None, headers: Headers) -> dict[str, Any]:
    """A ``fleet.events`` record as ``{"t": "event", vin, kind, ts, lat, lon, ...}``."""
    try:
        vin, kind, msg_id, late = _origin(headers, VehicleChannel.EVENTS)
        event = decode(Event, raw)
        if kind not in _EVENT_KINDS:
            raise UndecodableError(DlqReason.UNKNOWN_EVENT_KIND, f"event kind {kind!r}")
        known = EventKind(kind)
    except UndecodableError as error:
        return dead(raw, error.reason, error.detail)
    return {
        "t": "event",
        "vin": vin,
        "kind": known.value,
        "ts": event.ts,
        "lat": event.latitude,
        "lon": event.longitude,
        "heading": event.heading_deg,
        "speed": event.speed_kmh,
        "msg_id": msg_id,
        "late": late or event.resent,
        "data": event.data,
    }


def telemetry_input(raw: bytes | None, headers: Headers) -> dict[str, Any]:
    """A ``fleet.telemetry`` record as ``{"t": "telemetry", vin, ts, lat, lon, speed, ...}``;
    signals the apps cannot read (not numbers) count as missing."""
    try:
        vin, _, msg_id, late = _origin(headers, VehicleChannel.TELEMETRY)
        telemetry = decode(Telemetry, raw)
    except UndecodableError as error:
        return dead(raw, error.reason, error.detail)
    signals = telemetry.signals
    return {
        "t": "telemetry",
        "vin": vin,
        "ts": telemetry.ts,
        "lat": _number(signals.get(vss.LATITUDE)),
        "lon": _number(signals.get(vss.LONGITUDE)),
        "speed": _number(signals.get(vss.SPEED)),
        "heading": _number(signals.get(vss.HEADING)),
        "odo": _number(signals.get(vss.ODOMETER)),
        "soc": _number(signals.get(vss.BATTERY_STATE_OF_CHARGE)),
        "soh": _number(signals.get(vss.BATTERY_STATE_OF_HEALTH)),
        "air_c": _number(signals.get(vss.AMBIENT_TEMPERATURE)),
        "tires": [_number(signals.get(wheel)) for wheel in vss.TIRE_PRESSURES],
        "tire_c": [_number(signals.get(wheel)) for wheel in vss.TIRE_TEMPERATURES],
        "msg_id": msg_id,
        "late": late or telemetry.resent,
    }


def presence_input(raw: bytes | None, headers: Headers) -> dict[str, Any]:
    """A ``fleet.presence`` record as ``{"t": "presence", vin, ts, online, ...}``."""
    try:
        vin, _, msg_id, _late = _origin(headers, VehicleChannel.PRESENCE)
        presence = decode(Presence, raw)
    except UndecodableError as error:
        return dead(raw, error.reason, error.detail)
    return {
        "t": "presence",
        "vin": vin,
        "ts": presence.ts,
        "online": presence.status == PresenceStatus.ONLINE,
        "msg_id": msg_id,
        "late": False,  # the broker's word on the car now, whenever it is read
    }


def ack_input(raw: bytes | None) -> dict[str, Any]:
    """A ``fleet.alert-acks`` record (the API's) as ``{"t": "ack", vin, ts, alert_id, by}``."""
    try:
        ack = decode(AlertAck, raw)
    except UndecodableError as error:
        return dead(raw, error.reason, error.detail)
    return {"t": "ack", "vin": ack.vin, "ts": ack.ts, "alert_id": ack.alert_id, "by": ack.by}


def service_input(raw: bytes | None) -> dict[str, Any]:
    """A ``fleet.services`` record (the API's) as ``{"t": "service", vin, ts, odo, by}``."""
    try:
        service = decode(ServiceRecord, raw)
    except UndecodableError as error:
        return dead(raw, error.reason, error.detail)
    return {
        "t": "service",
        "vin": service.vin,
        "ts": service.ts,
        "odo": service.odometer_km,
        "by": service.by,
    }


def tick_input(raw: bytes | None) -> dict[str, Any]:
    try:
        return {"t": "tick", "ts": decode(Tick, raw).ts}
    except UndecodableError as error:
        return dead(raw, error.reason, error.detail)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class InputDeserializer(Deserializer):
    """Quix's value deserializer for one kind of input; see the module docstring."""

    def __init__(self, kind: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._kind = kind

    def __call__(self, value: bytes, ctx: SerializationContext) -> dict[str, Any]:
        headers: Headers = ctx.headers  # type: ignore[assignment]
        if self._kind == "event":
            return event_input(value, headers)
        if self._kind == "telemetry":
            return telemetry_input(value, headers)
        if self._kind == "presence":
            return presence_input(value, headers)
        if self._kind == "ack":
            return ack_input(value)
        if self._kind == "service":
            return service_input(value)
        return tick_input(value)
