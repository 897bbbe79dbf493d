"""FastMqttClient overrides paho internals: checked against the real broker, edge cases too."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt

from fleetlink.adapters.mqtt.client import connect_properties, new_client, stop_loop
from fleetlink.contracts import MqttTopic
from fleetlink.security.keys import identity_tls
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.polling import eventually
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
        stop_loop(client)
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
        stop_loop(client)
    assert received == [str(n).encode() for n in range(100)]


def test_acknowledging_a_batch_in_one_write_settles_every_message_at_the_broker(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    """``acknowledge`` writes many PUBACKs as one packet: the broker must take each of them, and
    redeliver only the messages left unacknowledged when the session resumes."""
    mqtt_tls(stack_config, TEST_MONITOR)
    tls = identity_tls(stack_config, TEST_MONITOR)
    address = stack_config.mqtt_address()
    received: list[tuple[int, bytes]] = []
    redelivered: list[bytes] = []
    subscribed = threading.Event()

    first = new_client(stack_config, TEST_MONITOR, tls=tls, manual_ack=True)
    first.on_connect = lambda c, *_: c.subscribe(TOPIC, qos=1)
    first.on_subscribe = lambda *_: subscribed.set()
    first.on_message = lambda _c, _u, m: received.append((m.mid, m.payload))
    first.connect(*address, clean_start=True, properties=connect_properties(session_expiry_s=60))
    first.loop_start()
    try:
        assert subscribed.wait(10)
        with mqtt_client(stack_config, VIN) as (publisher, _):
            for n in range(60):
                publisher.publish(TOPIC, str(n), qos=1).wait_for_publish(5)
        eventually(lambda: len(received) >= 60, 10, "60 messages received")
        assert len(received) == 60
        first.acknowledge([(mid, 1) for mid, _ in received[:50]])  # the last 10 stay open
        time.sleep(1.0)  # the write reaches the broker before the connection drops
    finally:
        first._sock_close()  # gone without DISCONNECT: the session and what is open stay
        stop_loop(first)

    second = new_client(stack_config, TEST_MONITOR, tls=tls, manual_ack=True)
    second.on_message = lambda _c, _u, m: redelivered.append(m.payload)
    second.connect(*address, clean_start=False, properties=connect_properties(session_expiry_s=0))
    second.loop_start()
    try:
        eventually(lambda: len(redelivered) >= 10, 10, "the 10 open messages redelivered")
        time.sleep(1.0)  # and nothing more comes
    finally:
        second.disconnect()
        stop_loop(second)
    assert sorted(redelivered, key=int) == [str(n).encode() for n in range(50, 60)]
