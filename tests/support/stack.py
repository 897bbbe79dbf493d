"""Real clients for integration tests: paho-mqtt (MQTT 5) and confluent-kafka."""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, KafkaError, Message
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleetlink.adapters import runner
from fleetlink.adapters.mqtt.client import stop_loop
from fleetlink.contracts.vin import is_valid_vin
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import DevPki, Role, SigningPurpose
from fleetlink.security.signing import Signer, Verifier
from fleetlink.security.tokens import issue_token
from fleetlink.security.users import User, UserRegistry, UserRole
from fleetlink.settings import Settings, load_settings
from fleetlink.sim.flood import FloodBroker
from fleetlink.stack.local import LocalStack
from fleetlink.stack.ports import stack_on_free_ports
from fleetlink.vehicle.agent import VehicleAgent
from fleetlink.vehicle.state import VehicleState

REPO = Path(__file__).resolve().parents[2]


def stack_settings(state_dir: Path, brokers: int = 1) -> Settings:
    """Settings for a stack of its own on free loopback ports, state under ``state_dir``."""
    return load_settings(stack=stack_on_free_ports(state_dir, brokers))


@contextmanager
def running_stack(settings: Settings) -> Iterator[LocalStack]:
    """The stack of ``settings``, up; afterwards down, and no process of it left (a test may
    have restarted one under a new pid: the state at the end counts)."""
    stack = LocalStack(settings.stack)
    stack.up()
    try:
        yield stack
    finally:
        state = stack.state()
        stack.down()
    left = [record for record in state.processes if runner.is_running(record)] if state else []
    assert not left, f"processes left running: {left}"


def edge_cloud_settings(state_dir: Path) -> Settings:
    """An edge-cloud stack of its own (free ports), MM2 tuned to pick up a test's new topics
    within a second and lose at most a second of offsets when killed."""
    stack = stack_on_free_ports(state_dir, edge_cloud=True)
    stack["mirror"] = {"refresh_topics_s": 1, "offset_flush_ms": 1000, "heartbeat_s": 1}
    return load_settings(stack=stack)


def stack_env(settings: Settings) -> dict[str, str]:
    """The same settings as environment variables, for a CLI subprocess."""
    stack = settings.stack
    return {
        "FLEETLINK_STACK__STATE_DIR": str(stack.state_dir),
        "FLEETLINK_STACK__BROKERS": str(stack.brokers),
        "FLEETLINK_STACK__KAFKA_PORT": str(stack.kafka_port),
        "FLEETLINK_STACK__CONTROLLER_PORT": str(stack.controller_port),
        "FLEETLINK_STACK__MQTT_PORT": str(stack.mqtt_port),
        "FLEETLINK_STACK__TOPOLOGY": str(stack.topology),
        "FLEETLINK_STACK__CLOUD_KAFKA_PORT": str(stack.cloud_kafka_port),
        "FLEETLINK_STACK__CLOUD_CONTROLLER_PORT": str(stack.cloud_controller_port),
        "FLEETLINK_STACK__LINK_PORT": str(stack.link_port),
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
    suback: list[int] = field(default_factory=list)  # reason codes of the last SUBACK
    puback: dict[int, int] = field(default_factory=dict)  # message id -> PUBACK reason code
    disconnects: list[int] = field(default_factory=list)  # reason codes of lost connections

    def wait_for(self, count: int, timeout: float) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        with self.lock:
            return list(self.messages)


TEST_PROXY = "fleetlink-test-proxy"  # publishes for many cars: the load generator (-0, -1 ...)
TEST_MONITOR = "fleetlink-test-monitor"  # reads every vehicle topic, publishes nothing
TEST_GATEWAY = "fleetlink-test-gateway"  # the bridge's rights: sends commands and warnings
_TEST_SERVICES = {TEST_PROXY: Role.PROXY, TEST_MONITOR: Role.MONITOR, TEST_GATEWAY: Role.GATEWAY}


def mqtt_tls(settings: Settings, identity: str) -> ssl.SSLContext:
    """TLS with ``identity``'s certificate; a VIN or a test service is registered when new."""
    if is_valid_vin(identity):
        DevPki(settings.stack.pki_dir).ensure([identity], Role.VEHICLE)
    elif identity in _TEST_SERVICES:
        LocalStack(settings.stack).access.ensure_services([identity], _TEST_SERVICES[identity])
    elif identity.startswith(f"{TEST_PROXY}-"):
        LocalStack(settings.stack).access.ensure_services([identity], Role.PROXY)
    return DevPki(settings.stack.pki_dir).client_tls(identity)


def fleet_tls(settings: Settings) -> Callable[[str], ssl.SSLContext]:
    """Each simulated car's TLS context (its certificate, registered when new)."""
    return lambda vin: mqtt_tls(settings, vin)


def platform_signer(settings: Settings) -> Signer:
    """The platform's command signer of this stack (what the API uses), for tests that write
    commands themselves."""
    return Signer(DevPki(settings.stack.pki_dir).signing_key(SigningPurpose.VEHICLE_TRUST))


def vehicle_verifier(settings: Settings) -> Verifier:
    """What the stack's cars trust."""
    return DevPki(settings.stack.pki_dir).vehicle_verifier()


def user_token(
    settings: Settings, name: str, role: UserRole, vins: list[str] | None = None
) -> dict[str, str]:
    """Register (or replace) an API user and return the Authorization header of a token."""
    UserRegistry(settings.users_file()).put(User(name, role, vins=vins or []))
    key = signing_key(settings, SigningPurpose.API_TOKENS)
    return {"Authorization": f"Bearer {issue_token(key, name, role.value, ttl_s=3600)}"}


def flood_brokers(settings: Settings, processes: int, first: int = 0) -> list[FloodBroker]:
    """Where the load generator's processes publish, each as a test proxy identity of its own."""
    names = [f"{TEST_PROXY}-{n}" for n in range(first, first + processes)]
    LocalStack(settings.stack).access.ensure_services(names, Role.PROXY)
    return [FloodBroker.of(settings, name) for name in names]


@contextmanager
def mqtt_client(
    settings: Settings,
    identity: str = TEST_MONITOR,
    *,
    clean_start: bool = True,
    session_expiry_s: int = 0,
    subscribe: str | None = None,
    password: str | None = None,
    client_id: str | None = None,
) -> Iterator[tuple[mqtt.Client, MqttInbox]]:
    """A client connected over TLS as ``identity`` (MQTT 5; QoS 1 subscription if asked).

    With ``password`` it connects to the password listener, as username ``identity``, showing
    no certificate."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or identity, protocol=mqtt.MQTTv5
    )
    host, port = settings.mqtt_address()
    if password is None:
        client.tls_set_context(mqtt_tls(settings, identity))
    else:
        assert settings.stack.mqtt_password_port is not None
        port = settings.stack.mqtt_password_port
        pki = DevPki(settings.stack.pki_dir)
        client.tls_set_context(ssl.create_default_context(cafile=str(pki.ca_file)))
        client.username_pw_set(identity, password)
    inbox = MqttInbox()
    connected = threading.Event()
    subscribed = threading.Event()

    def on_connect(*_args: object) -> None:
        connected.set()

    def on_subscribe(
        _client: mqtt.Client, _userdata: object, _mid: int, codes: list[ReasonCode], *_: object
    ) -> None:
        inbox.suback = [code.value for code in codes]
        subscribed.set()

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with inbox.lock:
            inbox.messages.append(message)

    def on_publish(
        _client: mqtt.Client, _userdata: object, mid: int, code: ReasonCode, *_: object
    ) -> None:
        inbox.puback[mid] = code.value

    def on_disconnect(
        _client: mqtt.Client, _u: object, _f: object, code: ReasonCode, *_: object
    ) -> None:
        inbox.disconnects.append(code.value)

    client.on_publish = on_publish
    client.on_disconnect = on_disconnect
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = session_expiry_s
    client.connect(host, port, keepalive=30, clean_start=clean_start, properties=properties)
    client.loop_start()
    try:
        assert connected.wait(10), "no CONNACK from Mosquitto"
        if subscribe is not None:
            client.subscribe(subscribe, qos=1)
            assert subscribed.wait(10), "no SUBACK from Mosquitto"
            assert inbox.suback[0] < 0x80, f"subscription to {subscribe} refused: {inbox.suback}"
        yield client, inbox
    finally:
        client.disconnect()
        stop_loop(client)


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


def new_agent(settings: Settings, vin: str, **options: Any) -> VehicleAgent:
    """A car of this stack's fleet, parked in Berlin: its certificate, the platform's key.

    At stop it waits a second (not a real unit's 5) for confirmations still owed: several tests
    have no gateway to confirm, or stopped it.
    """
    options.setdefault("final_flush_s", 1.0)
    host, port = settings.mqtt_address()
    return VehicleAgent(
        VehicleState(vin=vin, latitude=52.52, longitude=13.40),
        host=host,
        port=port,
        tls_context=mqtt_tls(settings, vin),
        verifier=vehicle_verifier(settings),
        **options,
    )
