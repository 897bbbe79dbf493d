"""The free-parking finder on Quix Streams: curb events (and cars driving past) to
``fleet.parking``.

Events and telemetry are keyed by VIN; spots are about places. Every input goes by ``group_by``
to the shards of the cells near it (one key per partition of the repartition topic, so that one
tick per shard sweeps every cell stored there), marked with the input partition it came from
(the shards keep a watermark over all of them), and ``ParkingShard`` decides.
"""

from __future__ import annotations

from typing import Any, Final

from quixstreams import State

from fleetlink.apps.parking.logic import ParkingShard, shards_of
from fleetlink.apps.parking.sites import ParkingParams
from fleetlink.apps.runtime.application import AppRuntime
from fleetlink.contracts.models import EventKind
from fleetlink.contracts.parking import ParkingCell
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings.apps import ParkingAppSettings

NAME = "parking"
_INPUT_OF_KIND: Final = {
    EventKind.PARKING_GAP.value: "gap",
    EventKind.PARKED.value: "parked",
    EventKind.UNPARKED.value: "unparked",
}


def params_of(settings: ParkingAppSettings, grace_s: float) -> ParkingParams:
    return ParkingParams(
        default_lifetime_s=settings.default_lifetime_s,
        learn_min_ends=settings.learn_min_ends,
        area_resolution=settings.area_resolution,
        max_scan_speed_kmh=settings.max_scan_speed_kmh,
        min_length_m=settings.min_length_m,
        merge_m=settings.merge_m,
        placing_sigma_m=settings.placing_sigma_m,
        unknown_free=settings.unknown_free,
        stand_m=settings.stand_m,
        max_diff_deg=settings.max_heading_diff_deg,
        pass_m=settings.pass_m,
        pass_grace_s=settings.pass_grace_s,
        drop_below_p=settings.drop_below_p,
        trend_window_s=settings.trend_window_s,
        no_parking_min_passes=settings.no_parking_min_passes,
        no_parking_free_share=settings.no_parking_free_share,
        no_parking_min_span_s=settings.no_parking_min_span_s,
        grace_s=grace_s,
    )


def curb_input(value: dict[str, Any]) -> dict[str, Any] | None:
    """A curb event as the finder's input; None for any other event or one without a place."""
    kind = _INPUT_OF_KIND.get(value["kind"])
    if kind is None or value["lat"] is None or value["lon"] is None:
        return None
    data = value.get("data") or {}
    length, side = data.get("length_m"), data.get("side")
    return {
        "t": kind,
        **{k: value[k] for k in ("vin", "ts", "lat", "lon", "heading", "speed", "msg_id")},
        "length": length if isinstance(length, int | float) else None,
        "side": side if side in ("left", "right") else None,
        "late": value["late"],
    }


def build(runtime: AppRuntime) -> None:
    settings = runtime.settings.apps.parking
    params = params_of(settings, runtime.settings.apps.grace_s)
    inputs = [KafkaTopic.EVENTS, KafkaTopic.TICKS, KafkaTopic.PARKING, KafkaTopic.DLQ]
    if settings.use_passes:
        inputs.append(KafkaTopic.TELEMETRY)
    runtime.ensure(inputs)
    partitions = runtime.partitions(KafkaTopic.EVENTS)
    shard = runtime.cell_shards(settings.shard_resolution)
    metrics = runtime.metrics

    def shards(value: dict[str, Any]) -> list[str]:
        return shards_of(value, params, shard)

    curb = (
        runtime.vehicle_input(KafkaTopic.EVENTS, "event")
        .apply(curb_input)
        .filter(lambda v: v is not None)
    )
    merged = curb.concat(runtime.ticks())
    if settings.use_passes:
        passes = runtime.passing_cars(params.pass_min_speed_kmh, params.max_scan_speed_kmh)
        merged = merged.concat(passes)
    sharded = runtime.by_shard(merged, shards)

    def decide(
        value: dict[str, Any], own: str, _ts: int, _headers: Any, state: State[str, Any]
    ) -> list[ParkingCell]:
        owns = lambda cell: shard(cell) == own  # noqa: E731
        outcome = ParkingShard(state, params, owns, sources=partitions).handle(value)
        if outcome.late:
            metrics.count(metrics.late)
        for _cell in outcome.cells:
            metrics.count(metrics.outputs, "cell")
        return outcome.cells

    sharded.apply(decide, stateful=True, expand=True, metadata=True).to_topic(
        runtime.output(KafkaTopic.PARKING), key=lambda cell: cell.cell
    )
