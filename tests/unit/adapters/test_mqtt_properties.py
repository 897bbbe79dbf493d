"""The fast PUBLISH-properties parser gives what paho's gives, for any properties or bytes."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetlink.adapters.mqtt.wire import FastPublishProperties, UserProperties
from tests.support.strategies import PROPERTY

TEXT = st.text(max_size=12)  # NUL, U+FEFF and every plane included


def outcome(cls: type[Properties], buffer: bytes) -> tuple[str, Any]:
    try:
        parsed, length = cls(PacketTypes.PUBLISH).unpack(buffer)
    except Exception as error:  # the type of paho's error is the contract here
        return "error", type(error)
    return "ok", (parsed.json(), length)


@st.composite
def packed(draw: st.DrawFn) -> bytes:
    properties = Properties(PacketTypes.PUBLISH)
    for name, value in draw(st.lists(st.tuples(TEXT, TEXT), max_size=3)):
        properties.UserProperty = (name, value)
    if draw(st.booleans()):
        properties.ContentType = draw(TEXT)
    if draw(st.booleans()):
        properties.MessageExpiryInterval = draw(st.integers(0, 2**32 - 1))
    if draw(st.booleans()):
        properties.ResponseTopic = draw(TEXT)
    return bytes(properties.pack()) + draw(st.binary(max_size=4))


@given(buffer=packed() | st.binary(max_size=40))
@PROPERTY
def test_the_fast_parser_agrees_with_paho(buffer: bytes) -> None:
    assert outcome(FastPublishProperties, buffer) == outcome(Properties, buffer)


def test_it_reads_a_stamp_and_a_content_type_without_paho() -> None:
    properties = Properties(PacketTypes.PUBLISH)
    properties.UserProperty = [("fl-boot", "b1"), ("fl-seq", "7")]
    properties.ContentType = "application/json"
    parsed, length = FastPublishProperties(PacketTypes.PUBLISH).unpack(properties.pack())
    assert parsed.UserProperty == [("fl-boot", "b1"), ("fl-seq", "7")]
    assert parsed.ContentType == "application/json"
    assert length == len(properties.pack())


@given(pairs=st.lists(st.tuples(TEXT, st.text(max_size=300)), min_size=1, max_size=4))
@PROPERTY
def test_user_properties_packed_once_are_the_bytes_paho_packs(pairs: list[tuple[str, str]]) -> None:
    properties = Properties(PacketTypes.PUBLISH)
    properties.UserProperty = pairs
    assert UserProperties(pairs).pack() == bytes(properties.pack())
    assert UserProperties(pairs).UserProperty == pairs


def test_paho_decodes_every_incoming_publish_with_the_fast_parser() -> None:
    """The fast class is installed by name in paho's modules; paho 2.2 moved PUBLISH decoding
    to ``paho.mqtt._packet``, where the old patch did not reach: a paho upgrade that moves it
    again fails here instead of silently costing 40 µs per message."""
    from paho.mqtt import _packet
    from paho.mqtt.enums import MQTTProtocolVersion

    import fleetlink.adapters.mqtt.wire  # noqa: F401  (installs the fast class)

    properties = UserProperties([("fl-boot", "b1"), ("fl-seq", "7")]).pack()
    body = b"\x00\x03a/b" + b"\x00\x05" + properties + b"payload"
    decoded = _packet.decode_publish(0x32, body, MQTTProtocolVersion.MQTTv5)
    assert type(decoded.properties) is FastPublishProperties
    assert decoded.properties.UserProperty == [("fl-boot", "b1"), ("fl-seq", "7")]
    assert (decoded.topic, decoded.mid, decoded.payload) == (b"a/b", 5, b"payload")
