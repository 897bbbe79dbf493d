"""How well the hazards app finds what the simulator put in the city: an accelerated run with
hazard sites into Kafka, the app (already running, in simulated-clock mode) caught up, its
``fleet.hazards`` scored against the sites' truth."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.apps.registry import APPS
from fleetlink.apps.runtime.metrics import AppMetrics, LagProbe, app_group
from fleetlink.contracts.codec import UndecodableError, decode
from fleetlink.contracts.hazards import Hazard
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.errors import FleetlinkError
from fleetlink.settings import Settings
from fleetlink.sim.accelerated import AcceleratedRun, RunSummary
from fleetlink.sim.hazard_sites import SitePlan
from fleetlink.sim.hazard_truth import Quality, SiteKind, score


class HazardRun(msgspec.Struct):
    run: RunSummary
    quality: Quality
    catch_up_s: float  # after the simulator's last record, until the app had read everything


def site_plans(
    duration_s: float, *, ice: int, breakdowns: int, ice_s: float = 240, breakdown_s: float = 180
) -> list[SitePlan]:
    """Sites spread evenly over the run, each ending before it does."""
    kinds = [SiteKind.ICE] * ice + [SiteKind.BREAKDOWN] * breakdowns
    plans = []
    for n, kind in enumerate(kinds):
        lasts = ice_s if kind is SiteKind.ICE else breakdown_s
        room = max(1.0, duration_s - lasts - 10)
        plans.append(SitePlan(kind, at_s=10 + room * n / max(1, len(kinds)), duration_s=lasts))
    return plans


def wait_caught_up(settings: Settings, app: str, timeout_s: float) -> float:
    """Until the app's group has committed every record of its inputs and repartition topics
    (twice in a row, a commit apart); the seconds it took."""
    started = time.monotonic()
    kafka = KafkaClients.of(settings)
    inputs = settings.topic_map().names((*APPS[app].inputs, KafkaTopic.TICKS))
    probe = LagProbe(kafka, app_group(settings, app), inputs, AppMetrics(app))
    zero_since: float | None = None
    try:
        while time.monotonic() - started < timeout_s:
            lag = probe.measure()
            now = time.monotonic()
            if lag > 0:
                zero_since = None
            elif zero_since is None:
                zero_since = now
            elif now - zero_since > settings.apps.commit_interval_s + 1:
                return round(zero_since - started, 1)
            time.sleep(0.5)
    finally:
        probe.close()
    raise FleetlinkError(f"the {app} app did not catch up within {timeout_s} s")


def hazards_written(settings: Settings, log: logging.Logger) -> list[Hazard]:
    hazards = []
    topic = settings.topic_map()[KafkaTopic.HAZARDS]
    for record in read_topic(KafkaClients.of(settings), topic):
        try:
            hazards.append(decode(Hazard, record.value()))
        except UndecodableError as error:
            log.warning("an unreadable hazard record", extra={"error": str(error)})
    return hazards


def measure(
    settings: Settings,
    *,
    vehicles: int,
    seed: int,
    duration_s: float,
    plans: list[SitePlan],
    speed: float = 20.0,
    progress: Callable[[float], None] = lambda _s: None,
    timeout_s: float = 600,
    log: logging.Logger | None = None,
) -> HazardRun:
    log = log or logging.getLogger("fleetlink.sim.quality")
    run = AcceleratedRun(
        settings,
        vehicles=vehicles,
        seed=seed,
        plans=plans,
        telemetry=settings.apps.hazards.clear_after_passes > 0,  # what the app reads
        log=log,
    )
    summary = run.run(duration_s, speed=speed, progress=progress)
    catch_up = wait_caught_up(settings, "hazards", timeout_s)
    quality = score(summary.sites, hazards_written(settings, log))
    return HazardRun(summary, quality, catch_up)
