"""Mosquitto's own counters ($SYS), read by the benchmarks."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fleetlink.adapters.mqtt.client import stop_loop
from fleetlink.security.pki import Role
from fleetlink.stack import LocalStack


class BrokerStats:
    """Mosquitto's own counters from $SYS."""

    def __init__(self, stack: LocalStack, port: int) -> None:
        self.connected = 0
        self.received = 0
        stack.access.ensure_services(["bench-sys"], Role.MONITOR)  # reads $SYS, publishes nothing
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sys")
        self._client.tls_set_context(stack.pki.client_tls("bench-sys"))
        self._client.on_message = self._on_message
        self._client.on_connect = lambda c, *_: c.subscribe(
            [("$SYS/broker/clients/connected", 0), ("$SYS/broker/messages/received", 0)]
        )
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        value = int(message.payload)
        if message.topic.endswith("clients/connected"):
            self.connected = value
        else:
            self.received = value

    def close(self) -> None:
        self._client.disconnect()
        stop_loop(self._client)
