"""Real clients for integration tests: paho-mqtt (MQTT 5) and confluent-kafka."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, KafkaError, Message
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetlink.config import Settings, load_settings
from fleetlink.stack.ports import stack_on_free_ports

REPO = Path(__file__).resolve().parents[2]


def stack_settings(state_dir: Path, brokers: int = 1) -> Settings:
    """Settings for a stack of its own on free loopback ports, state under ``state_dir``."""
    return load_settings(stack=stack_on_free_ports(state_dir, brokers))


def stack_env(settings: Settings) -> dict[str, str]:
    """The same settings as environment variables, for a CLI subprocess."""
    stack = settings.stack
    return {
        "FLEETLINK_STACK__STATE_DIR": str(stack.state_dir),
        "FLEETLINK_STACK__BROKERS": str(stack.brokers),
        "FLEETLINK_STACK__KAFKA_PORT": str(stack.kafka_port),
        "FLEETLINK_STACK__CONTROLLER_PORT": str(stack.controller_port),
        "FLEETLINK_STACK__MQTT_PORT": str(stack.mqtt_port),
    }


def processes_using(state_dir: Path) -> list[str]:
    """Command lines of live processes that name ``state_dir`` (config paths live under it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if str(state_dir) in cmdline and state != "Z":
            found.append(cmdline)
    return found


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetlink", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


@dataclass
class MqttInbox:
    """Messages one MQTT client received, in arrival order."""

    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        with self.lock:
            return list(self.messages)


@contextmanager
def mqtt_client(
    port: int,
    *,
    client_id: str | None = None,
    clean_start: bool = True,
    session_expiry_s: int = 0,
    subscribe: str | None = None,
) -> Iterator[tuple[mqtt.Client, MqttInbox]]:
    """A connected MQTT 5 client (QoS 1 subscription if asked); disconnects on exit."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or f"test-{uuid.uuid4().hex[:10]}",
        protocol=mqtt.MQTTv5,
    )
    inbox = MqttInbox()
    connected = threading.Event()
    subscribed = threading.Event()

    def on_connect(*_args: object) -> None:
        connected.set()

    def on_subscribe(*_args: object) -> None:
        subscribed.set()

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with inbox.lock:
            inbox.messages.append(message)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = session_expiry_s
    client.connect("127.0.0.1", port, keepalive=30, clean_start=clean_start, properties=properties)
    client.loop_start()
    try:
        assert connected.wait(10), "no CONNACK from Mosquitto"
        if subscribe is not None:
            client.subscribe(subscribe, qos=1)
            assert subscribed.wait(10), "no SUBACK from Mosquitto"
        yield client, inbox
    finally:
        client.disconnect()
        client.loop_stop()


def consume(
    bootstrap_servers: str, topic: str, expected: int, timeout: float = 60.0
) -> list[Message]:
    """Read ``topic`` from the beginning with a fresh group until ``expected`` records came."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise AssertionError(f"consumer error: {error}")
                if error is None:
                    records.append(message)
    finally:
        consumer.close()
    return records
