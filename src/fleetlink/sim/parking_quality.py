"""How well the parking finder knows the curb: an accelerated run with cars that park into Kafka,
the finder (already running, in simulated-clock mode) caught up, its ``fleet.parking`` scored
against the curb's truth at every minute of the run."""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.contracts.codec import UndecodableError, decode
from fleetlink.contracts.parking import ParkingCell
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.errors import FleetlinkError
from fleetlink.settings import Settings
from fleetlink.sim.accelerated import AcceleratedRun, RunSummary
from fleetlink.sim.curb import ParkingPlan
from fleetlink.sim.hazard_quality import wait_caught_up
from fleetlink.sim.parking_truth import ParkingQuality, score


class ParkingRun(msgspec.Struct):
    run: RunSummary
    quality: ParkingQuality
    records: int  # written by the finder
    catch_up_s: float  # after the simulator's last record, until the app had read everything


def cells_written(settings: Settings, log: logging.Logger) -> list[ParkingCell]:
    cells = []
    topic = settings.topic_map()[KafkaTopic.PARKING]
    for record in read_topic(KafkaClients.of(settings), topic, timeout=60):
        try:
            cells.append(decode(ParkingCell, record.value()))
        except UndecodableError as error:
            log.warning("an unreadable parking record", extra={"error": str(error)})
    return cells


def measure(
    settings: Settings,
    *,
    vehicles: int,
    seed: int,
    duration_s: float,
    plan: ParkingPlan | None = None,
    warmup_s: float = 600.0,
    speed: float = 20.0,
    progress: Callable[[float], None] = lambda _s: None,
    timeout_s: float = 600,
    log: logging.Logger | None = None,
) -> ParkingRun:
    """Simulate ``duration_s``; ask the finder every minute after ``warmup_s`` (before, it has
    seen too little of the city to be asked)."""
    log = log or logging.getLogger("fleetlink.sim.quality")
    run = AcceleratedRun(
        settings,
        vehicles=vehicles,
        seed=seed,
        parking=plan or ParkingPlan(),
        telemetry=settings.apps.parking.use_passes,  # what the app reads
        log=log,
    )
    summary = run.run(duration_s, speed=speed, progress=progress)
    catch_up = wait_caught_up(settings, "parking", timeout_s)
    if summary.parking is None:
        raise FleetlinkError("the run kept no curb truth")
    cells = cells_written(settings, log)
    quality = score(
        summary.parking,
        cells,
        start_ms=summary.start_ms + int(warmup_s * 1000),
        end_ms=summary.start_ms + int(duration_s * 1000),
    )
    return ParkingRun(summary, quality, len(cells), catch_up)
