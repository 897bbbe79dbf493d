"""Fleet tracking on Quix Streams: telemetry, harsh events and presence to
``fleet.vehicle-state`` and ``fleet.trips``.

Each vehicle's inputs go by ``group_by`` to its shard (one key per partition of the repartition
topic, so that a tick per shard sweeps every vehicle stored there), and ``FleetShard`` decides.
"""

from __future__ import annotations

from typing import Any

from quixstreams import State
from quixstreams.dataframe import StreamingDataFrame

from fleetlink.apps.fleet.tracking import FleetShard, TrackingParams
from fleetlink.apps.runtime.application import AppRuntime
from fleetlink.apps.runtime.clock import shard_of
from fleetlink.contracts.fleet import HARSH_WEIGHTS, Trip, VehicleState
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings.apps import FleetAppSettings

NAME = "fleet"


def params_of(settings: FleetAppSettings) -> TrackingParams:
    return TrackingParams(
        start_kmh=settings.start_kmh,
        stop_s=settings.stop_s,
        silence_s=settings.silence_s,
        state_every_s=settings.state_every_s,
        harsh_once_s=settings.harsh_once_s,
        sweep_every_s=settings.sweep_every_s,
    )


def build(runtime: AppRuntime) -> None:
    params = params_of(runtime.settings.apps.fleet)
    runtime.ensure(
        [
            KafkaTopic.TELEMETRY,
            KafkaTopic.EVENTS,
            KafkaTopic.PRESENCE,
            KafkaTopic.TICKS,
            KafkaTopic.VEHICLE_STATE,
            KafkaTopic.TRIPS,
            KafkaTopic.DLQ,
        ]
    )
    partitions = runtime.partitions(KafkaTopic.EVENTS)
    metrics = runtime.metrics
    merged = (
        runtime.vehicle_input(KafkaTopic.TELEMETRY, "telemetry")
        .concat(
            runtime.vehicle_input(KafkaTopic.EVENTS, "event").filter(
                lambda v: v["kind"] in HARSH_WEIGHTS
            )
        )
        .concat(runtime.vehicle_input(KafkaTopic.PRESENCE, "presence"))
        .concat(runtime.ticks())
    )
    sharded = runtime.by_shard(merged, lambda value: [shard_of(value["vin"], partitions)])

    def decide(
        value: dict[str, Any], _own: str, _ts: int, _headers: Any, state: State[str, Any]
    ) -> list[VehicleState | Trip]:
        outcome = FleetShard(state, params, sources=partitions).handle(value)
        if outcome.stale:
            metrics.count(metrics.late)
        for _state in outcome.states:
            metrics.count(metrics.outputs, "vehicle-state")
        for _trip in outcome.trips:
            metrics.count(metrics.outputs, "trip")
        return [*outcome.states, *outcome.trips]

    out: StreamingDataFrame = sharded.apply(decide, stateful=True, expand=True, metadata=True)
    out.filter(lambda record: isinstance(record, VehicleState)).to_topic(
        runtime.output(KafkaTopic.VEHICLE_STATE), key=lambda state: state.vin
    )
    out.filter(lambda record: isinstance(record, Trip)).to_topic(
        runtime.output(KafkaTopic.TRIPS), key=lambda trip: trip.vin
    )
