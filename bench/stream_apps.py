"""Stream-app benchmark: the hazards app's throughput per instance and its hazard latency.

Starts a local stack (Kafka 4.1 KRaft + Mosquitto 2.0, mutual TLS) and measures, in one run:

1. Throughput (``--events`` per run): ``fleet.events`` of a run's own topic set is pre-filled
   with a realistic mix of events as the gateway writes them (key VIN, provenance headers;
   mostly parking gaps, DTCs and harsh accelerations, plus harsh braking, ABS/ESC, hazard
   lights and a few crashes, from many VINs, hazard reports clustered at hotspots), with
   ``--telemetry`` records on ``fleet.telemetry`` too in the ``passes`` mode (the app reads
   telemetry for cars passing a hazard when ``clear_after_passes`` > 0). Then one
   ``fleetlink app run hazards`` process starts and the time from its consumer group's
   assignment until the group has committed to the end of its inputs (and of its repartition
   topic) gives records/s. Mode ``no-passes`` sets ``clear_after_passes = 0`` (events only).
   Baseline in the same run: a plain confluent-kafka consumer reads the same records to the end
   and decodes every value (msgspec JSON).
   The records are pre-filled with event times of the fill, and the app's ticks bring its clock
   to wall time: ``apps.grace_s`` is raised to 3600 s for this part, so every report counts (as
   it would live) instead of being dropped as late.

2. Latency (``--hazards`` per run): the gateway (``fleetlink gateway``: 1 worker, whose warnings
   thread publishes hazards), the hazards app and ``--vehicles`` simulated cars (``fleetlink
   simulate --mode kinematic``, telemetry every ``--interval`` s, their own events) run in the
   background. For each hazard, at a spot of its own far from the simulated fleet, K-1 cars (MQTT
   clients with car certificates) publish a harsh braking event, and ``--report-gap`` s later the
   K-th car publishes its own; latency runs from that K-th publish to the warning arriving at an
   approaching car (a client with a car certificate subscribed to ``geo/{cell}/warnings/+`` of
   the cells around the spot, as the agent does). Hazards start every ``--hazard-gap`` s (open
   loop). Baseline in the same run, interleaved with the hazards: bare MQTT publish -> receive
   (QoS 1) from a publisher to the same subscriber on the same broker. ``--latency-variants``
   runs the same app with other ``apps.poll_timeout_s`` values (``poll-1.0``: Quix's default).

Apps settings: ``--commit-interval`` (1 s) and ``--tick-interval`` (0.25 s), the defaults.

    .venv/bin/python bench/stream_apps.py --events 30000 --telemetry 15000 --hazards 30 \\
        --vehicles 1000 --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from _common import cpu_seconds, exit_cleanly_on_sigterm, percentile
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.table import Table

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.mqtt.wire import disable_nagle
from fleetlink.adapters.runner import stop_children
from fleetlink.adapters.supervisor import Supervisor
from fleetlink.apps.runtime.metrics import app_group, assigned_members
from fleetlink.cli.gateway import ensure_worker_identities, worker_argv
from fleetlink.contracts import headers as h
from fleetlink.contracts import vss
from fleetlink.contracts.codec import encode
from fleetlink.contracts.geo import cell_of, warning_cells
from fleetlink.contracts.hazards import RULE_OF_GROUP, Hazard, HazardGroup
from fleetlink.contracts.models import Event, EventKind, Telemetry
from fleetlink.contracts.topics import KafkaTopic, MqttTopic
from fleetlink.security.pki import Role
from fleetlink.settings import Settings, dump_toml, load_settings
from fleetlink.sim.flood import vins_for
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import free_port_block, stack_on_free_ports
from fleetlink.testing.isolated import RUNNING_TOPICS, isolated_gateway_settings

console = Console(width=120)
ROOT = Path(__file__).resolve().parents[1]
APP = "hazards"
PARTITIONS = 6
APP_TOPICS = (
    KafkaTopic.EVENTS,
    KafkaTopic.TELEMETRY,
    KafkaTopic.TICKS,
    KafkaTopic.DLQ,
    KafkaTopic.HAZARDS,
)

# the event mix (weights): two thirds kinds the app drops after decoding and deduplicating
EVENT_MIX: dict[EventKind, float] = {
    EventKind.PARKING_GAP: 35,
    EventKind.DTC: 15,
    EventKind.HARSH_ACCELERATION: 10,
    EventKind.TRUNK_RELOCKED: 5,
    EventKind.HARSH_BRAKING: 20,
    EventKind.ABS_ACTIVATION: 5,
    EventKind.ESC_ACTIVATION: 3,
    EventKind.HAZARD_LIGHTS: 6,
    EventKind.CRASH: 0.1,
}
HAZARD_KINDS = {
    EventKind.HARSH_BRAKING,
    EventKind.ABS_ACTIVATION,
    EventKind.ESC_ACTIVATION,
    EventKind.HAZARD_LIGHTS,
    EventKind.CRASH,
}
AREA = ((52.35, 52.65), (13.10, 13.75))  # greater Berlin: where the pre-filled cars are
# hazard spots of the latency part: a grid east of it, far from the simulated fleet (52.51, 13.38)
SPOT_ORIGIN = (52.60, 13.62)
SPOT_STEP_DEG = 0.02  # about 1.4 km (east) and 2.2 km (north) between spots: distinct cells


@dataclass
class Throughput:
    mode: str  # "passes" (events + telemetry) or "no-passes" (events only)
    run: int
    events: int
    telemetry: int
    records: int  # what the app reads from the vehicle topics
    fill_s: float
    app_startup_s: float  # process start to the group's assignment
    app_s: float  # assignment to everything committed
    app_rate: float  # records / app_s
    app_cpu_s: float
    app_us_per_record: float  # CPU of the app process per record
    baseline_s: float
    baseline_rate: float
    baseline_cpu_s: float
    baseline_us_per_record: float
    ratio: float  # app_rate / baseline_rate
    app_counters: dict[str, float] = field(default_factory=dict)


@dataclass
class Latency:
    variant: str  # "default", or "poll-S": the same app with apps.poll_timeout_s = S
    run: int
    hazards: int
    warned: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mqtt_sent: int
    mqtt_received: int
    mqtt_p50_ms: float
    mqtt_p90_ms: float
    mqtt_p99_ms: float
    mqtt_max_ms: float
    cpu_by_process: dict[str, float]
    legs_p50_ms: dict[str, float]  # gateway (publish -> fleet.events), app, warning
    legs_p99_ms: dict[str, float]
    hazard_ms: list[float]
    mqtt_ms: list[float]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rounded(value: float, digits: int = 1) -> float:
    return round(value, digits)


# --- throughput: pre-filling ---------------------------------------------------------------------


class Filler:
    """Writes events and telemetry as the gateway does (key VIN, provenance headers)."""

    def __init__(self, seed: int, vehicles: int = 5000, hotspots: int = 400) -> None:
        self.rng = random.Random(seed)
        self.vins = vins_for(vehicles, "TPB")
        self.hotspots = [self._anywhere() for _ in range(hotspots)]
        self.kinds = list(EVENT_MIX)
        self.weights = list(EVENT_MIX.values())
        self.seq: dict[str, int] = {}

    def _anywhere(self) -> tuple[float, float]:
        (lat0, lat1), (lon0, lon1) = AREA
        return self.rng.uniform(lat0, lat1), self.rng.uniform(lon0, lon1)

    def _near_hotspot(self, metres: float) -> tuple[float, float]:
        lat, lon = self.rng.choice(self.hotspots)
        jitter = metres / 111_320
        return lat + self.rng.uniform(-jitter, jitter), lon + self.rng.uniform(-jitter, jitter)

    def _next_seq(self, vin: str) -> int:
        self.seq[vin] = self.seq.get(vin, 0) + 1
        return self.seq[vin]

    def _data(self, kind: EventKind) -> dict[str, Any]:
        rng = self.rng
        if kind is EventKind.PARKING_GAP:
            return {"length_m": round(rng.uniform(4.5, 9.0), 1), "side": rng.choice("lr")}
        if kind is EventKind.DTC:
            return {"code": rng.choice(("P0300", "P0420", "C0035", "B1000")), "status": "raised"}
        if kind in (EventKind.HARSH_BRAKING, EventKind.HARSH_ACCELERATION):
            return {"deceleration_ms2": round(rng.uniform(4.0, 9.5), 2)}
        if kind is EventKind.CRASH:
            return {"severity": "minor"}
        return {}

    def events(self, producer: Producer, topic: str, count: int) -> None:
        rng = self.rng
        for kinds in chunks(rng.choices(self.kinds, self.weights, k=count), 10_000):
            for kind in kinds:
                vin = rng.choice(self.vins)
                ts = now_ms()
                seq = self._next_seq(vin)
                hazardous = kind in HAZARD_KINDS
                where = self._near_hotspot(30) if hazardous and rng.random() < 0.7 else None
                lat, lon = where or self._anywhere()
                standing = kind is EventKind.HAZARD_LIGHTS and rng.random() < 0.5
                event = Event(
                    ts=ts,
                    seq=seq,
                    data=self._data(kind),
                    latitude=round(lat, 6),
                    longitude=round(lon, 6),
                    heading_deg=round(rng.uniform(0, 359.9), 1),
                    speed_kmh=0.0 if standing else round(rng.uniform(10, 110), 1),
                )
                self._produce(
                    producer, topic, vin, encode(event), seq, ts, MqttTopic.event(vin, kind)
                )
            producer.flush(60)

    def telemetry(self, producer: Producer, topic: str, count: int) -> None:
        rng = self.rng
        for batch in chunks(list(range(count)), 10_000):
            for _ in batch:
                vin = rng.choice(self.vins)
                ts = now_ms()
                seq = self._next_seq(vin)
                lat, lon = self._near_hotspot(40) if rng.random() < 0.3 else self._anywhere()
                telemetry = Telemetry(
                    ts=ts,
                    seq=seq,
                    signals={
                        vss.LATITUDE: round(lat, 6),
                        vss.LONGITUDE: round(lon, 6),
                        vss.SPEED: round(rng.choice((0.0, rng.uniform(5, 120))), 1),
                        vss.HEADING: round(rng.uniform(0, 359.9), 1),
                        vss.ODOMETER: round(rng.uniform(1000, 90000), 1),
                        vss.BATTERY_STATE_OF_CHARGE: round(rng.uniform(10, 95), 1),
                        vss.AMBIENT_TEMPERATURE: round(rng.uniform(-5, 25), 1),
                        vss.TIRE_PRESSURE_FRONT_LEFT: round(rng.uniform(220, 250), 0),
                    },
                )
                self._produce(
                    producer, topic, vin, encode(telemetry), seq, ts, MqttTopic.telemetry(vin)
                )
            producer.flush(60)

    @staticmethod
    def _produce(
        producer: Producer, topic: str, vin: str, value: bytes, seq: int, ts: int, mqtt_topic: str
    ) -> None:
        headers = [
            (h.MESSAGE_ID, f"{vin}-{seq}-{ts}".encode()),
            (h.MQTT_TOPIC, mqtt_topic.encode()),
            (h.EVENT_TIME, str(ts).encode()),
        ]
        while True:
            try:
                producer.produce(topic, value, key=vin.encode(), headers=headers)
                return
            except BufferError:
                producer.poll(0.05)


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- throughput: measuring -----------------------------------------------------------------------


class GroupProgress:
    """How far the app's consumer group has committed (a consumer of its group id that never
    joins it, as the app's own lag probe does)."""

    def __init__(self, kafka: KafkaClients, group: str) -> None:
        self.kafka = kafka
        self.group = group
        self.admin = kafka.admin()
        self.consumer = kafka.consumer(group, extra={"enable.partition.eof": False})

    def assigned(self) -> bool:
        return bool(assigned_members(self.kafka, self.group))

    def partitions(self, topics: list[str]) -> list[TopicPartition]:
        found = []
        for topic in topics:
            metadata = self.consumer.list_topics(topic, timeout=10).topics[topic]
            found += [TopicPartition(topic, p) for p in metadata.partitions]
        return found

    def repartition_topics(self) -> list[str]:
        names = self.admin.list_topics(timeout=10).topics
        return sorted(n for n in names if n.startswith(f"repartition__{self.group}"))

    def committed(self, partitions: list[TopicPartition]) -> dict[tuple[str, int], int]:
        return {
            (tp.topic, tp.partition): max(tp.offset, 0)
            for tp in self.consumer.committed(partitions, timeout=10)
        }

    def high(self, partitions: list[TopicPartition]) -> dict[tuple[str, int], int]:
        return {
            (tp.topic, tp.partition): self.consumer.get_watermark_offsets(
                tp, timeout=10, cached=False
            )[1]
            for tp in partitions
        }

    def close(self) -> None:
        self.consumer.close()


def wait_caught_up(
    progress: GroupProgress,
    sources: list[str],
    expected: int,
    timeout: float,
    alive: Callable[[], bool],
) -> tuple[float, float]:
    """Wait for the assignment, then until the group committed every source record and every
    record the app wrote to its repartition topic(s) meanwhile; returns both moments."""
    deadline = time.monotonic() + timeout

    def check(what: str) -> None:
        if not alive():
            raise SystemExit(f"the app exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")

    while not progress.assigned():
        check("the app's assignment")
        time.sleep(0.1)
    assigned = time.monotonic()
    source_partitions = progress.partitions(sources)
    while sum(progress.committed(source_partitions).values()) < expected:
        check("the app to commit its inputs")
        time.sleep(0.2)
    # every record made from the sources was flushed before their offsets were committed
    repartition = progress.partitions(progress.repartition_topics())
    targets = progress.high(repartition)
    while True:
        committed = progress.committed(repartition)
        if all(committed[key] >= offset for key, offset in targets.items()):
            return assigned, time.monotonic()
        check("the app to commit its repartition topic")
        time.sleep(0.2)


def baseline_read(kafka: KafkaClients, topics: list[str], expected: int) -> tuple[float, float]:
    """A plain consumer of a fresh group reads ``topics`` to the end, decoding every value;
    seconds from its assignment to the last record (and a final commit), CPU-seconds."""
    assigned: list[float] = []
    consumer: Consumer = kafka.consumer(
        f"bench-baseline-{uuid.uuid4().hex[:8]}",
        extra={"auto.offset.reset": "earliest", "enable.auto.commit": True},
    )
    consumer.subscribe(topics, on_assign=lambda *_: assigned.append(time.monotonic()))
    cpu_before = cpu_seconds([os.getpid()])
    count = 0
    decode = msgspec.json.decode
    deadline = time.monotonic() + 600
    try:
        while count < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is None:
                    decode(message.value() or b"null")
                    count += 1
        consumer.commit(asynchronous=False)
        finished = time.monotonic()
    finally:
        consumer.close()
    if count < expected:
        raise SystemExit(f"the baseline read only {count} of {expected} records")
    return finished - assigned[0], cpu_seconds([os.getpid()]) - cpu_before


def scrape_app(port: int) -> dict[str, float]:
    """The app's counters (processed, late, duplicates, outputs, dead letters) by label."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("fleetlink_app_") and "_total" in line:
            name, _, value = line.rpartition(" ")
            found[name.replace("fleetlink_app_", "").replace('app="hazards",', "")] = float(value)
    return found


def throughput_run(
    base: Settings,
    workdir: Path,
    mode: str,
    run: int,
    args: argparse.Namespace,
    children: list[subprocess.Popen[bytes]],
) -> Throughput:
    """One app instance over a freshly filled topic set, then the baseline over the same."""
    run_id = f"tp{run}{mode[:2]}{uuid.uuid4().hex[:6]}"
    metrics_port = free_port_block(1)
    apps = base.apps.model_copy(
        update={
            "state_dir": workdir / run_id,
            "grace_s": 3600.0,
            "metrics_port": metrics_port,
            "hazards": base.apps.hazards.model_copy(
                update={"clear_after_passes": 3 if mode == "passes" else 0}
            ),
        }
    )
    topics = base.topics.model_copy(update={"prefix": base.topic_map().prefixed(run_id).prefix})
    settings = base.model_copy(update={"apps": apps, "topics": topics})
    config = workdir / f"{run_id}.toml"
    config.write_text(dump_toml(settings))
    kafka = KafkaClients.of(settings)
    ensure_topics(kafka, settings.topic_map(), partitions=PARTITIONS, only=APP_TOPICS)
    names = settings.topic_map()
    telemetry = args.telemetry if mode == "passes" else 0
    started = time.monotonic()
    filler = Filler(seed=run)
    producer = kafka.producer(linger_ms=20)
    filler.events(producer, names[KafkaTopic.EVENTS], args.events)
    sources = [names[KafkaTopic.EVENTS]]
    if telemetry:
        filler.telemetry(producer, names[KafkaTopic.TELEMETRY], telemetry)
        sources.append(names[KafkaTopic.TELEMETRY])
    fill_s = time.monotonic() - started
    records = args.events + telemetry
    group = app_group(settings, APP)
    progress = GroupProgress(kafka, group)
    log = (workdir / f"{run_id}.log").open("ab")
    argv = [sys.executable, "-m", "fleetlink", "--config", str(config), "app", "run", APP]
    launched = time.monotonic()
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    children.append(process)
    try:
        assigned, done = wait_caught_up(
            progress, sources, records, 900, lambda: process.poll() is None
        )
        app_cpu = cpu_seconds([process.pid])
        counters = scrape_app(metrics_port)
    except SystemExit:
        console.print((workdir / f"{run_id}.log").read_text()[-3000:])
        raise
    finally:
        stop_children([process], timeout=20)
        children.remove(process)
        log.close()
        progress.close()
    if process.returncode not in (0, -15, 143):
        console.print(f"[yellow]the app exited with {process.returncode} (see {log.name})")
    baseline_s, baseline_cpu = baseline_read(kafka, sources, records)
    delete_run_topics(kafka, run_id)
    app_s = done - assigned
    result = Throughput(
        mode=mode,
        run=run,
        events=args.events,
        telemetry=telemetry,
        records=records,
        fill_s=rounded(fill_s),
        app_startup_s=rounded(assigned - launched, 2),
        app_s=rounded(app_s, 2),
        app_rate=rounded(records / app_s),
        app_cpu_s=rounded(app_cpu, 2),
        app_us_per_record=rounded(app_cpu / records * 1e6),
        baseline_s=rounded(baseline_s, 2),
        baseline_rate=rounded(records / baseline_s),
        baseline_cpu_s=rounded(baseline_cpu, 2),
        baseline_us_per_record=rounded(baseline_cpu / records * 1e6),
        ratio=round(baseline_s and (records / app_s) / (records / baseline_s), 4),
        app_counters=counters,
    )
    console.print(result)
    return result


def delete_run_topics(kafka: KafkaClients, run_id: str) -> None:
    admin = kafka.admin()
    names = [n for n in admin.list_topics(timeout=10).topics if run_id in n]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            with contextlib.suppress(KafkaException):
                future.result(60)


# --- latency -------------------------------------------------------------------------------------


class MqttClient:
    """A paho MQTT 5 client over mutual TLS as one identity (a car or a service)."""

    def __init__(self, settings: Settings, identity: str) -> None:
        self.received: list[tuple[str, bytes, float]] = []  # topic, payload, monotonic time
        self._subscribed = threading.Event()
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=identity, protocol=mqtt.MQTTv5
        )
        self.client.tls_set_context(LocalStack(settings.stack).pki.client_tls(identity))
        self.client.on_connect = lambda *_: self._connected.set()
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.max_inflight_messages_set(1000)
        self.client.connect(*settings.mqtt_address(), keepalive=30)
        disable_nagle(self.client.socket())
        self.client.loop_start()
        if not self._connected.wait(15):
            raise SystemExit(f"{identity}: no CONNACK")

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        with self._lock:
            self.received.append((message.topic, message.payload, now))

    def subscribe(self, filters: list[str]) -> None:
        self._subscribed.clear()
        self.client.subscribe([(f, 1) for f in filters])
        if not self._subscribed.wait(15):
            raise SystemExit("no SUBACK")

    def unsubscribe(self, filters: list[str]) -> None:
        self.client.unsubscribe(filters)

    def take(self) -> list[tuple[str, bytes, float]]:
        with self._lock:
            taken, self.received = self.received, []
        return taken

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def spot(row: int, index: int) -> tuple[float, float]:
    return SPOT_ORIGIN[0] + row * SPOT_STEP_DEG, SPOT_ORIGIN[1] + index * SPOT_STEP_DEG


def braking_event(seq: int, where: tuple[float, float], rng: random.Random) -> bytes:
    """A car's harsh braking report a few metres from the spot, heading east."""
    jitter = 8 / 111_320
    return encode(
        Event(
            ts=now_ms(),
            seq=seq,
            data={"deceleration_ms2": round(rng.uniform(6.5, 9.0), 2)},
            latitude=round(where[0] + rng.uniform(-jitter, jitter), 6),
            longitude=round(where[1] + rng.uniform(-jitter, jitter), 6),
            heading_deg=round(rng.uniform(80, 100), 1),
            speed_kmh=round(rng.uniform(30, 50), 1),
        )
    )


def hazard_round(
    row: int,
    count: int,
    args: argparse.Namespace,
    k: int,
    cars: list[MqttClient],
    car_vins: list[str],
    watcher: MqttClient,
    warner: MqttClient,
    seqs: dict[str, int],
) -> tuple[list[float], list[float], list[dict[str, Any]]]:
    """``count`` hazards in row ``row`` of spots, open loop, with the bare MQTT baseline
    interleaved; the latencies (ms) of both, for the hazards that were warned in time."""
    spots = [spot(row, i) for i in range(count)]
    if len({cell_of(*s) for s in spots}) != count:
        raise SystemExit("two hazard spots share a cell")
    filters = sorted({MqttTopic.geo_warnings_filter(c) for s in spots for c in warning_cells(*s)})
    watcher.subscribe(filters)
    time.sleep(0.5)
    watcher.take()  # nothing should be retained here; drop it if it is
    rng = random.Random(row)
    actions: list[tuple[float, int, str]] = []
    for i in range(count):
        due = i * args.hazard_gap
        actions += [(due, i, "first"), (due + args.report_gap / 2, i, "mqtt")]
        actions.append((due + args.report_gap, i, "last"))
    actions.sort()
    confirming: dict[int, float] = {}
    steps: dict[int, dict[str, Any]] = {}  # wall-clock ms of each step, for the legs
    mqtt_sent: dict[str, float] = {}
    start = time.monotonic() + 0.2
    for due, i, what in actions:
        delay = start + due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        group = [(i * k + j) % len(cars) for j in range(k)]
        if what == "first":
            for j in group[:-1]:
                publish_report(cars[j], car_vins[j], spots[i], seqs, rng)
        elif what == "last":
            confirming[i] = time.monotonic()
            vin = car_vins[group[-1]]
            publish_report(cars[group[-1]], vin, spots[i], seqs, rng)
            steps[i] = {"vin": vin, "seq": seqs[vin], "published": time.time() * 1000}
        else:
            marker = f"bench-{row}-{i}"
            mqtt_sent[marker] = time.monotonic()
            warner.publish(MqttTopic.geo_warning(cell_of(*spots[i]), marker), b'{"bench": 1}')
    deadline = time.monotonic() + args.wait
    warned: dict[int, float] = {}
    mqtt_received: dict[str, float] = {}
    while time.monotonic() < deadline and (len(warned) < count or len(mqtt_received) < count):
        for topic, payload, at in watcher.take():
            marker = topic.rsplit("/", 1)[-1]
            if marker in mqtt_sent:
                mqtt_received.setdefault(marker, at)
                continue
            if not payload:
                continue  # a withdrawn warning
            hazard = msgspec.json.decode(payload, type=Hazard)
            if hazard.group is not HazardGroup.EMERGENCY_BRAKE:
                continue
            index = nearest_spot(spots, hazard.latitude, hazard.longitude)
            if index is not None and index not in warned:
                warned[index] = at
                wall = time.time() * 1000 - (time.monotonic() - at) * 1000
                steps[index] |= {"warned": wall, "hazard_id": hazard.hazard_id}
        time.sleep(0.05)
    watcher.unsubscribe(filters)
    hazard_ms = [(warned[i] - confirming[i]) * 1000 for i in sorted(warned)]
    mqtt_ms = [(mqtt_received[m] - mqtt_sent[m]) * 1000 for m in sorted(mqtt_received)]
    return hazard_ms, mqtt_ms, [steps[i] for i in sorted(steps)]


def append_time(kafka: KafkaClients, topics: list[str]) -> None:
    """Kafka stamps these topics' records when it appends them (the legs' clock): the gateway
    and the app set event times of their own."""
    entry = ConfigEntry(
        "message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET
    )
    resources = [
        ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry]) for topic in topics
    ]
    admin = kafka.admin()  # held: a collected client cancels its futures
    for future in admin.incremental_alter_configs(resources).values():
        future.result(30)


def add_legs(settings: Settings, steps: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Where the time went, per hazard (ms, from the Kafka append times, all on one clock):
    publish -> the event in ``fleet.events`` (gateway), -> the hazard in ``fleet.hazards``
    (app), -> the warning at the car (the gateway's warnings thread, MQTT)."""
    kafka = KafkaClients.of(settings)
    names = settings.topic_map()
    wanted = {(s["vin"], s["seq"]): s for s in steps}
    for record in read_topic(kafka, names[KafkaTopic.EVENTS]):
        vin = (record.key() or b"").decode()
        if any(key[0] == vin for key in wanted):
            seq = msgspec.json.decode(record.value() or b"{}").get("seq")
            if (vin, seq) in wanted:
                wanted[(vin, seq)]["in_events"] = record.timestamp()[1]
    by_id = {s.get("hazard_id"): s for s in steps}
    for record in read_topic(kafka, names[KafkaTopic.HAZARDS]):
        hazard = msgspec.json.decode(record.value() or b"{}")
        step = by_id.get(hazard.get("hazard_id"))
        if step is not None and hazard.get("state") == "confirmed":
            step["in_hazards"] = record.timestamp()[1]
    legs: dict[str, list[float]] = {"gateway": [], "app": [], "warning": []}
    for step in steps:
        if {"in_events", "in_hazards", "warned"} <= step.keys():
            legs["gateway"].append(rounded(step["in_events"] - step["published"]))
            legs["app"].append(rounded(step["in_hazards"] - step["in_events"]))
            legs["warning"].append(rounded(step["warned"] - step["in_hazards"]))
    return legs


def publish_report(
    car: MqttClient,
    vin: str,
    where: tuple[float, float],
    seqs: dict[str, int],
    rng: random.Random,
) -> None:
    seqs[vin] = seqs.get(vin, 0) + 1
    payload = braking_event(seqs[vin], where, rng)
    car.publish(MqttTopic.event(vin, EventKind.HARSH_BRAKING), payload)


def nearest_spot(spots: list[tuple[float, float]], lat: float, lon: float) -> int | None:
    best = min(range(len(spots)), key=lambda i: abs(spots[i][0] - lat) + abs(spots[i][1] - lon))
    close = abs(spots[best][0] - lat) + abs(spots[best][1] - lon) < SPOT_STEP_DEG / 4
    return best if close else None


def wait_for_fleet(watcher: MqttClient, expected: int, timeout: float) -> int:
    """Until Mosquitto counts ``expected`` connected clients ($SYS, every 2 s)."""
    watcher.subscribe(["$SYS/broker/clients/connected"])
    deadline = time.monotonic() + timeout
    connected = 0
    while time.monotonic() < deadline and connected < expected:
        for _topic, payload, _at in watcher.take():
            connected = int(payload or b"0")
        console.print(f"connected: {connected:,} of {expected:,}", end="\r")
        time.sleep(0.5)
    console.print()
    watcher.unsubscribe(["$SYS/broker/clients/connected"])
    time.sleep(0.3)
    watcher.take()
    return connected


def latency_part(
    base: Settings,
    workdir: Path,
    args: argparse.Namespace,
    children: list[subprocess.Popen[bytes]],
    supervisors: list[Supervisor],
) -> list[Latency]:
    run_id = f"lat{uuid.uuid4().hex[:6]}"
    settings = isolated_gateway_settings(base, run_id, workers=1)
    settings = settings.model_copy(
        update={"apps": base.apps.model_copy(update={"state_dir": workdir / run_id})}
    )
    config = workdir / f"{run_id}.toml"
    config.write_text(dump_toml(settings))
    stack = LocalStack(settings.stack)
    kafka = KafkaClients.of(settings)
    ensure_topics(
        kafka,
        settings.topic_map(),
        partitions=PARTITIONS,
        only=tuple(dict.fromkeys((*RUNNING_TOPICS, *APP_TOPICS))),
    )
    append_time(kafka, settings.topic_map().names((KafkaTopic.EVENTS, KafkaTopic.HAZARDS)))
    ensure_worker_identities(settings, range(1))
    supervisor = Supervisor.of_workers(
        lambda index: worker_argv(config, index, drain_on_exit=True),
        1,
        backoff_s=0.5,
        stop_timeout_s=30,
        log=logging.getLogger("bench"),
    )
    supervisors.append(supervisor)
    roles: dict[str, list[int]] = {"bench": [os.getpid()]}
    group = app_group(settings, APP)

    def child(role: str, *argv: str, config: Path = config) -> subprocess.Popen[bytes]:
        log = (workdir / f"{run_id}-{role}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "fleetlink", "--config", str(config), *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        children.append(process)
        roles[role] = [*roles.get(role, []), process.pid]
        return process

    k = RULE_OF_GROUP[HazardGroup.EMERGENCY_BRAKE].k
    car_vins = vins_for(3 * k, "HZC")
    watcher_vin = vins_for(1, "HZW")[0]
    stack.pki.ensure([*car_vins, watcher_vin], Role.VEHICLE)
    stack.access.ensure_services(["bench-warner"], Role.GATEWAY)
    stack.access.ensure_services(["bench-monitor"], Role.MONITOR)
    with console.status("starting the gateway and the simulated fleet"):
        supervisor.start()
        per_process = args.vehicles // args.simulators
        for index in range(args.simulators):
            child(
                "simulate", "simulate", "--quiet", "--mode", "kinematic",
                "--vehicles", str(per_process), "--interval", str(args.interval),
                "--duration", "100000", "--seed", str(index + 1),
                "--vin-prefix", f"BS{'ABCDEFGH'[index]}", "--connect-rate", "500",
            )  # fmt: skip
        monitor = MqttClient(settings, "bench-monitor")
        connected = wait_for_fleet(monitor, per_process * args.simulators, timeout=120)
        monitor.close()
    console.print(f"{connected:,} MQTT clients connected")
    roles["gateway"] = [handle.pid for handle in supervisor.handles if handle.pid]
    state = stack.state()
    for process in state.processes if state else []:
        roles["kafka" if process.name.startswith("kafka") else process.name] = [process.pid]
    cars = [MqttClient(settings, vin) for vin in car_vins]
    watcher = MqttClient(settings, watcher_vin)
    warner = MqttClient(settings, "bench-warner")
    seqs: dict[str, int] = {}
    results: list[Latency] = []
    row = 0
    try:
        for variant in args.latency_variants.split(","):
            # "default", or "poll-S": the app with apps.poll_timeout_s = S
            variant_config = config
            if variant != "default":
                poll = float(variant.removeprefix("poll-"))
                apps = settings.apps.model_copy(update={"poll_timeout_s": poll})
                variant_config = workdir / f"{run_id}-{variant}.toml"
                variant_config.write_text(dump_toml(settings.model_copy(update={"apps": apps})))
            with console.status(f"starting the hazards app ({variant})"):
                app = child("app", "app", "run", APP, config=variant_config)
                progress = GroupProgress(kafka, group)
                deadline = time.monotonic() + 120
                while not progress.assigned() and time.monotonic() < deadline:
                    time.sleep(0.3)
                progress.close()
            with console.status(f"warming up for {args.warmup:.0f} s"):
                time.sleep(args.warmup)
                hazard_round(row, 5, args, k, cars, car_vins, watcher, warner, seqs)  # unmeasured
                row += 1
            if app.poll() is not None:
                console.print((workdir / f"{run_id}-app.log").read_text()[-3000:])
                raise SystemExit(f"the hazards app ({variant}) exited with {app.returncode}")
            for run in range(args.repeat):
                before = {role: cpu_seconds(pids) for role, pids in roles.items()}
                with console.status(f"latency run {run + 1} ({variant}): {args.hazards} hazards"):
                    hazard_ms, mqtt_ms, steps = hazard_round(
                        row, args.hazards, args, k, cars, car_vins, watcher, warner, seqs
                    )
                row += 1
                cpu = {role: cpu_seconds(pids) - before[role] for role, pids in roles.items()}
                results.append(
                    latency_result(variant, run, args, hazard_ms, mqtt_ms, cpu, settings, steps)
                )
            stop_children([app], timeout=20)
            children.remove(app)
            roles["app"] = []
    finally:
        for client in (*cars, watcher, warner):
            client.close()
    return results


def latency_result(
    variant: str,
    run: int,
    args: argparse.Namespace,
    hazard_ms: list[float],
    mqtt_ms: list[float],
    cpu: dict[str, float],
    settings: Settings,
    steps: list[dict[str, Any]],
) -> Latency:
    legs = add_legs(settings, steps)
    result = Latency(
        variant=variant,
        run=run,
        hazards=args.hazards,
        warned=len(hazard_ms),
        p50_ms=rounded(percentile(hazard_ms, 0.5)),
        p90_ms=rounded(percentile(hazard_ms, 0.9)),
        p99_ms=rounded(percentile(hazard_ms, 0.99)),
        max_ms=rounded(max(hazard_ms, default=float("nan"))),
        mqtt_sent=args.hazards,
        mqtt_received=len(mqtt_ms),
        mqtt_p50_ms=rounded(percentile(mqtt_ms, 0.5)),
        mqtt_p90_ms=rounded(percentile(mqtt_ms, 0.9)),
        mqtt_p99_ms=rounded(percentile(mqtt_ms, 0.99)),
        mqtt_max_ms=rounded(max(mqtt_ms, default=float("nan"))),
        cpu_by_process={role: rounded(v) for role, v in cpu.items()},
        legs_p50_ms={leg: rounded(percentile(v, 0.5)) for leg, v in legs.items()},
        legs_p99_ms={leg: rounded(percentile(v, 0.99)) for leg, v in legs.items()},
        hazard_ms=[rounded(v) for v in hazard_ms],
        mqtt_ms=[rounded(v, 2) for v in mqtt_ms],
    )
    console.print(
        f"{variant} run {run + 1}: {result.warned}/{result.hazards} warned, hazard p50/p99 "
        f"{result.p50_ms}/{result.p99_ms} ms (legs p50 {result.legs_p50_ms}, p99 "
        f"{result.legs_p99_ms}); bare MQTT p50/p99 {result.mqtt_p50_ms}/{result.mqtt_p99_ms} "
        f"ms ({result.mqtt_received}/{result.mqtt_sent}); CPU-s {result.cpu_by_process}"
    )
    return result


# --- report --------------------------------------------------------------------------------------


def median_throughput(results: list[Throughput]) -> list[dict[str, Any]]:
    medians = []
    for mode in dict.fromkeys(r.mode for r in results):
        runs = [asdict(r) for r in results if r.mode == mode]
        row: dict[str, Any] = {"mode": mode, "runs": len(runs)}
        for name, value in runs[0].items():
            if isinstance(value, int | float) and name != "run":
                row[name] = statistics.median(run[name] for run in runs)
        medians.append(row)
    return medians


def median_latency(results: list[Latency]) -> list[dict[str, Any]]:
    """Per variant, the medians over its runs (and percentiles of all its runs pooled)."""
    variants = dict.fromkeys(r.variant for r in results)
    return [median_variant([r for r in results if r.variant == v]) for v in variants]


def median_variant(results: list[Latency]) -> dict[str, Any]:
    rows = [asdict(r) for r in results]
    names = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mqtt_p50_ms", "mqtt_p90_ms")
    names += ("mqtt_p99_ms", "mqtt_max_ms")
    medians: dict[str, Any] = {name: statistics.median(row[name] for row in rows) for name in names}
    pooled = [v for r in results for v in r.hazard_ms]
    pooled_mqtt = [v for r in results for v in r.mqtt_ms]
    medians |= {
        "variant": results[0].variant,
        "runs": len(results),
        "hazards": sum(r.hazards for r in results),
        "warned": sum(r.warned for r in results),
        "mqtt_sent": sum(r.mqtt_sent for r in results),
        "mqtt_received": sum(r.mqtt_received for r in results),
        "pooled_p50_ms": rounded(percentile(pooled, 0.5)),
        "pooled_p99_ms": rounded(percentile(pooled, 0.99)),
        "pooled_mqtt_p50_ms": rounded(percentile(pooled_mqtt, 0.5)),
        "pooled_mqtt_p99_ms": rounded(percentile(pooled_mqtt, 0.99)),
        "legs_p50_ms": {
            leg: statistics.median(r.legs_p50_ms[leg] for r in results)
            for leg in results[0].legs_p50_ms
        },
        "legs_p99_ms": {
            leg: statistics.median(r.legs_p99_ms[leg] for r in results)
            for leg in results[0].legs_p99_ms
        },
        "cpu_by_process": {
            role: rounded(statistics.median(r.cpu_by_process.get(role, 0.0) for r in results))
            for role in results[0].cpu_by_process
        },
    }
    return medians


def show(
    throughput: list[dict[str, Any]], latency: list[dict[str, Any]], meta: dict[str, Any]
) -> None:
    if throughput:
        table = Table(
            title=f"hazards app throughput, medians, {meta['cpus']} cores, {meta['date']}"
        )
        columns = ("mode", "runs", "records", "app_rate", "baseline_rate", "ratio")
        columns += ("app_us_per_record", "baseline_us_per_record", "app_s", "app_startup_s")
        for column in columns:
            table.add_column(column, justify="right")
        for row in throughput:
            table.add_row(
                *(f"{row[c]:,.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns)
            )
        console.print(table)
    if latency:
        table = Table(title="hazard latency (K-th report published -> warning at a car), medians")
        for column in ("path", "p50 ms", "p90 ms", "p99 ms", "max ms", "received"):
            table.add_column(column, justify="right")
        for row in latency:
            table.add_row(
                f"hazard, app {row['variant']}",
                *(str(row[n]) for n in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
                f"{row['warned']} / {row['hazards']}",
            )
            table.add_row(
                "  bare MQTT (QoS 1), same runs",
                *(
                    str(row[n])
                    for n in ("mqtt_p50_ms", "mqtt_p90_ms", "mqtt_p99_ms", "mqtt_max_ms")
                ),
                f"{row['mqtt_received']} / {row['mqtt_sent']}",
            )
        console.print(table)
        for row in latency:
            console.print(
                f"{row['variant']}: pooled hazard p50/p99 {row['pooled_p50_ms']}/"
                f"{row['pooled_p99_ms']} ms, bare MQTT {row['pooled_mqtt_p50_ms']}/"
                f"{row['pooled_mqtt_p99_ms']} ms; legs p50 {row['legs_p50_ms']} p99 "
                f"{row['legs_p99_ms']}; CPU-s per run {row['cpu_by_process']}"
            )


def plot(
    throughput: list[dict[str, Any]],
    latency_runs: list[Latency],
    path: Path,
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    if throughput:
        modes = [row["mode"] for row in throughput]
        x = range(len(modes))
        axes[0].bar([i - 0.2 for i in x], [r["baseline_rate"] for r in throughput], 0.4,
                    label="plain consumer + JSON decode (baseline)")  # fmt: skip
        axes[0].bar([i + 0.2 for i in x], [r["app_rate"] for r in throughput], 0.4,
                    label="hazards app, 1 instance")  # fmt: skip
        for i, row in enumerate(throughput):
            label = f"{row['ratio']:.2%} of baseline"
            axes[0].annotate(label, (i + 0.2, row["app_rate"]), ha="center", va="bottom")
        axes[0].set_xticks(list(x), modes)
        axes[0].set_yscale("log")
        axes[0].set_ylabel("records/s at saturation (median)")
        axes[0].legend(fontsize=8)
        axes[0].set_title("throughput per instance")
    if latency_runs:
        curves = [(sorted(v for r in latency_runs for v in r.mqtt_ms), "bare MQTT (QoS 1)")]
        for variant in dict.fromkeys(r.variant for r in latency_runs):
            values = sorted(v for r in latency_runs if r.variant == variant for v in r.hazard_ms)
            curves.append((values, f"hazard warning, app {variant}"))
        for values, label in curves:
            if values:
                axes[1].plot(
                    values, [(i + 1) / len(values) for i in range(len(values))], label=label
                )
        axes[1].axvline(1000, color="grey", linestyle="--", label="goal p99 1 s")
        axes[1].axvline(500, color="grey", linestyle=":", label="aim 500 ms")
        axes[1].set_xscale("log")
        axes[1].set_xlabel("ms from the K-th car's publish (all runs pooled)")
        axes[1].set_ylabel("share of hazards")
        axes[1].legend(fontsize=7, loc="lower right")
        axes[1].set_title("latency, CDF")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--parts", default="throughput,latency")
    parser.add_argument("--events", type=int, default=30_000, help="events per throughput run")
    parser.add_argument(
        "--telemetry", type=int, default=15_000, help="telemetry records per 'passes' run"
    )
    parser.add_argument("--modes", default="passes,no-passes", help="throughput modes")
    parser.add_argument("--hazards", type=int, default=30, help="hazards per latency run")
    parser.add_argument("--hazard-gap", type=float, default=1.0, help="s between hazards")
    parser.add_argument(
        "--report-gap", type=float, default=1.0, help="s from the first K-1 reports to the K-th"
    )
    parser.add_argument("--wait", type=float, default=15.0, help="s to wait for late warnings")
    parser.add_argument("--vehicles", type=int, default=1000, help="simulated cars (latency)")
    parser.add_argument("--simulators", type=int, default=1, help="simulator processes")
    parser.add_argument("--interval", type=float, default=5.0, help="telemetry, s per car")
    parser.add_argument("--warmup", type=float, default=10.0, help="s before the latency runs")
    parser.add_argument(
        "--latency-variants",
        default="default,poll-1.0",
        help="the app as shipped; with apps.poll_timeout_s = S (poll-S; 1.0: Quix's default)",
    )
    parser.add_argument("--commit-interval", type=float, default=1.0, help="apps, s")
    parser.add_argument("--tick-interval", type=float, default=0.25, help="apps, s")
    parser.add_argument("--repeat", type=int, default=3, help="runs; medians shown")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "stream-apps.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "BENCHMARKS-stream-apps.png")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    parts = args.parts.split(",")
    modes = args.modes.split(",")
    throughput: list[Throughput] = []
    latency: list[Latency] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fleetlink-apps-") as tmp:
        workdir = Path(tmp)
        settings = load_settings(
            stack=stack_on_free_ports(workdir / "stack") | {"kafka_heap_mb": 1024},
            gateway={"metrics_port": 0},
            apps={
                "state_dir": workdir / "apps",
                "commit_interval_s": args.commit_interval,
                "tick_interval_s": args.tick_interval,
                "metrics_port": 0,
            },
        )
        stack = LocalStack(settings.stack)
        children: list[subprocess.Popen[bytes]] = []
        supervisors: list[Supervisor] = []
        try:
            with console.status("starting the stack"):
                stack.up()
            if "throughput" in parts:
                with console.status("warming Kafka up"):
                    warm_up(settings)
                for run in range(args.repeat):
                    for mode in modes:
                        with console.status(f"throughput run {run + 1}: {mode}"):
                            throughput.append(
                                throughput_run(settings, workdir, mode, run, args, children)
                            )
            if "latency" in parts:
                latency = latency_part(settings, workdir, args, children, supervisors)
        finally:
            stop_children(children)
            for supervisor in supervisors:
                supervisor.stop(drain=True)
            stack.down()
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "minutes": rounded((time.monotonic() - began) / 60),
        "args": {k: str(v) for k, v in vars(args).items()},
        "apps": {
            "commit_interval_s": args.commit_interval,
            "tick_interval_s": args.tick_interval,
            "grace_s": "3600 (throughput), 10 (latency)",
        },
    }
    medians = median_throughput(throughput)
    latency_medians = median_latency(latency)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                **meta,
                "throughput_medians": medians,
                "latency_medians": latency_medians,
                "throughput_runs": [asdict(r) for r in throughput],
                "latency_runs": [asdict(r) for r in latency],
            },
            indent=2,
        )
    )
    show(medians, latency_medians, meta)
    title = f"hazards app, {meta['cpus']} cores, {meta['date']}, medians of {args.repeat}"
    plot(medians, latency, args.plot, title)
    console.print(f"wrote {args.out} and {args.plot} in {meta['minutes']} min")


def warm_up(settings: Settings) -> None:
    """A small fill and read first: Kafka's JIT compiler takes a core in its first minute."""
    run_id = f"warm{uuid.uuid4().hex[:6]}"
    topics = settings.topics.model_copy(
        update={"prefix": settings.topic_map().prefixed(run_id).prefix}
    )
    warm = settings.model_copy(update={"topics": topics})
    kafka = KafkaClients.of(warm)
    ensure_topics(kafka, warm.topic_map(), partitions=PARTITIONS, only=(KafkaTopic.EVENTS,))
    producer = kafka.producer(linger_ms=20)
    Filler(seed=99).events(producer, warm.topic_map()[KafkaTopic.EVENTS], 30_000)
    baseline_read(kafka, [warm.topic_map()[KafkaTopic.EVENTS]], 30_000)
    delete_run_topics(kafka, run_id)


if __name__ == "__main__":
    main()
