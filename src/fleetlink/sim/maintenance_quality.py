"""How well the maintenance app finds what the simulated cars really had: a health run into
Kafka (``sim.health_run``), the app (already running, simulated-clock mode) caught up, its
``fleet.alerts`` scored against the run's truth, per fault kind.

An alert matches a fault of the same car, kind and subject (the wheel, the code) when it was
raised between the fault's start and its end (fixed), or the run's end; a critical tire up to
``EARLY_CRITICAL_MS`` before its start (a reading within the sensor's noise of 75 % of placard
crosses it before the true pressure does: a slow leak takes an hour or more per kPa).
Recall: the share of faults matched; precision: the share of alerts that match; time to
detect: from the fault's start to its first matching alert. Healthy cars (no fault at all)
should raise no tire or battery alert: their count is the false-alarm figure.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable

import msgspec

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.contracts.alerts import Alert, AlertKind
from fleetlink.contracts.codec import UndecodableError, decode
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings
from fleetlink.sim.hazard_quality import wait_caught_up
from fleetlink.sim.health import HOUR_MS, FaultKind, TrueFault
from fleetlink.sim.health_run import HealthRun, HealthSummary, run_health

_WEAR_KINDS = (AlertKind.TIRE_LEAK, AlertKind.TIRE_CRITICAL, AlertKind.BATTERY_FADE)
EARLY_CRITICAL_MS = 3 * HOUR_MS


class KindQuality(msgspec.Struct):
    kind: str
    faults: int
    alerts: int
    found: int  # faults matched
    true_alerts: int  # alerts that match a fault
    recall: float | None
    precision: float | None
    detect_h: list[float]  # median, largest (a critical tire's may be below 0)


class MaintenanceQuality(msgspec.Struct):
    kinds: list[KindQuality]
    healthy_cars: int
    healthy_tire_battery_alerts: int


class MaintenanceRun(msgspec.Struct):
    run: HealthSummary
    quality: MaintenanceQuality
    alert_records: int
    catch_up_s: float


def raised_alerts(settings: Settings, log: logging.Logger) -> tuple[list[Alert], int]:
    """Each alert of ``fleet.alerts`` once (its first record), and how many records there are."""
    first: dict[str, Alert] = {}
    records = read_topic(KafkaClients.of(settings), settings.topic_map()[KafkaTopic.ALERTS], 60)
    for record in records:
        try:
            alert = decode(Alert, record.value())
        except UndecodableError as error:
            log.warning("an unreadable alert", extra={"error": str(error)})
            continue
        first.setdefault(alert.alert_id, alert)
    return list(first.values()), len(records)


def score_alerts(
    truth: list[TrueFault], alerts: list[Alert], healthy: list[str], end_ms: int
) -> MaintenanceQuality:
    kinds = []
    for kind in FaultKind:
        faults = [f for f in truth if f.kind is kind]
        mine = [a for a in alerts if a.kind.value == kind.value]
        delays: list[float] = []
        matched: set[str] = set()
        for fault in faults:
            hits = [a for a in mine if _matches(fault, a, end_ms)]
            if hits:
                delays.append(min(a.raised_ts for a in hits) - fault.start_ms)
                matched.update(a.alert_id for a in hits)
        kinds.append(
            KindQuality(
                kind=kind.value,
                faults=len(faults),
                alerts=len(mine),
                found=len(delays),
                true_alerts=len(matched),
                recall=round(len(delays) / len(faults), 4) if faults else None,
                precision=round(len(matched) / len(mine), 4) if mine else None,
                detect_h=[
                    round(statistics.median(delays) / HOUR_MS, 2),
                    round(max(delays) / HOUR_MS, 2),
                ]
                if delays
                else [],
            )
        )
    well = set(healthy)
    false_alarms = sum(1 for a in alerts if a.vin in well and a.kind in _WEAR_KINDS)
    return MaintenanceQuality(kinds, len(well), false_alarms)


def _matches(fault: TrueFault, alert: Alert, end_ms: int) -> bool:
    until = fault.end_ms if fault.end_ms is not None else end_ms
    since = fault.start_ms - (EARLY_CRITICAL_MS if fault.kind is FaultKind.TIRE_CRITICAL else 0)
    return (
        alert.vin == fault.vin
        and alert.subject == fault.subject
        and since <= alert.raised_ts <= until
    )


def measure_maintenance(
    settings: Settings,
    run: HealthRun,
    *,
    progress: Callable[[float], None] = lambda _d: None,
    timeout_s: float = 900,
    log: logging.Logger | None = None,
) -> MaintenanceRun:
    """``run`` into Kafka, the maintenance app caught up, its alerts scored."""
    log = log or logging.getLogger("fleetlink.sim.quality")
    summary = run_health(settings, run, log=log, progress=progress)
    catch_up = wait_caught_up(settings, "maintenance", timeout_s)
    alerts, records = raised_alerts(settings, log)
    quality = score_alerts(summary.truth, alerts, summary.healthy, summary.end_ms)
    return MaintenanceRun(summary, quality, records, catch_up)
