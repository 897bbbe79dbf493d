"""From one MQTT message to one Kafka record: match a mapping rule, validate, add headers.

Pure: no I/O. A message that fails any check becomes a dead-letter record carrying its raw bytes
and a reason, so nothing is ever dropped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final

import msgspec

from fleetlink.contracts import headers as h
from fleetlink.contracts.codec import DlqReason, UndecodableError, decode_with
from fleetlink.contracts.models import CommandResponse, Event, EventKind, Presence
from fleetlink.contracts.topics import PRODUCTION_TOPICS, VEHICLES_ROOT, KafkaTopic, TopicMap
from fleetlink.contracts.vin import is_valid_vin
from fleetlink.ingest.telemetry import TelemetryDecoder
from fleetlink.security.ratelimit import RateLimiter
from fleetlink.settings import GatewaySettings, MappingRule

DEFAULT_CONTENT_TYPE: Final = b"application/json"
# Kafka's default message.max.bytes is about 1 MB; a dead letter must still fit.
DLQ_MAX_PAYLOAD: Final = 900 * 1024

_DECODERS: Final[dict[str, msgspec.json.Decoder[Any]]] = {
    "event": msgspec.json.Decoder(Event),
    "presence": msgspec.json.Decoder(Presence),
    "command-response": msgspec.json.Decoder(CommandResponse),
}


def _decoder_for(schema: str) -> Callable[[bytes], Any] | None:
    """The function that decodes (and validates) a payload of ``schema``, or None."""
    if schema == "telemetry":
        return TelemetryDecoder()
    decoder = _DECODERS.get(schema)
    return None if decoder is None else partial(decode_with, decoder)


_EVENT_KINDS: Final = frozenset(kind.value for kind in EventKind)
_RULE_CACHE_SIZE: Final = 500_000

__all__ = ["DlqReason", "Inbound", "Record", "RejectedError", "Router", "content_hash"]


class Inbound(msgspec.Struct, frozen=True):
    """A message as it reached fleetlink (over MQTT or HTTP)."""

    topic: str
    payload: bytes
    qos: int
    received_ms: int
    user_properties: Sequence[tuple[str, str]] = ()
    content_type: str | None = None
    redelivered: bool = False
    source: str = "mqtt"


class Record(msgspec.Struct):
    """What goes to Kafka; ``dlq_reason`` is set for dead letters."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    mapping: str
    message_id: str
    dlq_reason: DlqReason | None = None
    dlq_detail: str | None = None
    late: bool = False


class RejectedError(Exception):
    """Raised inside routing: the message is a dead letter for ``reason``."""

    def __init__(self, reason: DlqReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _CompiledRule:
    __slots__ = ("decoder", "levels", "min_levels", "rule", "topic")

    def __init__(self, rule: MappingRule, topics: TopicMap) -> None:
        self.rule = rule
        self.topic = topics.resolve(rule.kafka_topic)
        self.levels = rule.mqtt_filter.split("/")
        self.decoder = _decoder_for(rule.schema_name)
        # "vehicles/#" matches "vehicles" too: a rule applies only where its key and VIN are
        used = [level for level in (rule.key_level, rule.vin_level) if level is not None]
        self.min_levels = max(used, default=-1) + 1

    def matches(self, levels: list[str]) -> bool:
        if len(levels) < self.min_levels:
            return False
        pattern = self.levels
        for index, want in enumerate(pattern):
            if want == "#":
                return True
            if index >= len(levels):
                return False
            if want != "+" and want != levels[index]:
                return False
        return len(levels) == len(pattern)


def content_hash(topic: str, payload: bytes) -> str:
    return hashlib.blake2b(_utf8(topic) + b"\0" + payload, digest_size=16).hexdigest()


class Router:
    """Routes messages by the first matching mapping rule."""

    def __init__(
        self,
        rules: Sequence[MappingRule],
        *,
        max_payload_bytes: int,
        late_after_ms: int,
        topics: TopicMap = PRODUCTION_TOPICS,
        vehicle_limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = [_CompiledRule(rule, topics) for rule in rules]
        # a flooding car is throttled alone: its excess is dead-lettered, others flow on
        self._limiter = vehicle_limiter
        self._clock = clock
        self.throttled: dict[str, int] = {}  # VIN -> messages dead-lettered as rate-limited
        # topic -> matching rule; one entry per vehicle and channel, so it stays small
        self._rule_of_topic: dict[str, _CompiledRule | None] = {}
        self._max_payload = max_payload_bytes
        self._late_after_ms = late_after_ms
        self._dlq_topic = topics[KafkaTopic.DLQ]

    @classmethod
    def from_settings(
        cls,
        gateway: GatewaySettings,
        topics: TopicMap,
        clock: Callable[[], float] = time.monotonic,
    ) -> Router:
        """``clock``: seconds, for the per-vehicle rate limit (a simulator's own time)."""
        return cls(
            gateway.mappings,
            max_payload_bytes=gateway.max_payload_bytes,
            late_after_ms=int(gateway.late_after_s * 1000),
            topics=topics,
            vehicle_limiter=RateLimiter(gateway.vehicle_rate_per_s, gateway.vehicle_burst),
            clock=clock,
        )

    def route(self, message: Inbound) -> Record:
        levels = message.topic.split("/")
        try:
            compiled = self._rule_of_topic[message.topic]
        except KeyError:
            compiled = next((c for c in self._rules if c.matches(levels)), None)
            if len(self._rule_of_topic) >= _RULE_CACHE_SIZE:
                self._rule_of_topic.clear()
            self._rule_of_topic[message.topic] = compiled
        if compiled is None:
            vin = levels[1] if len(levels) > 1 and levels[0] == VEHICLES_ROOT else None
            return self.dead_letter(
                message,
                DlqReason.NO_MAPPING,
                "no mapping rule matches",
                key=vin if vin is not None and is_valid_vin(vin) else None,
            )
        rule = compiled.rule
        vin = levels[rule.vin_level] if rule.vin_level is not None else None
        key = levels[rule.key_level] if rule.key_level is not None else None
        try:
            return self._validated(message, compiled, levels, vin, key)
        except RejectedError as rejected:
            return self.dead_letter(
                message,
                rejected.reason,
                rejected.detail,
                key=vin if vin is not None and is_valid_vin(vin) else None,
                mapping=rule.name,
            )

    def _validated(
        self,
        message: Inbound,
        compiled: _CompiledRule,
        levels: list[str],
        vin: str | None,
        key: str | None,
    ) -> Record:
        rule = compiled.rule
        if vin is not None and not is_valid_vin(vin):
            raise RejectedError(DlqReason.INVALID_VIN, f"topic level {rule.vin_level} is not a VIN")
        limiter = self._limiter
        if vin is not None and limiter is not None and not limiter.allow(vin, self._clock()):
            self.throttled[vin] = self.throttled.get(vin, 0) + 1
            raise RejectedError(
                DlqReason.RATE_LIMITED,
                f"over {limiter.rate:g} messages/s (burst {limiter.burst:g})",
            )
        if len(message.payload) > self._max_payload:
            raise RejectedError(
                DlqReason.TOO_LARGE,
                f"{len(message.payload)} bytes, limit {self._max_payload}",
            )
        event_time: int | None = None
        message_id: str | None = None
        resent = False
        if compiled.decoder is not None:
            try:
                parsed = compiled.decoder(message.payload)
            except UndecodableError as error:
                raise RejectedError(error.reason, error.detail) from None
            event_time = parsed.ts
            payload_vin = getattr(parsed, "vin", None)
            if payload_vin is not None and payload_vin != vin:
                raise RejectedError(DlqReason.VIN_MISMATCH, f"payload vin {payload_vin} != topic")
            if rule.schema_name == "event" and levels[-1] not in _EVENT_KINDS:
                raise RejectedError(DlqReason.UNKNOWN_EVENT_KIND, f"event kind {levels[-1]!r}")
            resent = getattr(parsed, "resent", False)
            message_id = getattr(parsed, "msg_id", None)
            if message_id is None and getattr(parsed, "seq", None) is not None:
                # ts guards against a vehicle whose counter restarted at 0.
                message_id = f"{vin or key}-{parsed.seq}-{parsed.ts}"
        if message_id is None:
            message_id = content_hash(message.topic, message.payload)
        late = resent or (
            event_time is not None and message.received_ms - event_time > self._late_after_ms
        )
        headers = self._headers(message, rule.name, message_id)
        if event_time is not None:
            headers.append((h.EVENT_TIME, str(event_time).encode()))
        if late:
            headers.append((h.LATE, b"1"))
        return Record(
            topic=compiled.topic,
            key=_utf8(key) if key is not None else None,
            value=message.payload,
            headers=headers,
            mapping=rule.name,
            message_id=message_id,
            late=late,
        )

    def dead_letter(
        self,
        message: Inbound,
        reason: DlqReason,
        detail: str,
        *,
        key: str | None = None,
        mapping: str = "none",
    ) -> Record:
        message_id = content_hash(message.topic, message.payload)
        return self._letter(
            Record(
                topic=self._dlq_topic,
                key=_utf8(key) if key is not None else None,
                value=message.payload,
                headers=self._headers(message, mapping, message_id),
                mapping=mapping,
                message_id=message_id,
            ),
            reason,
            detail,
        )

    def reject(self, record: Record, reason: DlqReason, detail: str) -> Record:
        """Turn a routed record that Kafka refused into a dead letter, headers kept."""
        return self._letter(record, reason, detail)

    def _letter(self, record: Record, reason: DlqReason, detail: str) -> Record:
        headers = [
            *record.headers,
            (h.DLQ_REASON, reason.value.encode()),
            (h.DLQ_DETAIL, detail[:512].encode(errors="replace")),
        ]
        value = record.value
        if len(value) > DLQ_MAX_PAYLOAD:
            headers.append((h.DLQ_ORIGINAL_SIZE, str(len(value)).encode()))
            value = value[:DLQ_MAX_PAYLOAD]
        return Record(
            topic=self._dlq_topic,
            key=record.key,
            value=value,
            headers=headers,
            mapping=record.mapping,
            message_id=record.message_id,
            dlq_reason=reason,
            dlq_detail=detail,
        )

    @staticmethod
    def _headers(message: Inbound, mapping: str, message_id: str) -> list[tuple[str, bytes]]:
        headers = [
            (h.MESSAGE_ID, _utf8(message_id)),
            (h.MQTT_TOPIC, _utf8(message.topic)),
            (h.QOS, b"1" if message.qos == 1 else str(message.qos).encode()),
            (h.INGEST_TIME, str(message.received_ms).encode()),
            (
                h.CONTENT_TYPE,
                _utf8(message.content_type) if message.content_type else DEFAULT_CONTENT_TYPE,
            ),
            (h.MAPPING, mapping.encode()),
            (h.SOURCE, message.source.encode()),
        ]
        if message.redelivered:
            headers.append((h.REDELIVERED, b"1"))
        for name, value in message.user_properties:
            headers.append((h.user_property_header(name), _utf8(value)))
        return headers


def _utf8(text: str) -> bytes:
    # text from an HTTP path or header may hold lone surrogates, which strict UTF-8 refuses
    return text.encode(errors="backslashreplace")
