"""Run stream apps as real processes on the real Kafka, each test on topics of its own, and
write records as the gateway writes them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import Message, Producer

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.polling import wait_until
from fleetlink.apps.runtime.metrics import app_group, assigned_members
from fleetlink.contracts import headers as h
from fleetlink.contracts.codec import encode
from fleetlink.contracts.fleet import Trip, VehicleState
from fleetlink.contracts.geofences import GeofenceDefinition, GeofenceEvent
from fleetlink.contracts.hazards import Hazard
from fleetlink.contracts.models import Event, Presence, PresenceStatus, Telemetry, Tick
from fleetlink.contracts.parking import ParkingCell
from fleetlink.contracts.topics import KafkaTopic, MqttTopic
from fleetlink.settings import Settings, dump_toml
from fleetlink.settings.apps import AppsSettings


@dataclass
class AppPlatform:
    """Settings (and their file) for apps on topics of one run."""

    config: Path
    settings: Settings

    def topic(self, topic: KafkaTopic) -> str:
        return self.settings.topic_map()[topic]

    @property
    def kafka(self) -> KafkaClients:
        return KafkaClients.of(self.settings)

    def producer(self) -> Producer:
        return self.kafka.producer(linger_ms=0)

    def read(self, topic: KafkaTopic) -> list[Message]:
        return read_topic(self.kafka, self.topic(topic), timeout=30)

    def hazards(self) -> list[Hazard]:
        return [
            msgspec.json.decode(record.value() or b"", type=Hazard)
            for record in self.read(KafkaTopic.HAZARDS)
        ]

    def parking(self) -> dict[str, ParkingCell]:
        """The latest record of each cell of ``fleet.parking`` (what compaction keeps)."""
        latest: dict[str, ParkingCell] = {}
        for record in self.read(KafkaTopic.PARKING):
            cell = msgspec.json.decode(record.value() or b"", type=ParkingCell)
            latest[cell.cell] = cell
        return latest

    def vehicle_states(self) -> dict[str, VehicleState]:
        """The latest record of each vehicle on ``fleet.vehicle-state``."""
        latest: dict[str, VehicleState] = {}
        for record in self.read(KafkaTopic.VEHICLE_STATE):
            state = msgspec.json.decode(record.value() or b"", type=VehicleState)
            latest[state.vin] = state
        return latest

    def geofence_events(self) -> dict[str, GeofenceEvent]:
        """The events of ``fleet.geofence-events`` by id (a replay writes one again)."""
        records = self.read(KafkaTopic.GEOFENCE_EVENTS)
        events = [msgspec.json.decode(r.value() or b"", type=GeofenceEvent) for r in records]
        return {event.event_id: event for event in events}

    def draw(self, *fences: GeofenceDefinition) -> None:
        """Put fences on ``fleet.geofences``, as the API does."""
        producer = self.producer()
        for fence in fences:
            producer.produce(self.topic(KafkaTopic.GEOFENCES), encode(fence), fence.fence_id)
        producer.flush(10)

    def trips(self) -> dict[str, Trip]:
        """The latest word on each trip of ``fleet.trips``."""
        latest: dict[str, Trip] = {}
        for record in self.read(KafkaTopic.TRIPS):
            trip = msgspec.json.decode(record.value() or b"", type=Trip)
            latest[trip.trip_id] = trip
        return latest


def app_platform(
    tmp_path: Path, stack: Settings, *, own_topics: bool = True, **apps: Any
) -> AppPlatform:
    """Apps with fast clocks (ticks every 0.2 s, commits every 0.5 s) on a run's own topics
    (``own_topics=False``: on those of ``stack``, a test gateway's say) and state; ``apps``:
    settings of the ``[apps]`` section to change."""
    run = f"a{uuid.uuid4().hex[:8]}"
    topics = stack.topics
    if own_topics:
        topics = topics.model_copy(update={"prefix": stack.topic_map().prefixed(run).prefix})
    section = AppsSettings.model_validate(
        stack.apps.model_dump()
        | {
            "state_dir": tmp_path / "apps",
            "tick_interval_s": 0.2,
            "commit_interval_s": 0.5,
            "metrics_port": 0,
            **apps,
        }
    )
    settings = stack.model_copy(update={"topics": topics, "apps": section})
    config = tmp_path / f"apps-{run}.toml"
    config.write_text(dump_toml(settings))
    ensure_topics(KafkaClients.of(settings), settings.topic_map(), partitions=6, only=APP_TOPICS)
    return AppPlatform(config, settings)


APP_TOPICS = (
    KafkaTopic.EVENTS,
    KafkaTopic.TELEMETRY,
    KafkaTopic.PRESENCE,
    KafkaTopic.VEHICLE_STATE,
    KafkaTopic.TRIPS,
    KafkaTopic.TICKS,
    KafkaTopic.DLQ,
    KafkaTopic.HAZARDS,
    KafkaTopic.PARKING,
    KafkaTopic.GEOFENCES,
    KafkaTopic.GEOFENCE_EVENTS,
    KafkaTopic.ALERTS,
    KafkaTopic.ALERT_ACKS,
    KafkaTopic.SERVICES,
    KafkaTopic.REPLICATION_ALERTS,  # the API follows it
    KafkaTopic.PURCHASES,  # and these
    KafkaTopic.ENTITLEMENTS,
)


def wait_assigned(platform: AppPlatform, name: str, instances: int = 1) -> None:
    """Until ``instances`` members of the app's consumer group hold partitions."""
    group = app_group(platform.settings, name)

    def assigned() -> bool:
        return (assigned_members(platform.kafka, group) or 0) >= instances

    assert wait_until(assigned, 60, interval=0.3), f"{name}: {instances} instance(s) not assigned"


def app_argv(config: Path, name: str, instance: int = 0) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fleetlink",
        "--config",
        str(config),
        "app",
        "run",
        name,
        "--instance",
        str(instance),
    ]


@contextmanager
def running_app(
    platform: AppPlatform, name: str, instance: int = 0
) -> Iterator[subprocess.Popen[bytes]]:
    """The app as its own process; stopped with SIGTERM (SIGKILL after 15 s) at the end."""
    log = (platform.config.parent / f"{name}-{instance}.log").open("ab")
    process = subprocess.Popen(
        app_argv(platform.config, name, instance), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield process
    finally:
        stop_app(process)
        log.close()


def stop_app(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def send_event(
    producer: Producer,
    topic: str,
    vin: str,
    kind: str,
    ts: int,
    where: tuple[float, float],
    **fields: Any,
) -> str:
    """An event record as the gateway writes it (key VIN, provenance headers); its msg id."""
    event = Event(ts=ts, seq=ts % 1_000_000, latitude=where[0], longitude=where[1], **fields)
    msg_id = f"{vin}-{kind}-{ts}"
    producer.produce(
        topic,
        encode(event),
        key=vin.encode(),
        headers=[
            (h.MESSAGE_ID, msg_id.encode()),
            (h.MQTT_TOPIC, MqttTopic.event(vin, kind).encode()),
            (h.EVENT_TIME, str(ts).encode()),
        ],
    )
    return msg_id


def send_telemetry(
    producer: Producer,
    topic: str,
    vin: str,
    ts: int,
    where: tuple[float, float],
    speed_kmh: float,
    heading_deg: float,
    signals: dict[str, float] | None = None,
) -> None:
    telemetry = Telemetry(
        ts=ts,
        seq=ts % 1_000_000,
        signals={
            "Vehicle.CurrentLocation.Latitude": where[0],
            "Vehicle.CurrentLocation.Longitude": where[1],
            "Vehicle.Speed": speed_kmh,
            "Vehicle.CurrentLocation.Heading": heading_deg,
            **(signals or {}),
        },
    )
    producer.produce(
        topic,
        encode(telemetry),
        key=vin.encode(),
        headers=[
            (h.MESSAGE_ID, f"{vin}-t-{ts}".encode()),
            (h.MQTT_TOPIC, MqttTopic.telemetry(vin).encode()),
        ],
    )


def send_presence(producer: Producer, topic: str, vin: str, ts: int, *, online: bool) -> None:
    """A presence record as the gateway writes it (key VIN, provenance headers)."""
    status = PresenceStatus.ONLINE if online else PresenceStatus.OFFLINE
    producer.produce(
        topic,
        encode(Presence(status=status, ts=ts)),
        key=vin.encode(),
        headers=[
            (h.MESSAGE_ID, f"{vin}-p-{ts}".encode()),
            (h.MQTT_TOPIC, MqttTopic.presence(vin).encode()),
        ],
    )


def tick(platform: AppPlatform, ts: int, partitions: int = 6) -> None:
    """Time goes on to ``ts`` in every partition (the apps run on the tests' clock): what was
    written before it is judged, in event-time order, however it arrived."""
    producer = platform.producer()
    topic = platform.topic(KafkaTopic.TICKS)
    for partition in range(partitions):
        producer.produce(topic, encode(Tick(ts=ts)), key=b"tick", partition=partition)
    producer.flush(10)
