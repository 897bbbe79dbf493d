"""JSON encoding and total decoding of the contract models (msgspec, one decoder per type).

Total: any bytes (``None`` for a Kafka tombstone) either become a model or raise
``UndecodableError`` with a reason from ``DlqReason``. Nothing else escapes for bad input, so a
caller catches exactly this and lets real bugs surface.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, TypeVar, cast

import msgspec

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


class DlqReason(StrEnum):
    """Why an input was dead-lettered or skipped (``fl.dlq_reason``)."""

    NO_MAPPING = "no-mapping"
    INVALID_VIN = "invalid-vin"
    TOO_LARGE = "too-large"
    EMPTY = "empty"
    INVALID_UTF8 = "invalid-utf8"
    NOT_JSON = "not-json"
    SCHEMA = "schema"
    MISSING_TIMESTAMP = "missing-timestamp"
    VIN_MISMATCH = "vin-mismatch"
    UNKNOWN_EVENT_KIND = "unknown-event-kind"
    KAFKA_REJECTED = "kafka-rejected"
    RATE_LIMITED = "rate-limited"
    TOMBSTONE = "tombstone"  # a Kafka record without a value where one is needed
    INVALID_KEY = "invalid-key"  # a Kafka key missing, not UTF-8, or not what the topic keys by
    POISON = "poison"  # the process died handling it again and again


class UndecodableError(Exception):
    """The input is not a valid message; ``reason`` says why, ``detail`` says where."""

    def __init__(self, reason: DlqReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}
_MISSING_TS: Final = "missing required field `ts`"


def decoder_of(model: type[T]) -> msgspec.json.Decoder[T]:
    decoder = _decoders.get(model)
    if decoder is None:
        decoder = _decoders[model] = msgspec.json.Decoder(model)
    return decoder


def decode(model: type[T], raw: bytes | None) -> T:
    """Parse and validate ``raw`` as ``model``; raises only ``UndecodableError``."""
    return cast(T, decode_with(decoder_of(model), raw))


def decode_with(decoder: msgspec.json.Decoder[Any], raw: bytes | None) -> Any:
    """``decode`` with a decoder the caller holds (the hot path keeps its own)."""
    if not raw:
        if raw is None:
            raise UndecodableError(DlqReason.TOMBSTONE, "no value")
        raise UndecodableError(DlqReason.EMPTY, "no bytes")
    try:
        # JSON is UTF-8 (RFC 8259) everywhere, not only in the strings msgspec decodes: bad
        # bytes in an ignored field would otherwise pass on to consumers with stricter parsers
        raw.decode()
    except UnicodeDecodeError as error:
        raise UndecodableError(DlqReason.INVALID_UTF8, _utf8_detail(error)) from None
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as error:
        text = str(error)
        if _MISSING_TS in text:
            raise UndecodableError(DlqReason.MISSING_TIMESTAMP, text) from None
        raise UndecodableError(DlqReason.SCHEMA, text) from None
    except msgspec.DecodeError as error:
        raise UndecodableError(DlqReason.NOT_JSON, str(error)) from None


def decode_text(raw: bytes | None, what: str) -> str:
    """A Kafka key or header as text; raises ``UndecodableError`` (invalid-key) otherwise."""
    if not raw:
        raise UndecodableError(DlqReason.INVALID_KEY, f"no {what}")
    try:
        return raw.decode()
    except UnicodeDecodeError as error:
        raise UndecodableError(DlqReason.INVALID_KEY, f"{what}: {_utf8_detail(error)}") from None


def _utf8_detail(error: UnicodeDecodeError) -> str:
    bad = bytes(error.object[error.start : error.start + 4]).hex(" ")
    return f"invalid UTF-8 at byte {error.start} ({bad}...): {error.reason}"
