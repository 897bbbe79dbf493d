"""What MQTT 5 costs in Python per message, the figures behind the confirmation design.

- paho's ``publish()`` at QoS 0 and QoS 1 (CPU per publish, PUBACKs included), to a real
  Mosquitto of a throwaway local stack, over mutual TLS;
- reading the PUBLISH properties of a stamped message: paho's parser vs ``FastPublishProperties``;
- packing a stamp: paho's ``Properties.pack`` vs ``UserProperties``;
- reading 30,000 telemetry PUBLISH packets (QoS 1, MQTT 5) from a buffer: stock paho with its
  own properties parser (as paho 2.2 ran before issue 22), paho with the fast one, and
  ``FastMqttClient`` (which decodes a buffered PUBLISH itself).

    .venv/bin/python bench/mqtt_costs.py --publishes 20000
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetlink.adapters.mqtt.client import new_client, stop_loop
from fleetlink.adapters.mqtt.wire import FastPublishProperties, UserProperties
from fleetlink.contracts.delivery import stamp_properties
from fleetlink.security.keys import identity_tls
from fleetlink.security.pki import Role
from fleetlink.settings import load_settings
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import stack_on_free_ports

PAYLOAD = b'{"ts":1796172303842,"boot":"0123456789ab","ranges":[[1,1]]}'


def per_call_us(call: Callable[[], object], number: int = 20_000) -> float:
    return timeit.timeit(call, number=number) / number * 1e6


def compare(what: str, ours: str, slow: Callable[[], object], fast: Callable[[], object]) -> None:
    print(f"{what}: paho {per_call_us(slow):.1f} µs, {ours} {per_call_us(fast):.1f} µs")


def properties_costs() -> None:
    pairs = stamp_properties("0123456789ab", 12345)
    paho = Properties(PacketTypes.PUBLISH)
    paho.UserProperty = pairs
    packed = bytes(paho.pack())
    empty = bytes([0])

    def paho_pack() -> bytes:
        built = Properties(PacketTypes.PUBLISH)
        built.UserProperty = pairs
        return bytes(built.pack())

    def paho_unpack(buffer: bytes) -> Callable[[], object]:
        return lambda: Properties(PacketTypes.PUBLISH).unpack(buffer)

    def fast_unpack(buffer: bytes) -> Callable[[], object]:
        return lambda: FastPublishProperties(PacketTypes.PUBLISH).unpack(buffer)

    fast = "FastPublishProperties"
    compare("unpack a stamp", fast, paho_unpack(packed), fast_unpack(packed))
    compare("unpack no properties", fast, paho_unpack(empty), fast_unpack(empty))
    compare("pack a stamp", "UserProperties", paho_pack, lambda: UserProperties(pairs).pack())


def publish_costs(publishes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="fleetlink-mqtt-costs-") as tmp:
        settings = load_settings(stack=stack_on_free_ports(Path(tmp), 1))
        stack = LocalStack(settings.stack)
        stack.up()
        try:
            stack.access.ensure_services(["mqtt-costs-0"], Role.GATEWAY)
            host, port = settings.mqtt_address()
            client = new_client(
                settings, "mqtt-costs-0", tls=identity_tls(settings, "mqtt-costs-0")
            )
            connected = threading.Event()
            client.on_connect = lambda *_args: connected.set()
            client.connect(host, port)
            client.loop_start()
            connected.wait(10)
            for qos in (0, 1):
                started, cpu = time.monotonic(), time.process_time()
                infos = [
                    client.publish(
                        f"vehicles/WVWZZZ1JZXW{n % 1000:06d}/delivered", PAYLOAD, qos=qos
                    )
                    for n in range(publishes)
                ]
                for info in infos:
                    info.wait_for_publish(60)
                cpu, wall = time.process_time() - cpu, time.monotonic() - started
                print(
                    f"paho publish QoS {qos}: {cpu / publishes * 1e6:.0f} µs CPU each "
                    f"(this process, network thread included), {publishes / wall:,.0f}/s"
                )
            client.disconnect()
            stop_loop(client)
        finally:
            stack.down()


class _Buffered:
    """A socket that hands out one prepared byte stream."""

    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def recv(self, size: int) -> bytes:
        if self.position >= len(self.data):
            raise BlockingIOError
        chunk = self.data[self.position : self.position + size]
        self.position += len(chunk)
        return chunk

    def pending(self) -> int:
        return 0

    def close(self) -> None:
        pass


def read_costs(packets: int = 30_000) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt import _packet
    from paho.mqtt.enums import CallbackAPIVersion

    from fleetlink.adapters.mqtt.client import FastMqttClient
    from fleetlink.adapters.mqtt.wire import _varint_bytes

    payload = b'{"ts":1796172303842,"seq":1,"signals":{"Vehicle.Speed":12.5}}' + b" " * 180
    stream = bytearray()
    for n in range(packets):
        topic = f"vehicles/WVWZZZ1JZXW{n % 1000:06d}/telemetry".encode()
        body = len(topic).to_bytes(2, "big") + topic + (n % 65000 + 1).to_bytes(2, "big")
        body += b"\x00" + payload
        stream += b"\x32" + _varint_bytes(len(body)) + body

    def read(client_class: type[mqtt.Client]) -> float:
        client = client_class(CallbackAPIVersion.VERSION2, client_id="r", protocol=mqtt.MQTTv5)
        got = [0]
        client.on_message = lambda *_: got.__setitem__(0, got[0] + 1)
        client._sock = _Buffered(bytes(stream))  # type: ignore[assignment]
        client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
        started = time.process_time()
        while got[0] < packets:
            client.loop_read(1000)
        return (time.process_time() - started) / packets * 1e6

    fast_properties = _packet.Properties
    _packet.Properties = Properties  # paho's own, as 2.2 decoded PUBLISH before the fix
    try:
        stock = read(mqtt.Client)
    finally:
        _packet.Properties = fast_properties
    print(
        f"read a PUBLISH: paho with its own properties {stock:.1f} µs, paho with the fast "
        f"properties {read(mqtt.Client):.1f} µs, FastMqttClient {read(FastMqttClient):.1f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--publishes", type=int, default=20_000)
    args = parser.parse_args()
    properties_costs()
    read_costs()
    publish_costs(args.publishes)


if __name__ == "__main__":
    main()
