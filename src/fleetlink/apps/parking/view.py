"""The free spots near a place, pure: ``fleet.parking`` as the API holds it (the latest
``ParkingCell`` of each cell) and the answer to "where can I park around here?".

A spot is listed while it is likelier free than the floor, ranked by
``score = p_free * exp(-distance_m / DISTANCE_SCALE_M)``: a spot twice as likely free ranks
level with one about 350 m nearer. The area's summary is HERE's: how many spots are likely free
(``free_estimate``, the sum of the probabilities), the chance that at least one is (``p_any``),
that chance as a ``level``, and where the area is going (``trend``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import h3

from fleetlink.contracts.geo import distance_m
from fleetlink.contracts.parking import (
    PARKING_RESOLUTION,
    ParkingCell,
    ParkingSpot,
    Trend,
    trend_of,
)

P_FLOOR: Final = 0.05  # the finder's own default (apps.parking.drop_below_p)
DISTANCE_SCALE_M: Final = 500.0  # a walk this much longer costs a factor e in the score
HIGH_P_ANY: Final = 0.7
MEDIUM_P_ANY: Final = 0.4
TREND_WINDOW_S: Final = 600.0  # the finder's own default (apps.parking.trend_window_s)
# a spot stays in the cell it was first seen in while later reports (within the finder's
# merge_m) move it, so it may lie a little outside that cell
_SPOT_DRIFT_M: Final = 25.0


class Availability(StrEnum):
    """How likely at least one spot of the area is free, in HERE's three words."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class SpotNearby:
    spot: ParkingSpot
    cell: str
    p_free: float
    age_s: float
    distance_m: float
    score: float


@dataclass(frozen=True)
class AreaSummary:
    cells: int  # the cells known in the area (those reaching into the circle)
    free_estimate: float
    p_any: float
    level: Availability
    trend: Trend
    no_parking: int
    lifetime_s: float | None  # the median of the cells' (None: no cell known)
    updated_at: int | None  # the latest record's event time


@dataclass(frozen=True)
class ParkingNearby:
    as_of: int
    spots: list[SpotNearby]  # best first, at most the limit asked for
    summary: AreaSummary


@dataclass(frozen=True)
class _Place:
    latitude: float
    longitude: float
    reach_m: float  # from the centre to the farthest corner


def score(p_free: float, distance: float) -> float:
    """Likely free and near ranks first (see the module)."""
    return p_free * math.exp(-distance / DISTANCE_SCALE_M)


def is_parking_cell(cell: str) -> bool:
    """Whether ``cell`` is an H3 cell of the finder's resolution (a record's key)."""
    return bool(h3.is_valid_cell(cell)) and h3.get_resolution(cell) == PARKING_RESOLUTION


def level_of(p_any: float) -> Availability:
    if p_any >= HIGH_P_ANY:
        return Availability.HIGH
    if p_any >= MEDIUM_P_ANY:
        return Availability.MEDIUM
    return Availability.LOW


@dataclass
class ParkingView:
    """The latest record of each cell, as a compacted topic keeps it."""

    floor: float = P_FLOOR
    trend_window_s: float = TREND_WINDOW_S
    cells: dict[str, ParkingCell] = field(default_factory=dict)
    _places: dict[str, _Place] = field(default_factory=dict)

    def take(self, record: ParkingCell) -> bool:
        """Hold ``record`` (of a cell that ``is_parking_cell``) in place of its cell's; False
        when it is older than the one held (read again after a restart, or out of order)."""
        held = self.cells.get(record.cell)
        if held is not None and record.ts < held.ts:
            return False
        self.cells[record.cell] = record
        if record.cell not in self._places:
            self._places[record.cell] = _place_of(record.cell)
        return True

    def forget(self, cell: str) -> bool:
        """A tombstone: the cell is gone from the topic."""
        self._places.pop(cell, None)
        return self.cells.pop(cell, None) is not None

    def near(
        self, lat: float, lon: float, radius_m: float, now_ms: int, limit: int
    ) -> ParkingNearby:
        """The spots within ``radius_m`` of (lat, lon) likelier free than the floor at
        ``now_ms``, best first, and the summary of the cells reaching into that circle (over
        every such spot, not only the ``limit`` listed)."""
        area: list[ParkingCell] = []
        found: list[SpotNearby] = []
        for cell, record in self.cells.items():
            place = self._places[cell]
            to_centre = distance_m(lat, lon, place.latitude, place.longitude)
            if to_centre > radius_m + place.reach_m + _SPOT_DRIFT_M:
                continue
            listed = len(found)
            for spot in record.spots:
                nearby = self._nearby(spot, cell, lat, lon, now_ms)
                if nearby.distance_m <= radius_m and nearby.p_free >= self.floor:
                    found.append(nearby)
            if to_centre <= radius_m + place.reach_m or len(found) > listed:
                area.append(record)
        found.sort(key=lambda s: (-s.score, s.distance_m, s.spot.spot_id))
        return ParkingNearby(now_ms, found[:limit], self._summary(area, found, now_ms))

    @staticmethod
    def _nearby(spot: ParkingSpot, cell: str, lat: float, lon: float, now_ms: int) -> SpotNearby:
        p_free = spot.p_free(now_ms)
        distance = distance_m(lat, lon, spot.latitude, spot.longitude)
        age_s = max(0.0, (now_ms - spot.observed_ts) / 1000)
        return SpotNearby(spot, cell, p_free, age_s, distance, score(p_free, distance))

    def _summary(
        self, area: list[ParkingCell], found: list[SpotNearby], now_ms: int
    ) -> AreaSummary:
        p_none = math.prod(1.0 - s.p_free for s in found)
        # a cell written last before the window saw no spot freed or taken since
        window_start = now_ms - self.trend_window_s * 1000
        recent = [record for record in area if record.ts >= window_start]
        p_any = 1.0 - p_none
        return AreaSummary(
            cells=len(area),
            free_estimate=math.fsum(s.p_free for s in found),
            p_any=p_any,
            level=level_of(p_any),
            trend=trend_of(sum(r.freed for r in recent), sum(r.taken for r in recent)),
            no_parking=sum(record.no_parking for record in area),
            lifetime_s=statistics.median(r.lifetime_s for r in area) if area else None,
            updated_at=max((record.ts for record in area), default=None),
        )


def _place_of(cell: str) -> _Place:
    latitude, longitude = h3.cell_to_latlng(cell)
    reach = max(distance_m(latitude, longitude, *corner) for corner in h3.cell_to_boundary(cell))
    return _Place(latitude, longitude, reach)
