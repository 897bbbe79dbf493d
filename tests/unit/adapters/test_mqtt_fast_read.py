"""The client's own PUBLISH reader gives what paho's reader gives, for any bytes in any reads."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetlink.adapters.mqtt.client import FastMqttClient
from fleetlink.adapters.mqtt.wire import _varint_bytes as varint
from tests.support.strategies import PROPERTY

TEXT = st.text(max_size=10)


class ScriptedSocket:
    """Bytes handed out in the given read sizes; what the client writes is kept."""

    def __init__(self, data: bytes, reads: list[int]) -> None:
        self.data, self.position, self.reads = data, 0, reads
        self.sent = bytearray()

    def recv(self, size: int) -> bytes:
        if self.position >= len(self.data):
            raise BlockingIOError
        if self.reads:
            size = min(size, self.reads.pop(0))
        chunk = self.data[self.position : self.position + size]
        self.position += len(chunk)
        return chunk

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def pending(self) -> int:
        return 0

    def close(self) -> None:
        pass


@st.composite
def publish(draw: st.DrawFn) -> bytes:
    qos = draw(st.integers(0, 2))
    header = 0x30 | qos << 1 | draw(st.integers(0, 1)) << 3 | draw(st.integers(0, 1))
    topic = draw(TEXT).encode()
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in draw(st.lists(st.tuples(TEXT, TEXT), max_size=2)):
        properties.UserProperty = (name, value)
    if draw(st.booleans()):
        properties.ContentType = draw(TEXT)
    if draw(st.booleans()):
        properties.MessageExpiryInterval = draw(st.integers(0, 2**32 - 1))
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += draw(st.integers(1, 65535)).to_bytes(2, "big")
    body += bytes(properties.pack()) + draw(st.binary(max_size=300))  # type: ignore[no-untyped-call]
    length = varint(len(body))
    if draw(st.booleans()):  # now and then a length that lies: more than follows
        body = body[: draw(st.integers(0, len(body)))]
    return bytes([header]) + length + body


STREAM = st.lists(publish() | st.binary(min_size=1, max_size=12), min_size=1, max_size=8).map(
    b"".join
)


def received(client_class: type[mqtt.Client], data: bytes, reads: list[int]) -> tuple[Any, ...]:
    client = client_class(CallbackAPIVersion.VERSION2, client_id="reader", protocol=mqtt.MQTTv5)
    sock = ScriptedSocket(data, reads)
    messages: list[tuple[Any, ...]] = []

    def on_message(_c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        properties = m.properties.json() if m.properties is not None else None  # type: ignore[no-untyped-call]
        messages.append((m._topic, m.payload, m.mid, m.qos, m.dup, m.retain, properties))

    client.on_message = on_message
    client._sock = sock  # type: ignore[assignment]
    client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
    rc = MQTTErrorCode.MQTT_ERR_SUCCESS
    for _ in range(len(data) + 2):  # stock paho reads one packet per call
        rc = client.loop_read(1)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or client._sock is None:
            break
        if (
            sock.position >= len(data)
            and not getattr(client, "_read_buffer", b"")[getattr(client, "_read_position", 0) :]
        ):
            break
    return messages, bytes(sock.sent), rc


@PROPERTY
@given(data=STREAM, reads=st.lists(st.integers(1, 400), max_size=40))
def test_the_fast_reader_delivers_and_answers_what_paho_does(data: bytes, reads: list[int]) -> None:
    assert received(FastMqttClient, data, list(reads)) == received(mqtt.Client, data, [])


def test_a_burst_of_publishes_is_read_by_the_fast_path() -> None:
    packets = []
    for mid in range(1, 51):
        body = b"\x00\x03a/b" + mid.to_bytes(2, "big") + b"\x00" + b"x" * 200
        packets.append(b"\x32" + varint(len(body)) + body)
    slow: list[int] = []
    paho_read = mqtt.Client._packet_read

    def counted(self: mqtt.Client) -> MQTTErrorCode:
        slow.append(1)
        return paho_read(self)

    mqtt.Client._packet_read = counted  # type: ignore[method-assign]
    try:
        messages, sent, rc = received(FastMqttClient, b"".join(packets), [])
    finally:
        mqtt.Client._packet_read = paho_read  # type: ignore[method-assign]
    assert rc == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert [m[2] for m in messages] == list(range(1, 51))
    assert sent == b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in range(1, 51))
    assert len(slow) <= 2, "paho's reader took packets the fast path should have"


def test_a_publish_split_across_reads_is_delivered_whole_once() -> None:
    def packet(mid: int) -> bytes:
        body = b"\x00\x03a/b" + mid.to_bytes(2, "big") + b"\x00" + b"y" * 100
        return b"\x32" + varint(len(body)) + body

    first, second = packet(6), packet(7)  # the second one starts in the first read's buffer
    for cut in (1, 2, 5, len(second) - 1):
        messages, sent, rc = received(FastMqttClient, first + second, [len(first) + cut])
        assert rc == MQTTErrorCode.MQTT_ERR_SUCCESS
        assert [(m[0], m[1], m[2]) for m in messages] == [
            (b"a/b", b"y" * 100, 6),
            (b"a/b", b"y" * 100, 7),
        ], cut
        assert sent == b"\x40\x02\x00\x06\x40\x02\x00\x07"
