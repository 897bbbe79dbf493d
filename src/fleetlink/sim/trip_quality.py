"""How well the fleet app finds trips: an accelerated run with cars that drive from spot to spot
into Kafka, the fleet app (already running, in simulated-clock mode) caught up, its
``fleet.trips`` scored against the trips the simulator drove."""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.contracts.codec import UndecodableError, decode
from fleetlink.contracts.fleet import Trip
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings
from fleetlink.sim.accelerated import AcceleratedRun, RunSummary
from fleetlink.sim.curb import ParkingPlan
from fleetlink.sim.hazard_quality import wait_caught_up
from fleetlink.sim.trip_truth import TripQuality, score_trips


class TripRun(msgspec.Struct):
    run: RunSummary
    quality: TripQuality
    records: int  # written by the app to fleet.trips
    catch_up_s: float


def trips_written(settings: Settings, log: logging.Logger) -> list[Trip]:
    """The last word on each trip of ``fleet.trips``."""
    latest: dict[str, Trip] = {}
    topic = settings.topic_map()[KafkaTopic.TRIPS]
    for record in read_topic(KafkaClients.of(settings), topic, timeout=60):
        try:
            trip = decode(Trip, record.value())
        except UndecodableError as error:
            log.warning("an unreadable trip record", extra={"error": str(error)})
            continue
        latest[trip.trip_id] = trip
    return list(latest.values())


def measure_trips(
    settings: Settings,
    *,
    vehicles: int,
    seed: int,
    duration_s: float,
    plan: ParkingPlan | None = None,
    warmup_s: float = 60.0,
    speed: float = 20.0,
    interval_s: float = 2.0,
    progress: Callable[[float], None] = lambda _s: None,
    timeout_s: float = 600,
    log: logging.Logger | None = None,
) -> TripRun:
    """Simulate ``duration_s``; score the trips that started after ``warmup_s`` (the cars that
    drive when the run starts left no spot: their trips have no known start) and ended early
    enough for the app to have seen them end (``apps.fleet.stop_s`` standing, and a minute)."""
    log = log or logging.getLogger("fleetlink.sim.quality")
    plan = plan or ParkingPlan()
    run = AcceleratedRun(
        settings, vehicles=vehicles, seed=seed, parking=plan, interval_s=interval_s, log=log
    )
    summary = run.run(duration_s, speed=speed, progress=progress)
    catch_up = wait_caught_up(settings, "fleet", timeout_s)
    trips = trips_written(settings, log)
    settle_ms = int((settings.apps.fleet.stop_s + 60) * 1000)
    quality = score_trips(
        summary.trips,
        trips,
        start_ms=summary.start_ms + int(warmup_s * 1000),
        end_ms=summary.start_ms + int(duration_s * 1000) - settle_ms,
    )
    return TripRun(summary, quality, len(trips), catch_up)
