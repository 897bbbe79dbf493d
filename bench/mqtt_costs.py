"""What MQTT 5 costs in Python per message, the figures behind the confirmation design.

- paho's ``publish()`` at QoS 0 and QoS 1 (CPU per publish, PUBACKs included), to a real
  Mosquitto of a throwaway local stack, over mutual TLS;
- reading the PUBLISH properties of a stamped message: paho's parser vs ``FastPublishProperties``;
- packing a stamp: paho's ``Properties.pack`` vs ``UserProperties``.

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

from fleetlink.adapters.mqtt.client import new_client
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
            client.loop_stop()
        finally:
            stack.down()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--publishes", type=int, default=20_000)
    args = parser.parse_args()
    properties_costs()
    publish_costs(args.publishes)


if __name__ == "__main__":
    main()
