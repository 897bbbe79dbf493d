"""The hazards app on Quix Streams: events (and passing cars) to ``fleet.hazards``.

Events are keyed by VIN; hazards are about places. Every input goes by ``group_by`` to the
shards of the places near it (one key per partition of the repartition topic, so that one tick
per shard sweeps every place stored there), marked with the input partition it came from (the
shards keep a watermark over all of them), and ``HazardShard`` decides.
"""

from __future__ import annotations

from typing import Any

from msgspec.structs import replace
from quixstreams import State

from fleetlink.apps.hazards.logic import HazardParams, HazardShard
from fleetlink.apps.runtime.application import AppRuntime
from fleetlink.contracts.geo import cells_near
from fleetlink.contracts.hazards import RULE_OF_GROUP, RULE_OF_KIND, Hazard
from fleetlink.contracts.models import EventKind
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings.apps import HazardAppSettings

NAME = "hazards"
_HAZARD_KINDS = frozenset(kind.value for kind in RULE_OF_KIND)
_STATIONARY_KMH = 5.0  # hazard lights count only on a car that (nearly) stands


def params_of(settings: HazardAppSettings, grace_s: float) -> HazardParams:
    rules = dict(RULE_OF_GROUP)
    for group, change in settings.rules.items():
        rules[group] = replace(rules[group], **change.model_dump(exclude_none=True))
    return HazardParams(
        rules=rules,
        near_m=settings.near_m,
        grace_s=grace_s,
        pass_radius_m=settings.pass_radius_m,
        pass_min_speed_kmh=settings.pass_min_speed_kmh,
        pass_grace_s=settings.pass_grace_s,
        clear_after_passes=settings.clear_after_passes,
    )


def is_report(value: dict[str, Any], settings: HazardAppSettings) -> bool:
    """An event that may make a hazard: a hazard kind, with a position; braking only as hard as
    an emergency stop (harsh braking at a red light is a driver's habit, not a hazard); hazard
    lights only on a car that stands, and has stood a while (not a driver who stopped hard and
    drives on), as far as the car says."""
    if value["kind"] not in _HAZARD_KINDS or value["lat"] is None or value["lon"] is None:
        return False
    data = value.get("data") or {}
    if value["kind"] == EventKind.HARSH_BRAKING:
        return not _below(data.get("deceleration_ms2"), settings.emergency_brake_min_ms2)
    if value["kind"] == EventKind.HAZARD_LIGHTS:
        moving = value.get("speed") is not None and value["speed"] > _STATIONARY_KMH
        return not moving and not _below(data.get("standing_s"), settings.stationary_min_s)
    return True


def _below(said: object, floor: float) -> bool:
    """Whether the car said a number, and it is below ``floor`` (unsaid: the car's word)."""
    return isinstance(said, int | float) and not isinstance(said, bool) and said < floor


def build(runtime: AppRuntime) -> None:
    settings = runtime.settings.apps.hazards
    params = params_of(settings, runtime.settings.apps.grace_s)
    inputs = [KafkaTopic.EVENTS, KafkaTopic.TICKS, KafkaTopic.HAZARDS, KafkaTopic.DLQ]
    if settings.clear_after_passes:
        inputs.append(KafkaTopic.TELEMETRY)
    runtime.ensure(inputs)
    partitions = runtime.partitions(KafkaTopic.EVENTS)
    shard = runtime.cell_shards(settings.shard_resolution)
    metrics = runtime.metrics

    def shards(value: dict[str, Any]) -> list[str]:
        radius = settings.near_m if value["t"] == "report" else settings.pass_radius_m
        return sorted({shard(cell) for cell in cells_near(value["lat"], value["lon"], radius)})

    reports = (
        runtime.vehicle_input(KafkaTopic.EVENTS, "event")
        .filter(lambda v: is_report(v, settings))
        .apply(
            lambda v: {
                "t": "report",
                **{k: v[k] for k in ("vin", "kind", "ts", "lat", "lon", "heading", "msg_id")},
                "late": v["late"],
            }
        )
    )
    merged = reports.concat(runtime.ticks())
    if settings.clear_after_passes:
        passes = runtime.passing_cars(settings.pass_min_speed_kmh)
        merged = merged.concat(passes)
    sharded = runtime.by_shard(merged, shards)

    def decide(
        value: dict[str, Any], own: str, _ts: int, _headers: Any, state: State[str, Any]
    ) -> list[Hazard]:
        owns = lambda cell: shard(cell) == own  # noqa: E731
        outcome = HazardShard(state, params, owns, sources=partitions).handle(value)
        if outcome.late:
            metrics.count(metrics.late)
        for hazard in outcome.hazards:
            metrics.count(metrics.outputs, hazard.state.value)
        return outcome.hazards

    sharded.apply(decide, stateful=True, expand=True, metadata=True).to_topic(
        runtime.output(KafkaTopic.HAZARDS), key=lambda hazard: hazard.cell
    )
