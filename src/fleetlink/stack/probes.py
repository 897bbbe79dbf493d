"""Does a component answer? One Kafka metadata request, one MQTT 5 CONNECT."""

from __future__ import annotations

import ssl
import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.mqtt.client import stop_loop


def kafka_broker_ids(bootstrap_servers: str, timeout: float = 3.0) -> set[int]:
    """Ids of the brokers the cluster reports through ``bootstrap_servers`` (empty: no answer)."""
    admin = KafkaClients.at(bootstrap_servers).admin()
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:  # KafkaException on timeout; any failure means "does not answer"
        return set()
    return set(metadata.brokers)


def mqtt_answers(
    host: str, port: int, tls: ssl.SSLContext | None = None, timeout: float = 3.0
) -> bool:
    """True when the broker accepts an MQTT 5 connection (CONNACK with success)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"fleetlink-probe-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    if tls is not None:
        client.tls_set_context(tls)
    connected = threading.Event()
    accepted: list[bool] = []

    def on_connect(
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        accepted.append(not reason_code.is_failure)
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except (OSError, ssl.SSLError):
        return False
    client.loop_start()
    try:
        connected.wait(timeout)
    finally:
        client.disconnect()
        stop_loop(client)
    return bool(accepted and accepted[0])
