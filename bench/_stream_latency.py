"""The stream-app benchmark's latency part: the K-th car's MQTT publish to the warning at an
approaching car, through the gateway and the hazards app, beside bare MQTT."""

from __future__ import annotations

import argparse
import logging
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
from _common import cpu_seconds, percentile
from _stream_common import (
    APP,
    APP_TOPICS,
    PARTITIONS,
    SPOT_ORIGIN,
    SPOT_STEP_DEG,
    Latency,
    console,
    now_ms,
    rounded,
)
from _stream_throughput import GroupProgress
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from paho.mqtt.enums import CallbackAPIVersion

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.mqtt.client import stop_loop
from fleetlink.adapters.mqtt.wire import disable_nagle
from fleetlink.adapters.runner import stop_children
from fleetlink.adapters.supervisor import Supervisor
from fleetlink.apps.runtime.metrics import app_group
from fleetlink.cli.gateway import ensure_worker_identities, worker_argv
from fleetlink.contracts.codec import encode
from fleetlink.contracts.geo import cell_of, warning_cells
from fleetlink.contracts.hazards import RULE_OF_GROUP, Hazard, HazardGroup
from fleetlink.contracts.models import Event, EventKind
from fleetlink.contracts.topics import KafkaTopic, MqttTopic
from fleetlink.security.pki import Role
from fleetlink.settings import Settings, dump_toml
from fleetlink.sim.flood import vins_for
from fleetlink.stack import LocalStack
from fleetlink.testing.isolated import RUNNING_TOPICS, isolated_gateway_settings

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
        stop_loop(self.client)


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
