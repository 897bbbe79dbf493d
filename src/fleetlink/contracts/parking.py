"""Curb parking: what cars report about it, and the free-spot estimates of ``fleet.parking``.

What cars send (``vehicles/{vin}/events/{kind}``, an ``Event``):

- ``parking-gap``: the side sensors saw a free gap at the curb while driving past it. The event's
  ``latitude``/``longitude`` are the middle of the gap as the car placed it, ``heading_deg`` and
  ``speed_kmh`` the car's while it passed; ``data``: ``length_m`` (the gap's length along the
  curb) and ``side`` (``left`` or ``right`` of the car).
- ``parked`` / ``unparked``: the car came to stand at the curb, or left it. Position and heading
  are where it stands (stood); ``data``: ``length_m``, the car's own length.

What the finder writes: one ``ParkingCell`` per H3 cell (``PARKING_RESOLUTION``) on compacted
``fleet.parking``, each time one of its spots changes. A spot's probability to be free decays with
its age, ``p = exp(-age / lifetime_s)``: a free spot is taken at a constant rate, whose mean
``lifetime_s`` the finder learns per area from the gaps it saw end.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from fleetlink.contracts.models import EpochMillis

PARKING_RESOLUTION: Final = 10  # H3 cells of about 66 m edge: a block face holds two or three

Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]
Heading = Annotated[float, Meta(ge=0, lt=360)]


class CurbSide(StrEnum):
    LEFT = "left"
    RIGHT = "right"


class SpotSource(StrEnum):
    GAP = "gap"  # cars driving past saw it free
    UNPARKED = "unparked"  # a car left it


class Trend(StrEnum):
    """Where an area is going, as HERE and TomTom say it."""

    FILLING_UP = "filling-up"
    EMPTYING = "emptying"
    STABLE = "stable"


class ParkingSpot(msgspec.Struct, frozen=True, omit_defaults=True):
    """A stretch of curb the fleet saw free, last at ``observed_ts``."""

    spot_id: str
    latitude: Latitude
    longitude: Longitude
    heading_deg: Heading  # the direction of travel along this side of the street
    side: CurbSide
    length_m: Annotated[float, Meta(gt=0, le=100)]
    first_ts: EpochMillis  # first seen free (this time)
    observed_ts: EpochMillis  # last seen free
    reporters: int  # distinct cars that saw it free (or left it)
    source: SpotSource
    lifetime_s: Annotated[float, Meta(gt=0)]  # the mean time a free spot here stays free

    def p_free(self, now_ms: int) -> float:
        """The probability it is still free at ``now_ms``."""
        age_s = max(0.0, (now_ms - self.observed_ts) / 1000)
        return math.exp(-age_s / self.lifetime_s)


class ParkingCell(msgspec.Struct, frozen=True, omit_defaults=True):
    """A record of ``fleet.parking`` (key: ``cell``): the free spots the fleet knows of in one
    cell at event time ``ts``, and how the cell's curb has changed in the trailing window."""

    cell: str  # H3, resolution PARKING_RESOLUTION
    ts: EpochMillis
    spots: list[ParkingSpot]
    lifetime_s: float  # the area's mean free-spot lifetime now (learned or the default)
    learned: bool  # whether ``lifetime_s`` was learned from this area's turnover
    freed: int  # spots that became free in the trailing window (gaps found, cars leaving)
    taken: int  # spots that were taken in it (cars parking, gaps found occupied)
    trend: Trend
    no_parking: int = 0  # stretches learned to be no parking spots (driveways), left out


def trend_of(freed: int, taken: int, dead_band: int = 1) -> Trend:
    """More spots taken than freed: filling up; the other way round: emptying."""
    if taken - freed > dead_band:
        return Trend.FILLING_UP
    if freed - taken > dead_band:
        return Trend.EMPTYING
    return Trend.STABLE
