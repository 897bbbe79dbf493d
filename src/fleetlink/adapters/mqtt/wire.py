"""MQTT bytes the platform and the cars handle themselves: MQTT 5 properties parsed and packed
fast, and sockets that send small packets at once. No settings: the car's code uses these too."""

from __future__ import annotations

import socket
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt import _packet as paho_packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_PAHO_TABLES = ("types", "names", "properties")
_PAHO_OWN = frozenset({"packetType", *_PAHO_TABLES})
_USER_PROPERTY = 38
_CONTENT_TYPE = 3
_PUBLISH = 3  # packet type, the high nibble of the first byte


class _UncommonError(Exception):
    """Not the common case: paho's own parser decides (and raises what it raises)."""


class FastPublishProperties(Properties):
    """PUBLISH properties read fast when they are what cars send: user properties and a
    content type. paho's parser costs about 46 µs for two user properties (a Python loop over
    every character, name look-ups per attribute), more than routing the message; every
    stamped message carries two. Anything else, and anything doubtful (a length past the end,
    NUL or U+FEFF in a string), goes to paho's parser, so results and errors stay paho's.
    """

    _tables: dict[str, Any] | None = None  # paho's lookup tables, the same for every instance

    def __init__(self, packetType: int) -> None:  # noqa: N803 - paho's name
        tables = FastPublishProperties._tables
        if tables is None:  # paho rebuilds them per packet: about 8 µs
            super().__init__(packetType)  # type: ignore[no-untyped-call]
            FastPublishProperties._tables = {name: vars(self)[name] for name in _PAHO_TABLES}
            return
        object.__setattr__(self, "packetType", packetType)
        for name, table in tables.items():
            object.__setattr__(self, name, table)

    def unpack(self, buffer: bytes | bytearray) -> tuple[Properties, int]:
        if self.packetType == PacketTypes.PUBLISH:
            try:
                return self._unpack_common(bytes(buffer))
            except _UncommonError:
                pass
        result: tuple[Properties, int] = super().unpack(buffer)  # type: ignore[no-untyped-call]
        return result

    def _unpack_common(self, buffer: bytes) -> tuple[Properties, int]:
        length, position = _varint(buffer)
        end = position + length
        if end > len(buffer):
            raise _UncommonError
        pairs: list[tuple[str, str]] = []
        content_type: str | None = None
        while position < end:
            identifier = buffer[position]
            position += 1
            if identifier == _USER_PROPERTY:
                name, position = _string(buffer, position, end)
                value, position = _string(buffer, position, end)
                pairs.append((name, value))
            elif identifier == _CONTENT_TYPE and content_type is None:
                content_type, position = _string(buffer, position, end)
            else:
                raise _UncommonError
        for name in [name for name in vars(self) if name not in _PAHO_OWN]:
            object.__delattr__(self, name)  # what an earlier unpack set (paho's clear(), faster)
        if pairs:
            object.__setattr__(self, "UserProperty", pairs)
        if content_type is not None:
            object.__setattr__(self, "ContentType", content_type)
        return self, end


class UserProperties(FastPublishProperties):
    """PUBLISH properties holding only user properties, packed once: paho packs through its
    name tables on every send (about 30 µs for a stamp)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(PacketTypes.PUBLISH)
        body = b"".join(b"\x26" + _utf8_field(name) + _utf8_field(value) for name, value in pairs)
        object.__setattr__(self, "UserProperty", pairs)
        object.__setattr__(self, "_packed", _varint_bytes(len(body)) + body)

    def pack(self) -> bytes:
        packed: bytes = object.__getattribute__(self, "_packed")
        return packed


def _utf8_field(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _varint(buffer: bytes) -> tuple[int, int]:
    value = shift = 0
    for index in range(min(4, len(buffer))):
        byte = buffer[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if index and not byte:
                raise _UncommonError  # not the shortest encoding: paho refuses it
            return value, index + 1
        shift += 7
    raise _UncommonError


def _string(buffer: bytes, position: int, end: int) -> tuple[str, int]:
    if position + 2 > end:
        raise _UncommonError
    size = (buffer[position] << 8) | buffer[position + 1]
    start = position + 2
    if start + size > end:
        raise _UncommonError
    try:
        text = buffer[start : start + size].decode()  # strict: no surrogates get through
    except UnicodeDecodeError:
        raise _UncommonError from None
    if "\x00" in text or "\ufeff" in text:
        raise _UncommonError
    return text, start + size


class Publish(NamedTuple):
    """A QoS 0 or 1 PUBLISH read straight from the receive buffer."""

    header: int
    topic: bytes
    mid: int
    properties: Properties
    payload: bytes
    end: int  # where the next packet starts in the buffer


def buffered_publish(buffer: bytes, position: int) -> Publish | None:
    """The MQTT 5 PUBLISH (QoS 0 or 1) starting at ``position``, if it is whole in ``buffer``.

    None for anything else: another packet type, QoS 2, a packet cut at the buffer's end, or any
    length that does not add up; paho's own reader then takes it and raises what it raises.
    """
    size = len(buffer)
    if size - position < 2:
        return None
    header = buffer[position]
    qos = (header >> 1) & 0x03
    if header >> 4 != _PUBLISH or qos > 1:
        return None
    length = shift = 0
    index = position + 1
    while True:  # the remaining length: at most 4 bytes, 7 bits each
        if index >= size or index - position > 4:
            return None
        byte = buffer[index]
        index += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    end = index + length
    if end > size or length < 2:
        return None
    topic_end = index + 2 + ((buffer[index] << 8) | buffer[index + 1])
    mid = 0
    if qos:
        if topic_end + 2 > end:
            return None
        mid = (buffer[topic_end] << 8) | buffer[topic_end + 1]
        properties_start = topic_end + 2
    else:
        properties_start = topic_end
    if properties_start >= end:
        return None  # MQTT 5 always has a property length
    try:
        properties, used = FastPublishProperties(PacketTypes.PUBLISH).unpack(
            buffer[properties_start:end]
        )
    except Exception:
        return None
    return Publish(
        header,
        buffer[index + 2 : topic_end],
        mid,
        properties,
        buffer[properties_start + used : end],
        end,
    )


# paho builds the properties of every incoming packet through these names: 2.2 decodes PUBLISH
# in ``paho.mqtt._packet``, earlier releases in the client module; ``tests/unit/adapters``
# checks that a PUBLISH decoded by paho gets the fast class
mqtt.Properties = FastPublishProperties  # type: ignore[attr-defined]
paho_packet.Properties = FastPublishProperties  # type: ignore[attr-defined]


def disable_nagle(sock: object) -> None:
    """Send small packets at once. paho leaves Nagle's algorithm on: a PUBACK followed by a
    PUBLISH then waits for the peer's delayed ACK, about 40 ms per command on Linux."""
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
