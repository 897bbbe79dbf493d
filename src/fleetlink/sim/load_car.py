"""One car of the load fleet (``sim/load_fleet.py``): its state, the agent's command executor
and a paho MQTT 5 client; what it publishes is stamped with its boot and sequence."""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fleetlink.adapters.mqtt.client import FastMqttClient
from fleetlink.adapters.mqtt.wire import UserProperties
from fleetlink.contracts.codec import encode
from fleetlink.contracts.delivery import stamp_properties
from fleetlink.contracts.models import Event, EventKind, PresenceStatus, Telemetry
from fleetlink.contracts.topics import MqttTopic
from fleetlink.vehicle.commands import CommandExecutor
from fleetlink.vehicle.state import VehicleState


class LoadCar:
    """One car: its state, the agent's command executor and a paho client."""

    def __init__(self, state: VehicleState, executor: CommandExecutor, client: FastMqttClient):
        self.state = state
        self.vin = state.vin
        self.executor = executor
        self.client = client
        self.boot = secrets.token_hex(6)
        self.seq = 0
        self.online = False  # CONNACK received, socket on the loop
        self.fd: int | None = None  # registered with the loop
        self.writing = False  # a write did not fit the socket: the loop finishes it
        self.reading = False  # in paho's read (its callbacks): writes wait until it returns
        self.flush: Callable[[], None] = lambda: None
        self.backoff_s = 1.0

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.seq += 1
        properties = UserProperties(stamp_properties(self.boot, self.seq))
        self.client.publish(topic, payload, qos=1, retain=retain, properties=properties)
        if not self.reading and self.client.want_write():
            self.flush()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def presence(self, status: PresenceStatus, reason: str) -> bytes:
        return encode(self.state.presence(status, reason, self.now_ms()))

    def report(self) -> None:
        telemetry = Telemetry(ts=self.now_ms(), seq=self.seq + 1, signals=self.state.signals())
        self.publish(MqttTopic.telemetry(self.vin), encode(telemetry))

    def event(self, kind: EventKind, data: dict[str, object]) -> None:
        state = self.state
        event = Event(
            ts=self.now_ms(),
            seq=self.seq + 1,
            data=data,
            latitude=round(state.latitude, 6),
            longitude=round(state.longitude, 6),
            heading_deg=round(state.heading_deg % 360, 1),
            speed_kmh=round(max(0.0, state.speed_kmh), 1),
        )
        self.publish(MqttTopic.event(self.vin, kind), encode(event))


def car_client(vin: str, tls: ssl.SSLContext | None, password: str | None) -> FastMqttClient:
    """A car's client: its VIN as client id and user name, its own certificate."""
    client = FastMqttClient(CallbackAPIVersion.VERSION2, client_id=vin, protocol=mqtt.MQTTv5)
    client.username_pw_set(vin, password)
    if tls is not None:
        client.tls_set_context(tls)
    return client
