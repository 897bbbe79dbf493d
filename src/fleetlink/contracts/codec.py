"""JSON encoding and validating decoding of the contract models (msgspec, one decoder per type)."""

from __future__ import annotations

from typing import Any, TypeVar, cast

import msgspec

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def decode(model: type[T], raw: bytes | str) -> T:
    """Parse and validate; raises ``msgspec.DecodeError`` / ``msgspec.ValidationError``."""
    decoder = _decoders.get(model)
    if decoder is None:
        decoder = _decoders[model] = msgspec.json.Decoder(model)
    return cast(T, decoder.decode(raw))
