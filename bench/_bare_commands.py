"""The bare MQTT round trip to cars: the baseline of the command benchmarks.

A client with the gateway's rights publishes signed commands straight to
``vehicles/{vin}/commands/{id}`` on a fixed schedule and waits for each car's final answer, with
no Kafka and no fleetlink process in the path.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fleetlink.adapters.mqtt.client import stop_loop
from fleetlink.adapters.mqtt.wire import disable_nagle
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import Command, CommandName
from fleetlink.contracts.topics import VEHICLES_ROOT, MqttTopic, VehicleChannel
from fleetlink.security.keys import command_signer
from fleetlink.security.pki import Role
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack


def run_mqtt(
    settings: Settings, vins: list[str], rate: float, seconds: float
) -> tuple[dict, dict, float]:
    """The baseline: commands straight to the cars over MQTT, answers straight back."""
    started: dict[str, float] = {}
    ended: dict[str, tuple[str, float]] = {}
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        command_id = message.topic.rsplit("/", 1)[-1]
        status = json.loads(message.payload).get("status")
        if status != "accepted" and command_id in started:
            with lock:
                ended.setdefault(command_id, (status, time.monotonic()))

    stack = LocalStack(settings.stack)
    stack.access.ensure_services(["bench-bridge"], Role.GATEWAY)  # the rights of the gateway
    signer = command_signer(settings)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-bridge", protocol=mqtt.MQTTv5
    )
    client.tls_set_context(stack.pki.client_tls("bench-bridge"))
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(*settings.mqtt_address())
    disable_nagle(client.socket())
    client.loop_start()
    client.subscribe(f"{VEHICLES_ROOT}/+/{VehicleChannel.COMMAND_RESPONSES}/+", qos=1)
    subscribed.wait(10)
    rng = random.Random(int(rate) + 1)
    first = time.monotonic()
    for index in range(int(rate * seconds)):
        delay = first + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.time_ns() // 1_000_000
        command_id = f"mqtt-{uuid.uuid4().hex}"
        vin = rng.choice(vins)
        started[command_id] = time.monotonic()
        command = signer.sign_command(
            Command(command_id, CommandName.FLASH, issued_at=now, expires_at=now + 60_000, vin=vin)
        )
        client.publish(MqttTopic.command(vin, command_id), encode(command), qos=1)
    span = time.monotonic() - first
    deadline = time.monotonic() + 15
    while len(ended) < len(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    client.disconnect()
    stop_loop(client)
    return started, ended, span
