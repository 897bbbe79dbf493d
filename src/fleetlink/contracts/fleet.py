"""Fleet tracking: the latest state of each vehicle and its trips, as the fleet app writes them.

- ``VehicleState`` on compacted ``fleet.vehicle-state`` (key: VIN): where the car is, how fast,
  its odometer and battery, online or not (``fleet.presence``) and when last heard, driving or
  parked, and the trip it is on. Written when something changes state (a trip starts or ends,
  the car goes on- or offline) at once, and otherwise at most every ``state_every_s``.
- ``Trip`` on ``fleet.trips`` (key: VIN): once when it starts (``end_ts`` None) and once when it
  ends, under the same ``trip_id``. A trip starts when the car moves at ``start_kmh`` or more
  (Samsara's 5 mph) and ends when it stays below that for ``stop_s`` (5 minutes: a stop at a light
  or a short errand does not split it), when the car goes silent, or when it goes offline; its
  end is the moment it last moved. The distance is the odometer's, else the positions'.
- ``harsh``: harsh events during the trip by kind, one of a kind within ``harsh_once_s`` (30 s)
  counted once. fleetlink knows vehicles, not drivers: a score is a vehicle's (``driving_score``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from fleetlink.contracts.models import EpochMillis, EventKind, Vin

Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]
NonNegative = Annotated[float, Meta(ge=0)]

# the harsh events a trip counts, and their weight in the score
HARSH_WEIGHTS: Final[dict[str, float]] = {
    EventKind.HARSH_BRAKING.value: 1.0,
    EventKind.HARSH_ACCELERATION.value: 1.0,
    EventKind.HARSH_CORNERING.value: 1.0,
    EventKind.CRASH.value: 10.0,
}
SCORE_MIN_KM: Final = 10.0  # no score over fewer kilometres: a few events would swing it
SCORE_PER_EVENT_PER_100_KM: Final = 10.0  # points off per weighted event per 100 km


class Motion(StrEnum):
    DRIVING = "driving"  # on a trip
    PARKED = "parked"  # not on a trip


class TripEnd(StrEnum):
    STOPPED = "stopped"  # below the start speed for ``stop_s``
    SILENT = "silent"  # nothing heard for ``silence_s``
    OFFLINE = "offline"  # the broker saw it go (fleet.presence)


class VehicleState(msgspec.Struct, frozen=True, omit_defaults=True):
    """The latest known state of one vehicle; ``ts`` the event time of the newest input."""

    vin: Vin
    ts: EpochMillis
    online: bool
    last_seen: EpochMillis  # its newest telemetry or event
    motion: Motion
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    heading_deg: Annotated[float, Meta(ge=0, le=360)] | None = None
    speed_kmh: NonNegative | None = None
    odometer_km: NonNegative | None = None
    soc_pct: Annotated[float, Meta(ge=0, le=100)] | None = None  # traction battery
    trip_id: str | None = None
    trip_start_ts: EpochMillis | None = None


class Trip(msgspec.Struct, frozen=True, omit_defaults=True):
    """One trip of one vehicle: open while ``end_ts`` is None."""

    trip_id: str
    vin: Vin
    start_ts: EpochMillis
    start_latitude: Latitude | None = None
    start_longitude: Longitude | None = None
    end_ts: EpochMillis | None = None
    end_latitude: Latitude | None = None
    end_longitude: Longitude | None = None
    ended_by: TripEnd | None = None
    distance_km: NonNegative = 0.0
    duration_s: NonNegative = 0.0
    max_speed_kmh: NonNegative = 0.0
    harsh: dict[str, int] = {}


class DrivingScore(msgspec.Struct, frozen=True):
    """A vehicle's driving over its trips that ended in [since, until): ``score`` is None under
    ``SCORE_MIN_KM``."""

    vin: Vin
    since: EpochMillis
    until: EpochMillis
    trips: int
    distance_km: float
    harsh: dict[str, int]
    weighted_per_100_km: float | None
    score: float | None


def driving_score(vin: str, trips: list[Trip], since: int, until: int) -> DrivingScore:
    """``100 - 10 x weighted harsh events per 100 km``, between 0 and 100, over the closed
    trips that ended in [since, until) (Powerfleet's per-100-km basis; crash weighs 10)."""
    chosen = [
        t for t in trips if t.end_ts is not None and since <= t.end_ts < until and t.vin == vin
    ]
    distance = sum(t.distance_km for t in chosen)
    harsh: dict[str, int] = {}
    for trip in chosen:
        for kind, count in trip.harsh.items():
            harsh[kind] = harsh.get(kind, 0) + count
    weighted = sum(HARSH_WEIGHTS.get(kind, 0.0) * count for kind, count in harsh.items())
    if distance < SCORE_MIN_KM:
        per_100, score = None, None
    else:
        per_100 = weighted * 100 / distance
        score = round(min(100.0, max(0.0, 100 - SCORE_PER_EVENT_PER_100_KM * per_100)), 1)
        per_100 = round(per_100, 3)
    return DrivingScore(
        vin=vin,
        since=since,
        until=until,
        trips=len(chosen),
        distance_km=round(distance, 3),
        harsh=dict(sorted(harsh.items())),
        weighted_per_100_km=per_100,
        score=score,
    )
