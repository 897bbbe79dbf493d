"""The stream-app benchmark's throughput part: pre-filled topics, one app instance, the
time until its group has committed everything; a plain consumer as the baseline."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from _common import cpu_seconds
from _stream_common import (
    APP_OF_MODE,
    APP_TOPICS,
    AREA,
    EVENT_MIX,
    HAZARD_KINDS,
    PARTITIONS,
    Throughput,
    console,
    now_ms,
    rounded,
)
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.runner import stop_children
from fleetlink.apps.registry import metrics_offset
from fleetlink.apps.runtime.metrics import app_group, assigned_members
from fleetlink.contracts import headers as h
from fleetlink.contracts import vss
from fleetlink.contracts.codec import encode
from fleetlink.contracts.geofences import FenceCircle, GeofenceDefinition, GeoJsonPolygon
from fleetlink.contracts.models import Event, EventKind, Telemetry
from fleetlink.contracts.topics import KafkaTopic, MqttTopic
from fleetlink.settings import Settings, dump_toml
from fleetlink.sim.flood import vins_for
from fleetlink.stack.ports import free_port_block

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

    def fences(self, producer: Producer, topic: str, count: int) -> None:
        """Geofences for every car over the area, as an admin draws them: half circles of
        100 m to 2 km, half squares of the same size, a third with a dwell time."""
        rng = self.rng
        for n in range(count):
            lat, lon = self._anywhere()
            size_m = rng.uniform(100, 2000)
            circle = polygon = None
            if n % 2:
                circle = FenceCircle(lat, lon, size_m)
            else:
                dlat = size_m / 111_320
                dlon = dlat / math.cos(math.radians(lat))
                corners = [(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]
                ring = [[lon + x * dlon, lat + y * dlat] for x, y in corners]
                polygon = GeoJsonPolygon("Polygon", [ring])
            fence = GeofenceDefinition(
                fence_id=f"bench-{n}",
                name=f"bench {n}",
                owner="bench",
                created_at=1,
                circle=circle,
                polygon=polygon,
                dwell_s=600.0 if n % 3 == 0 else None,
            )
            producer.produce(topic, encode(fence), fence.fence_id.encode())
        producer.flush(30)

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


def scrape_app(port: int, app: str) -> dict[str, float]:
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
            found[name.replace("fleetlink_app_", "").replace(f'app="{app}",', "")] = float(value)
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
    app = APP_OF_MODE[mode]
    port = free_port_block(1)  # the app's own: apps.metrics_port + its place in the app list
    metrics_port = port - metrics_offset(app)
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
    telemetry = args.telemetry if mode in ("passes", "fleet", "fleet-fences") else 0
    started = time.monotonic()
    filler = Filler(seed=run)
    producer = kafka.producer(linger_ms=20)
    filler.events(producer, names[KafkaTopic.EVENTS], args.events)
    sources = [names[KafkaTopic.EVENTS]]
    if telemetry:
        filler.telemetry(producer, names[KafkaTopic.TELEMETRY], telemetry)
        sources.append(names[KafkaTopic.TELEMETRY])
    if mode == "fleet-fences":
        filler.fences(producer, names[KafkaTopic.GEOFENCES], args.fences)
    fill_s = time.monotonic() - started
    records = args.events + telemetry
    group = app_group(settings, app)
    progress = GroupProgress(kafka, group)
    log = (workdir / f"{run_id}.log").open("ab")
    argv = [sys.executable, "-m", "fleetlink", "--config", str(config), "app", "run", app]
    launched = time.monotonic()
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    children.append(process)
    try:
        assigned, done = wait_caught_up(
            progress, sources, records, 900, lambda: process.poll() is None
        )
        app_cpu = cpu_seconds([process.pid])
        counters = scrape_app(port, app)
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
