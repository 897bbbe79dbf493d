"""Predictive maintenance on Quix Streams, exactly once: telemetry, DTC events, recorded
services and acknowledgements to ``fleet.alerts``.

Each car's inputs go by ``group_by`` to its shard (as in fleet tracking) and
``MaintenanceShard`` decides. Alerts and the input offsets commit in one Kafka transaction per
checkpoint (``processing_guarantee="exactly-once"``): a crash between reading a DTC and the
commit gives a read_committed reader one alert, not two. Duplicates already in the inputs
(a car's message sent twice) are still dropped by their ``fl.msg_id``.
"""

from __future__ import annotations

from typing import Any

from quixstreams import State

from fleetlink.apps.maintenance.dtc import DtcParams
from fleetlink.apps.maintenance.logic import MaintenanceParams, MaintenanceShard
from fleetlink.apps.maintenance.tires import TireParams
from fleetlink.apps.maintenance.wear import WearParams
from fleetlink.apps.runtime.application import AppRuntime
from fleetlink.apps.runtime.clock import shard_of
from fleetlink.contracts.alerts import Alert
from fleetlink.contracts.models import EventKind
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings.apps import MaintenanceAppSettings

NAME = "maintenance"


def params_of(settings: MaintenanceAppSettings) -> MaintenanceParams:
    return MaintenanceParams(
        tires=TireParams(
            placard_front_kpa=settings.placard_front_kpa,
            placard_rear_kpa=settings.placard_rear_kpa,
            leak_kpa_per_day=settings.leak_kpa_per_day,
            min_span_s=settings.leak_min_span_s,
        ),
        dtc=DtcParams(repeat_quiet_s=settings.dtc_repeat_quiet_s),
        wear=WearParams(
            fade_pct_per_year=settings.fade_pct_per_year,
            min_days=settings.fade_min_days,
            interval_km=settings.service_interval_km,
            interval_days=settings.service_interval_days,
        ),
    )


def build(runtime: AppRuntime) -> None:
    params = params_of(runtime.settings.apps.maintenance)
    runtime.ensure(
        [
            KafkaTopic.TELEMETRY,
            KafkaTopic.EVENTS,
            KafkaTopic.SERVICES,
            KafkaTopic.ALERT_ACKS,
            KafkaTopic.ALERTS,
            KafkaTopic.DLQ,
        ]
    )
    partitions = runtime.partitions(KafkaTopic.EVENTS)
    metrics = runtime.metrics
    merged = (
        runtime.vehicle_input(KafkaTopic.TELEMETRY, "telemetry")
        .concat(
            runtime.vehicle_input(KafkaTopic.EVENTS, "event").filter(
                lambda v: v["kind"] == EventKind.DTC.value
            )
        )
        .concat(runtime.records_input(KafkaTopic.SERVICES, "service"))
        .concat(runtime.records_input(KafkaTopic.ALERT_ACKS, "ack"))
    )
    sharded = runtime.by_shard(merged, lambda value: [shard_of(value["vin"], partitions)])

    def decide(value: dict[str, Any], state: State[str, Any]) -> list[Alert]:
        alerts = MaintenanceShard(state, params).handle(value)
        for alert in alerts:
            metrics.count(metrics.outputs, alert.kind.value)
        return alerts

    sharded.apply(decide, stateful=True, expand=True).to_topic(
        runtime.output(KafkaTopic.ALERTS), key=lambda alert: alert.vin
    )
