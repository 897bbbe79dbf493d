"""FastMqttClient overrides paho internals: checked against the real broker, edge cases too."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt

from fleetlink.adapters.mqtt.client import new_client
from fleetlink.contracts import MqttTopic
from fleetlink.security.keys import identity_tls
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.stack import TEST_MONITOR, mqtt_client, mqtt_tls

VIN = "WVWZZZ1JZXW000201"
TOPIC = MqttTopic.telemetry(VIN)


def monitor_client(settings: Settings) -> mqtt.Client:
    mqtt_tls(settings, TEST_MONITOR)  # registered when new
    return new_client(settings, TEST_MONITOR, tls=identity_tls(settings, TEST_MONITOR))


def test_buffered_reads_deliver_every_message_intact_and_in_order(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    # sizes straddle the 64 KiB read chunk: packets split across reads, several per read
    sizes = [1, 300, 65_000, 65_536, 70_000, 5, 200_000, *([300] * 3000), 131_072]
    received: list[bytes] = []
    done = threading.Event()
    client = monitor_client(stack_config)

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        received.append(message.payload)
        if len(received) == len(sizes):
            done.set()

    subscribed = threading.Event()
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(TOPIC, qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(*stack_config.mqtt_address())
    client.loop_start()
    try:
        assert subscribed.wait(10)
        with mqtt_client(stack_config, VIN) as (publisher, _):
            payloads = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
            for payload in payloads:
                publisher.publish(TOPIC, payload, qos=1)
            assert done.wait(60), f"received {len(received)} of {len(sizes)}"
    finally:
        client.disconnect()
        client.loop_stop()
    assert received == payloads


def test_reconnect_starts_from_a_clean_buffer(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    received: list[bytes] = []
    client = monitor_client(stack_config)
    connected = threading.Event()
    client.on_message = lambda _c, _u, m: received.append(m.payload)

    def on_connect(c: mqtt.Client, *_: object) -> None:
        c.subscribe(TOPIC, qos=1)
        connected.set()

    client.on_connect = on_connect
    client.connect(*stack_config.mqtt_address())
    client.loop_start()
    try:
        assert connected.wait(10)
        connected.clear()
        client._sock_close()  # the connection drops under the client; paho reconnects
        assert connected.wait(15)
        time.sleep(0.5)
        with mqtt_client(stack_config, VIN) as (publisher, _):
            for n in range(100):
                publisher.publish(TOPIC, str(n), qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while len(received) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    assert received == [str(n).encode() for n in range(100)]
