"""Cars' health over simulated days, straight into Kafka: the maintenance app's quality run.

Each car's last service goes to ``fleet.services`` first; then, step by step, its telemetry
(every ``report_s`` while it drives, every ``parked_report_s`` while parked: a parked car
wakes up now and then) and its trouble codes, through the gateway's router in simulated time
(``sim.writer``). No SUMO: where a car drives does not matter here, only its sensors do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec

from fleetlink.contracts.alerts import ServiceRecord
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import EventKind
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings
from fleetlink.sim.flood import vins_for
from fleetlink.sim.health import DAY_MS, HealthPlan, TrueFault, fleet_health, service_truth
from fleetlink.sim.writer import SimWriter


class HealthSummary(msgspec.Struct):
    vehicles: int
    days: float
    start_ms: int
    end_ms: int
    wall_s: float
    telemetry: int
    events: int
    dead_letters: int
    truth: list[TrueFault]
    healthy: list[str]  # VINs without a fault


@dataclass(frozen=True)
class HealthRun:
    """What to simulate: ``days`` ending now of ``vehicles`` cars; telemetry every
    ``report_s`` while driving, every ``parked_report_s`` parked; ``faults``: the first cars'
    own (``fleet_health``)."""

    vehicles: int
    seed: int
    days: float
    plan: HealthPlan
    report_s: float = 300.0
    parked_report_s: float = 3600.0
    vin_prefix: str = "MNT"
    faults: Sequence[str | None] = ()


def run_health(
    settings: Settings,
    run: HealthRun,
    *,
    log: logging.Logger | None = None,
    progress: Callable[[float], None] = print,
) -> HealthSummary:
    """Simulate ``run`` into Kafka (ending now: a broker refuses records far ahead of its
    clock); the truth is what the cars really had. ``progress`` hears the simulated days."""
    started = time.monotonic()
    step_ms = int(run.report_s * 1000)
    end_ms = time.time_ns() // 1_000_000
    start_ms = end_ms - int(run.days * DAY_MS)
    start_ms -= start_ms % step_ms
    clock = [0.0]
    writer = SimWriter(settings, lambda: clock[0], log)
    vins = vins_for(run.vehicles, run.vin_prefix)
    cars, services, weather = fleet_health(vins, run.plan, run.seed, start_ms, run.days, run.faults)
    for last in services:
        record = ServiceRecord(last.vin, last.ts, last.odometer_km, by="simulator")
        writer.produce(
            writer.topics[KafkaTopic.SERVICES], encode(record), last.vin.encode(), [], start_ms - 1
        )
    reported = dict.fromkeys(vins, 0)
    telemetry = events = 0
    for now_ms in range(start_ms + step_ms, end_ms, step_ms):
        clock[0] = (now_ms - start_ms) / 1000
        air = weather.at(now_ms)
        for car, last in zip(cars, services, strict=True):
            signals, dtcs = car.step(now_ms, air)
            service_truth(car, last, now_ms, run.plan)
            for data in dtcs:
                writer.event(car.vin, EventKind.DTC.value, now_ms, data=data)
                events += 1
            every = run.report_s if car.driving(now_ms) else run.parked_report_s
            if now_ms - reported[car.vin] >= every * 1000:
                writer.telemetry(car.vin, signals, now_ms)
                reported[car.vin] = now_ms
                telemetry += 1
        writer.keep_pace()
        if (now_ms - start_ms) % DAY_MS < step_ms:
            progress((now_ms - start_ms) / DAY_MS)
    writer.flush()
    truth = [fault for car in cars for fault in car.truth]
    return HealthSummary(
        vehicles=run.vehicles,
        days=run.days,
        start_ms=start_ms,
        end_ms=end_ms,
        wall_s=round(time.monotonic() - started, 1),
        telemetry=telemetry,
        events=events,
        dead_letters=writer.dead_letters,
        truth=truth,
        healthy=[car.vin for car in cars if car.fault is None],
    )
