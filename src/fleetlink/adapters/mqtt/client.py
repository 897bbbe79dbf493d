"""paho-mqtt clients configured from the settings: MQTT 5, TLS and credentials when set."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetlink.security.pki import DevPki
from fleetlink.settings import MqttSettings, Settings


class FastMqttClient(mqtt.Client):
    """A paho client tuned for receiving many messages.

    Stock paho reads a packet with three ``recv`` calls (command byte, length, body) and waits in
    ``select`` before each packet, and walks its per-topic callback tree for every message even
    when none is registered; under load that costs more CPU than handling the message. This reads
    the socket in 64 KiB chunks, handles every buffered packet per wake-up, and calls
    ``on_message`` directly when no per-topic callback exists, and turns Nagle's algorithm off. It
    overrides internals of the pinned paho-mqtt 2.x (``_sock_recv``, ``loop_read``,
    ``_handle_on_message``, ``_create_socket_connection``);
    ``tests/integration/test_mqtt_client.py`` checks them against the real broker.
    """

    _READ_CHUNK = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_buffer = b""
        self._read_position = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._read_position >= len(self._read_buffer):
            data = super()._sock_recv(self._READ_CHUNK)
            if not data:
                return data
            self._read_buffer, self._read_position = data, 0
        start = self._read_position
        chunk = self._read_buffer[start : start + bufsize]
        self._read_position = start + len(chunk)
        return chunk

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while (
            rc == MQTTErrorCode.MQTT_ERR_SUCCESS
            and self._sock is not None
            and self._read_position < len(self._read_buffer)
        ):
            rc = super().loop_read(1)
        return rc

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        on_message = self.on_message
        if on_message is None or self._on_message_filtered._root._children:
            super()._handle_on_message(message)
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as error:
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", error)
                if not self.suppress_exceptions:
                    raise

    def _sock_close(self) -> None:
        self._read_buffer, self._read_position = b"", 0  # bytes of a dead connection
        super()._sock_close()

    def _create_socket_connection(self) -> socket.socket:
        sock = super()._create_socket_connection()
        disable_nagle(sock)
        return sock


_PAHO_TABLES = ("types", "names", "properties")
_PAHO_OWN = frozenset({"packetType", *_PAHO_TABLES})
_USER_PROPERTY = 38
_CONTENT_TYPE = 3


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


# paho's network thread builds the properties of every incoming packet through this name
mqtt.Properties = FastPublishProperties  # type: ignore[attr-defined]


def disable_nagle(sock: object) -> None:
    """Send small packets at once. paho leaves Nagle's algorithm on: a PUBACK followed by a
    PUBLISH then waits for the peer's delayed ACK, about 40 ms per command on Linux."""
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def new_client(settings: Settings, client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    """A client for ``client_id``; against the local stack the identity of that name connects."""
    client = FastMqttClient(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    options = settings.mqtt
    if options.username is not None:
        password = options.password.get_secret_value() if options.password else None
        client.username_pw_set(options.username, password)
    context = identity_tls(settings, client_id)
    if context is not None:
        client.tls_set_context(context)
    client.reconnect_delay_set(
        min_delay=options.reconnect_min_s,
        max_delay=max(options.reconnect_min_s, options.reconnect_max_s),
    )
    return client


def identity_tls(settings: Settings, identity: str) -> ssl.SSLContext | None:
    """TLS for ``identity``: its certificate of the local stack's PKI, or the configured files
    (``mqtt.tls``, ``mqtt.ca_file``, ``mqtt.cert_file``) for another broker."""
    if settings.uses_local_mqtt:
        return DevPki(settings.stack.pki_dir).client_tls(identity)
    return tls_context(settings.mqtt)


def tls_context(options: MqttSettings) -> ssl.SSLContext | None:
    """The TLS context for the broker when ``mqtt.tls`` is on: CA, and client certificate."""
    if not options.tls:
        return None
    context = ssl.create_default_context(cafile=str(options.ca_file) if options.ca_file else None)
    if options.cert_file is not None and options.key_file is not None:
        context.load_cert_chain(str(options.cert_file), str(options.key_file))
    return context


def connect_properties(*, session_expiry_s: int, receive_maximum: int | None = None) -> Properties:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = session_expiry_s
    if receive_maximum is not None:
        properties.ReceiveMaximum = receive_maximum
    return properties


def end_session_properties() -> Properties:
    """DISCONNECT properties that make the broker discard the session at once."""
    properties = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 0
    return properties
