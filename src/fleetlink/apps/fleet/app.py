"""Fleet tracking on Quix Streams: telemetry, harsh events and presence to
``fleet.vehicle-state``, ``fleet.trips`` and ``fleet.geofence-events``.

Each vehicle's inputs go by ``group_by`` to its shard (one key per partition of the repartition
topic, so that a tick per shard sweeps every vehicle stored there); ``FleetShard`` decides the
state and trips, ``Geofencer`` the visits to the fences every instance follows (whole, from
``fleet.geofences``: a new fence counts from the moment it is read).
"""

from __future__ import annotations

import logging
from typing import Any

from quixstreams import State
from quixstreams.dataframe import StreamingDataFrame

from fleetlink.apps.fleet.fence_model import FenceReadModel
from fleetlink.apps.fleet.geofencing import FencingParams, Geofencer
from fleetlink.apps.fleet.tracking import FleetShard, Outcome, TrackingParams
from fleetlink.apps.runtime.application import AppRuntime
from fleetlink.apps.runtime.clock import shard_of
from fleetlink.contracts.fleet import HARSH_WEIGHTS, Trip, VehicleState
from fleetlink.contracts.geofences import GeofenceEvent
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings.apps import FleetAppSettings

NAME = "fleet"


def fencing_of(settings: FleetAppSettings) -> FencingParams:
    return FencingParams(band_m=settings.fence_band_m, fixes=settings.fence_fixes)


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
            KafkaTopic.GEOFENCES,
            KafkaTopic.GEOFENCE_EVENTS,
            KafkaTopic.DLQ,
        ]
    )
    fencing = fencing_of(runtime.settings.apps.fleet)
    fences = FenceReadModel(
        runtime.settings,
        logging.getLogger("fleetlink.apps.fleet.fences"),
        runtime.reader("fences"),
        events=False,
    )
    runtime.follow(fences)
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
    ) -> list[VehicleState | Trip | GeofenceEvent]:
        outcome = FleetShard(state, params, sources=partitions).handle(value)
        if outcome.stale:
            metrics.count(metrics.late)
        visits = judge_fences(Geofencer(state, fences.book, fencing), value, outcome)
        for _state in outcome.states:
            metrics.count(metrics.outputs, "vehicle-state")
        for _trip in outcome.trips:
            metrics.count(metrics.outputs, "trip")
        for _visit in visits:
            metrics.count(metrics.outputs, "geofence-event")
        return [*outcome.states, *outcome.trips, *visits]

    out: StreamingDataFrame = sharded.apply(decide, stateful=True, expand=True, metadata=True)
    out.filter(lambda record: isinstance(record, VehicleState)).to_topic(
        runtime.output(KafkaTopic.VEHICLE_STATE), key=lambda state: state.vin
    )
    out.filter(lambda record: isinstance(record, Trip)).to_topic(
        runtime.output(KafkaTopic.TRIPS), key=lambda trip: trip.vin
    )
    out.filter(lambda record: isinstance(record, GeofenceEvent)).to_topic(
        runtime.output(KafkaTopic.GEOFENCE_EVENTS), key=lambda event: event.vin
    )


def judge_fences(fencer: Geofencer, value: dict[str, Any], outcome: Outcome) -> list[GeofenceEvent]:
    """Fences judge the fixes the tracker took (not history), and sweep when it swept."""
    visits: list[GeofenceEvent] = []
    lat, lon = value.get("lat"), value.get("lon")
    if value.get("t") == "telemetry" and not outcome.stale and lat is not None and lon is not None:
        visits = fencer.fix(str(value["vin"]), int(value["ts"]), float(lat), float(lon))
    if outcome.swept_at is not None:
        visits += fencer.sweep(outcome.swept_at)
    return visits
