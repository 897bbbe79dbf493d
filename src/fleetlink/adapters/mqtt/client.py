"""paho-mqtt clients configured from the settings: MQTT 5, TLS and credentials when set."""

from __future__ import annotations

import collections
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetlink.adapters.mqtt.wire import buffered_publish, disable_nagle
from fleetlink.settings import Settings

# a received message's ``info`` tracks nothing (it is for messages this client publishes); paho
# builds one per message, with a threading.Condition in it
_RECEIVED_INFO = mqtt.MQTTMessageInfo(0)


class FastMqttClient(mqtt.Client):
    """A paho client tuned for receiving many messages.

    Stock paho reads a packet with three ``recv`` calls (command byte, length, body) and waits in
    ``select`` before each packet, and walks its per-topic callback tree for every message even
    when none is registered; under load that costs more CPU than handling the message. This reads
    the socket in 64 KiB chunks, handles every buffered packet per wake-up, and calls
    ``on_message`` directly when no per-topic callback exists, and turns Nagle's algorithm off. It
    decodes a buffered QoS 0/1 PUBLISH itself (``wire.buffered_publish``). It overrides
    internals of the pinned paho-mqtt 2.x (``_sock_recv``, ``_packet_read``, ``loop_read``,
    ``_handle_on_message``, ``_packet_queue``, ``_create_socket_connection``);
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

    def _packet_read(self) -> MQTTErrorCode:
        """A QoS 0/1 PUBLISH whole in the buffer is decoded and handed over here; paho's reader
        (three reads, ``struct`` formats built per packet, a debug line formatted) does the
        rest: every other packet type, QoS 2, and packets split across reads."""
        if self._in_packet["command"] or self._protocol != mqtt.MQTTv5:
            return super()._packet_read()
        publish = buffered_publish(self._read_buffer, self._read_position)
        if publish is None:
            return super()._packet_read()
        self._read_position = publish.end
        header = publish.header
        message = mqtt.MQTTMessage.__new__(mqtt.MQTTMessage)
        message.mid = publish.mid
        message._topic = publish.topic
        message.state = mqtt.mqtt_ms_invalid
        message.info = _RECEIVED_INFO
        message.dup = bool(header & 0x08)
        message.qos = qos = (header >> 1) & 0x03
        message.retain = bool(header & 0x01)
        message.properties = publish.properties
        message.payload = publish.payload
        message.timestamp = now = time.monotonic()  # paho's clock
        self._handle_on_message(message)
        with self._msgtime_mutex:
            self._last_bytes_received = now
        if qos == 1 and not self._manual_ack:
            return self._send_puback(publish.mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    # called by the network thread before each wait for the socket; returns the longest wait
    # it allows (the gateway serves Kafka delivery reports here, see ``gateway/worker.py``)
    between_reads: Callable[[], float] | None = None

    def _loop(self, timeout: float = 1.0) -> MQTTErrorCode:
        hook = self.between_reads
        if hook is not None:
            timeout = min(timeout, hook())
        return super()._loop(timeout)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while (
            rc == MQTTErrorCode.MQTT_ERR_SUCCESS
            and self._sock is not None
            and self._read_position < len(self._read_buffer)
        ):
            rc = self._packet_read()  # what paho's loop_read(1) does, without its set-up
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            if rc > 0:
                return self._loop_rc_handle(rc)
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

    def acknowledge(self, received: Sequence[tuple[int, int]]) -> None:
        """Acknowledge (manual ack) each ``(mid, qos)`` received, in this order.

        paho's ``ack`` queues one packet per message, and from another thread each wakes the
        network thread and becomes its own write: over TLS one record, one encryption and one
        syscall per PUBACK. Here the PUBACKs of a batch go out as one write.
        """
        batch = bytearray()
        for mid, qos in received:
            if qos == 1:
                batch += struct.pack("!BBH", mqtt.PUBACK, 2, mid)
            elif qos == 2:  # its own flow (PUBCOMP after PUBREL): paho's, in order
                self._queue_acks(batch)
                batch = bytearray()
                self.ack(mid, qos)
        self._queue_acks(batch)

    def _queue_acks(self, batch: bytearray) -> None:
        if batch:
            self._packet_queue(mqtt.PUBACK, bytes(batch), 0, 1)

    def coalesce_queued(self) -> None:
        """Join the queued packets that need nothing done once written into one write.

        paho sends each packet with its own ``send``: over TLS one record, one encryption and one
        syscall each. A QoS 1/2 PUBLISH, an ack or a SUBSCRIBE needs nothing when written (paho
        tracks those messages apart from the queue), so consecutive ones go out as one; a QoS 0
        PUBLISH (it reports itself published), DISCONNECT (it closes the socket) and a packet
        already partly written keep their own entry. For single-threaded use (an event loop).
        """
        queue = self._out_packet
        if len(queue) < 2:
            return
        joined: collections.deque[Any] = collections.deque()
        run: list[bytes] = []
        for packet in queue:
            kind = packet["command"] & 0xF0
            plain = packet["pos"] == 0 and kind != mqtt.DISCONNECT
            if plain and not (kind == mqtt.PUBLISH and packet["qos"] == 0):
                run.append(bytes(packet["packet"]))
                continue
            self._close_run(joined, run)
            joined.append(packet)
        self._close_run(joined, run)
        self._out_packet = joined

    @staticmethod
    def _close_run(joined: collections.deque[Any], run: list[bytes]) -> None:
        if run:
            data = b"".join(run)
            joined.append(
                {"command": mqtt.PUBACK, "mid": 0, "qos": 1, "pos": 0, "to_process": len(data),
                 "packet": data, "info": None}
            )  # fmt: skip
            run.clear()

    def _sock_close(self) -> None:
        self._read_buffer, self._read_position = b"", 0  # bytes of a dead connection
        super()._sock_close()

    def _create_socket_connection(self) -> socket.socket:
        sock = super()._create_socket_connection()
        disable_nagle(sock)
        return sock


def new_client(
    settings: Settings,
    client_id: str,
    *,
    tls: ssl.SSLContext | None,
    manual_ack: bool = False,
) -> FastMqttClient:
    """A client for ``client_id`` of the configured broker, with ``tls`` (see
    ``security.keys.identity_tls``: the identity's own certificate on the local stack)."""
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
    if tls is not None:
        client.tls_set_context(tls)
    client.reconnect_delay_set(
        min_delay=options.reconnect_min_s,
        max_delay=max(options.reconnect_min_s, options.reconnect_max_s),
    )
    return client


def stop_loop(client: mqtt.Client) -> None:
    """``client.loop_stop()`` without its race: after ``disconnect()`` paho's network thread
    ends and clears ``_thread``, which ``loop_stop`` reads twice (check, then join), so it can
    raise AttributeError. This reads it once."""
    thread = client._thread
    if thread is None:
        return
    client._thread_terminate = True
    if thread is not threading.current_thread():
        thread.join()


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
