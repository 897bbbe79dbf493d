"""Geofences: areas drawn by an operator or an owner, and the cars' visits to them.

- ``GeofenceDefinition`` on compacted ``fleet.geofences`` (key: fence id; a tombstone deletes
  it), written by the API: a circle (``circle``) or a GeoJSON polygon (``polygon``), for the cars
  in ``vins`` (None: every car; an owner always names theirs), with ``dwell_s`` to be told when a
  car stays that long.
- ``GeofenceEvent`` on ``fleet.geofence-events`` (key: VIN): a car ``enter``s, ``dwell``s (once a
  visit) and ``exit``s. ``event_id`` is the same when a replay writes it again.

Hysteresis (``apps.fleet.fence_band_m``, ``fence_fixes``): a car enters after ``fence_fixes``
fixes in a row inside the area, and exits after as many more than ``fence_band_m`` outside it; a
fix in the band between changes nothing, so a car driving along the border does not flap. An
event's ``ts`` is the first fix of the run that decided it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from fleetlink.contracts.models import EpochMillis, Vin

# The limits of a fence, told to whoever draws one (a 422 names the one broken).
MIN_RADIUS_M: Final = 50.0  # GPS error is metres; the band 25 m: a smaller fence is noise
MAX_RADIUS_M: Final = 50_000.0
MIN_AREA_M2: Final = 2_500.0  # a polygon at least the size of a 50 m square
MAX_EXTENT_M: Final = 100_000.0  # a polygon fits in 100 km (measured in a local projection)
MAX_VERTICES: Final = 500  # over every ring of a polygon
MAX_VINS: Final = 1_000
MAX_DWELL_S: Final = 7 * 86_400.0

FENCE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
FenceName = Annotated[str, Meta(min_length=1, max_length=100)]
DwellSeconds = Annotated[float, Meta(ge=1, le=MAX_DWELL_S)]


class FenceCircle(msgspec.Struct, frozen=True):
    latitude: Annotated[float, Meta(ge=-90, le=90)]
    longitude: Annotated[float, Meta(ge=-180, le=180)]
    radius_m: Annotated[float, Meta(ge=MIN_RADIUS_M, le=MAX_RADIUS_M)]


class GeoJsonPolygon(msgspec.Struct, frozen=True):
    """RFC 7946: the outer ring, then holes; each ring closed, positions ``[lon, lat]``."""

    type: Literal["Polygon"]
    coordinates: list[list[list[float]]]


class GeofenceDefinition(msgspec.Struct, frozen=True, omit_defaults=True):
    fence_id: Annotated[str, Meta(pattern=FENCE_ID_PATTERN)]
    name: FenceName
    owner: str  # the user who drew it
    created_at: EpochMillis
    circle: FenceCircle | None = None
    polygon: GeoJsonPolygon | None = None
    vins: list[Vin] | None = None  # None: every car (fleet admins only)
    dwell_s: DwellSeconds | None = None


class FenceEventKind(StrEnum):
    ENTER = "enter"
    DWELL = "dwell"  # inside for the fence's ``dwell_s``, once a visit
    EXIT = "exit"


class GeofenceEvent(msgspec.Struct, frozen=True, omit_defaults=True):
    event_id: str  # ``{fence}/{vin}/{kind}/{ts}``
    fence_id: str
    vin: Vin
    kind: FenceEventKind
    ts: EpochMillis
    entered_ts: EpochMillis  # when this visit began
    latitude: float | None = None
    longitude: float | None = None
    dwell_s: float | None = None  # inside this long (exit and dwell)


def fence_event(
    fence_id: str,
    vin: str,
    kind: FenceEventKind,
    ts: int,
    entered_ts: int,
    where: tuple[float, float] | None = None,
) -> GeofenceEvent:
    dwell = None if kind is FenceEventKind.ENTER else round((ts - entered_ts) / 1000, 1)
    return GeofenceEvent(
        event_id=f"{fence_id}/{vin}/{kind.value}/{ts}",
        fence_id=fence_id,
        vin=vin,
        kind=kind,
        ts=ts,
        entered_ts=entered_ts,
        latitude=None if where is None else round(where[0], 6),
        longitude=None if where is None else round(where[1], 6),
        dwell_s=dwell,
    )
