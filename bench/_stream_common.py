"""What the stream-app benchmark's parts share: constants, result rows, small helpers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from fleetlink.contracts.models import EventKind
from fleetlink.contracts.topics import KafkaTopic

console = Console(width=120)
ROOT = Path(__file__).resolve().parents[1]
APP = "hazards"
PARTITIONS = 6
APP_TOPICS = (
    KafkaTopic.EVENTS,
    KafkaTopic.TELEMETRY,
    KafkaTopic.PRESENCE,
    KafkaTopic.TICKS,
    KafkaTopic.DLQ,
    KafkaTopic.HAZARDS,
    KafkaTopic.VEHICLE_STATE,
    KafkaTopic.TRIPS,
    KafkaTopic.GEOFENCES,
    KafkaTopic.GEOFENCE_EVENTS,
)
# throughput modes: the app each one runs (the hazards app without or with telemetry; fleet
# tracking, with telemetry, without geofences or with ``--fences`` of them)
APP_OF_MODE = {
    "passes": "hazards",
    "no-passes": "hazards",
    "fleet": "fleet",
    "fleet-fences": "fleet",
}

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
    mode: str  # "passes" (events + telemetry) or "no-passes" (events only): hazards; "fleet"
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
