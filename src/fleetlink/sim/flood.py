"""A fast load generator: several processes of MQTT 5 publishers sending QoS 1 telemetry.

Each message is valid telemetry of the contract, about 300 bytes, with a unique ``seq`` per VIN,
so the gateway derives a predictable message id ``{vin}-{seq}-{ts}``. A share of messages can be
made malformed on purpose (to exercise the dead-letter path). Returns the ids of the messages the
broker acknowledged, for set comparisons with what reached Kafka.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import ssl
import threading
import time
import uuid
from collections.abc import Sequence
from multiprocessing.connection import Connection

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fleetlink.adapters import runner
from fleetlink.adapters.mqtt.client import stop_loop
from fleetlink.adapters.mqtt.wire import UserProperties
from fleetlink.contracts import vss
from fleetlink.contracts.delivery import stamp_properties
from fleetlink.contracts.topics import MqttTopic
from fleetlink.contracts.vin import is_valid_vin
from fleetlink.security.pki import DevPki
from fleetlink.settings import Settings

MALFORMED_KINDS = ("not-json", "schema", "missing-timestamp", "vin-mismatch", "invalid-vin")


class FloodBroker(msgspec.Struct, frozen=True):
    """Where publishers connect, and the certificate they show (a proxy identity, which may
    publish for many vehicles)."""

    host: str
    port: int
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def of(cls, settings: Settings, identity: str) -> FloodBroker:
        host, port = settings.mqtt_address()
        if not settings.uses_local_mqtt:
            return cls(host, port)
        pki = DevPki(settings.stack.pki_dir)
        found = pki.identity(identity)
        return cls(host, port, str(pki.ca_file), str(found.cert_file), str(found.key_file))

    def tls(self) -> ssl.SSLContext | None:
        if self.ca_file is None:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file is not None and self.key_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


class FloodPlan(msgspec.Struct, frozen=True):
    """What one publisher process sends."""

    broker: FloodBroker
    vins: list[str]
    messages_per_vin: int
    rate_per_s: float = 0.0  # 0: as fast as the broker takes them
    malformed_every: int = 0  # every Nth message is malformed (0: none)
    first_seq: int = 0
    max_inflight: int = 500
    stamp: bool = False  # MQTT 5 user properties fl-boot / fl-seq: the platform confirms them


class FloodResult(msgspec.Struct):
    """Ids of acknowledged valid messages, malformed counts by kind, and timing."""

    ids: list[str]
    malformed: dict[str, int]
    started: float
    finished: float
    publish_times_ms: list[int] = []


def vins_for(count: int, prefix: str = "FLT") -> list[str]:
    """``count`` distinct valid VINs (17 characters, no I, O or Q)."""
    if not is_valid_vin(f"{prefix}{0:0{17 - len(prefix)}d}"):
        raise ValueError(f"VIN prefix {prefix!r} makes invalid VINs (I, O and Q are not allowed)")
    return [f"{prefix}{n:0{17 - len(prefix)}d}" for n in range(count)]


def telemetry_payload(vin: str, seq: int, ts: int, rng: random.Random) -> bytes:
    signals = {
        vss.SPEED: round(rng.uniform(0, 130), 1),
        vss.LATITUDE: round(52.52 + rng.uniform(-0.1, 0.1), 6),
        vss.LONGITUDE: round(13.40 + rng.uniform(-0.1, 0.1), 6),
        vss.HEADING: rng.randrange(360),
        vss.BATTERY_STATE_OF_CHARGE: round(rng.uniform(10, 100), 1),
        vss.AMBIENT_TEMPERATURE: round(rng.uniform(-5, 30), 1),
        vss.TRUNK_REAR_IS_OPEN: False,
        vss.ODOMETER: 12000 + seq,
    }
    return msgspec.json.encode({"ts": ts, "seq": seq, "signals": signals})


def malformed_payload(kind: str, vin: str, seq: int, ts: int) -> tuple[str, bytes]:
    topic = MqttTopic.telemetry(vin)
    if kind == "not-json":
        return topic, b"\x00garbage" + str(seq).encode()
    if kind == "schema":
        return topic, msgspec.json.encode({"ts": ts, "seq": f"x{seq}", "signals": {}})
    if kind == "missing-timestamp":
        return topic, msgspec.json.encode({"seq": seq, "signals": {}})
    if kind == "vin-mismatch":
        return topic, msgspec.json.encode(
            {"ts": ts, "seq": seq, "signals": {}, "vin": "WVWZZZ1JZXW999999"}
        )
    return MqttTopic.telemetry("NOT-A-VIN"), msgspec.json.encode({"ts": ts, "seq": seq})


def _publish(plan: FloodPlan, results: Connection, parent: int) -> None:
    runner.die_with(parent)  # a load generator killed by kill -9 leaves no publisher behind
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"flood-{uuid.uuid4().hex[:10]}",
        protocol=mqtt.MQTTv5,
    )
    client.max_inflight_messages_set(plan.max_inflight)
    client.max_queued_messages_set(0)
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    tls = plan.broker.tls()
    if tls is not None:
        client.tls_set_context(tls)
    client.connect(plan.broker.host, plan.broker.port, keepalive=60)
    client.loop_start()
    if not connected.wait(15):
        raise RuntimeError("no CONNACK")
    rng = random.Random(plan.first_seq)
    infos: list[tuple[str | None, mqtt.MQTTMessageInfo]] = []
    malformed: dict[str, int] = {}
    publish_times: list[int] = []
    boot = uuid.uuid4().hex[:12]
    started = time.monotonic()
    count = 0
    interval = 1.0 / plan.rate_per_s if plan.rate_per_s else 0.0
    for step in range(plan.messages_per_vin):
        seq = plan.first_seq + step
        for vin in plan.vins:
            count += 1
            if interval:
                delay = started + count * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            ts = time.time_ns() // 1_000_000
            if plan.malformed_every and count % plan.malformed_every == 0:
                kind = MALFORMED_KINDS[(count // plan.malformed_every) % len(MALFORMED_KINDS)]
                topic, payload = malformed_payload(kind, vin, seq, ts)
                malformed[kind] = malformed.get(kind, 0) + 1
                infos.append((None, client.publish(topic, payload, qos=1)))
                continue
            payload = telemetry_payload(vin, seq, ts, rng)
            properties = UserProperties(stamp_properties(boot, seq + 1)) if plan.stamp else None
            info = client.publish(MqttTopic.telemetry(vin), payload, qos=1, properties=properties)
            infos.append((f"{vin}-{seq}-{ts}", info))
            publish_times.append(ts)
    for _id, info in infos:
        info.wait_for_publish(120)
    finished = time.monotonic()
    client.disconnect()
    stop_loop(client)
    ids = [message_id for message_id, info in infos if message_id and info.is_published()]
    results.send_bytes(
        msgspec.msgpack.encode(FloodResult(ids, malformed, started, finished, publish_times))
    )
    results.close()


def flood(plans: Sequence[FloodPlan], timeout: float = 600) -> list[FloodResult]:
    """Run each plan in its own process; wait for all and return their results."""
    context = multiprocessing.get_context("spawn")
    pipes = []
    processes = []
    for plan in plans:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_publish, args=(plan, send, os.getpid()), daemon=True)
        process.start()
        send.close()
        pipes.append(receive)
        processes.append(process)
    results = []
    deadline = time.monotonic() + timeout
    try:
        for receive in pipes:
            if not receive.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError("a publisher did not finish in time")
            results.append(msgspec.msgpack.decode(receive.recv_bytes(), type=FloodResult))
    finally:
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
    return results


def split_plans(
    brokers: Sequence[FloodBroker],
    vins: Sequence[str],
    messages_per_vin: int,
    **options: float | int,
) -> list[FloodPlan]:
    """Spread ``vins`` over one publisher process per broker identity (the broker allows one
    connection per identity); rates are divided between them."""
    processes = len(brokers)
    rate = float(options.pop("rate_per_s", 0.0))
    chunks = [list(vins[i::processes]) for i in range(processes)]
    return [
        FloodPlan(
            broker=broker,
            vins=chunk,
            messages_per_vin=messages_per_vin,
            rate_per_s=rate / processes if rate else 0.0,
            **options,  # type: ignore[arg-type]
        )
        for broker, chunk in zip(brokers, chunks, strict=True)
        if chunk
    ]
