"""Geofence geometry, pure: a fence's shape checked and compiled, and the book of fences in force.

A polygon is drawn in WGS 84 degrees and judged in metres: projected around its own centre
(equirectangular, exact enough within ``MAX_EXTENT_M``), checked by GEOS (shapely) for what the
OGC calls valid (closed, not self-intersecting), and prepared with a copy grown by the band, so
a fix costs two point-in-polygon tests. A circle is a centre and a great-circle distance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import shapely
from shapely import STRtree

from fleetlink.contracts.geo import distance_m
from fleetlink.contracts.geofences import (
    MAX_EXTENT_M,
    MAX_VERTICES,
    MIN_AREA_M2,
    FenceCircle,
    GeofenceDefinition,
    GeoJsonPolygon,
)

_M_PER_DEGREE: Final = 111_320.0


class Where(Enum):
    INSIDE = "inside"
    BAND = "band"  # outside, but within the band: changes nothing
    OUTSIDE = "outside"  # farther than the band


class GeometryError(ValueError):
    """Why a fence's shape cannot be used (said to whoever drew it)."""


@dataclass(frozen=True)
class _Projection:
    lat0: float
    lon0: float

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        x = (lon - self.lon0) * _M_PER_DEGREE * math.cos(math.radians(self.lat0))
        return x, (lat - self.lat0) * _M_PER_DEGREE


class Fence:
    """One fence, compiled: where a fix is against it, and its box (degrees, band included)."""

    def __init__(self, definition: GeofenceDefinition, band_m: float) -> None:
        self.definition = definition
        self.fence_id = definition.fence_id
        self._vins = None if definition.vins is None else frozenset(definition.vins)
        self._band_m = band_m
        self._circle = definition.circle
        if definition.circle is not None:
            self._projection = _Projection(definition.circle.latitude, definition.circle.longitude)
            reach = definition.circle.radius_m + band_m
            self.box = _box_around(definition.circle.latitude, definition.circle.longitude, reach)
            return
        if definition.polygon is None:
            raise GeometryError("a fence is a circle or a polygon")
        self._projection, shape = _polygon(definition.polygon)
        self._shape = shape
        self._grown = shape.buffer(band_m)
        shapely.prepare(self._shape)
        shapely.prepare(self._grown)
        self.box = _box_of(definition.polygon, band_m)

    def applies_to(self, vin: str) -> bool:
        return self._vins is None or vin in self._vins

    def where(self, lat: float, lon: float) -> Where:
        if self._circle is not None:
            away = distance_m(self._circle.latitude, self._circle.longitude, lat, lon)
            if away <= self._circle.radius_m:
                return Where.INSIDE
            return Where.BAND if away <= self._circle.radius_m + self._band_m else Where.OUTSIDE
        x, y = self._projection.xy(lat, lon)
        if shapely.contains_xy(self._shape, x, y):
            return Where.INSIDE
        return Where.BAND if shapely.contains_xy(self._grown, x, y) else Where.OUTSIDE


def check_fence(definition: GeofenceDefinition) -> None:
    """Raise ``GeometryError`` naming what is wrong with the fence's shape."""
    if (definition.circle is None) == (definition.polygon is None):
        raise GeometryError("give a circle or a polygon, one of the two")
    if definition.polygon is not None:
        _polygon(definition.polygon)
    if definition.circle is not None:
        _circle(definition.circle)


def _circle(circle: FenceCircle) -> None:
    if abs(circle.latitude) + circle.radius_m / _M_PER_DEGREE >= 90:
        raise GeometryError("a circle may not reach a pole")


def _polygon(polygon: GeoJsonPolygon) -> tuple[_Projection, Any]:
    rings = polygon.coordinates
    if not rings:
        raise GeometryError("a polygon has an outer ring")
    if sum(len(ring) for ring in rings) > MAX_VERTICES:
        raise GeometryError(f"a polygon has at most {MAX_VERTICES} positions over all its rings")
    for number, ring in enumerate(rings):
        _ring(number, ring)
    lons = [p[0] for p in rings[0]]
    lats = [p[1] for p in rings[0]]
    projection = _Projection((min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2)
    projected = [[projection.xy(p[1], p[0]) for p in ring] for ring in rings]
    shape = shapely.Polygon(projected[0], projected[1:])
    problem = shapely.is_valid_reason(shape)
    if problem != "Valid Geometry":
        raise GeometryError(f"the polygon is not valid: {_plain(problem, projection)}")
    west, south, east, north = shape.bounds
    if max(east - west, north - south) > MAX_EXTENT_M:
        raise GeometryError(f"a polygon fits in {MAX_EXTENT_M / 1000:g} km")
    if shape.area < MIN_AREA_M2:
        raise GeometryError(f"a polygon covers at least {MIN_AREA_M2:g} m²")
    return projection, shape


def _ring(number: int, ring: list[list[float]]) -> None:
    name = "the outer ring" if number == 0 else f"hole {number}"
    if len(ring) < 4:
        raise GeometryError(f"{name} has at least 4 positions (3 corners and the first again)")
    for position in ring:
        if len(position) not in (2, 3):
            raise GeometryError(f"{name}: a position is [longitude, latitude]")
        lon, lat = position[0], position[1]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90) or not all(map(math.isfinite, position)):
            raise GeometryError(
                f"{name}: [{lon}, {lat}] is out of range (lon -180..180, lat -90..90)"
            )
    if ring[0][:2] != ring[-1][:2]:
        raise GeometryError(f"{name} is not closed: its last position must repeat its first")


def _plain(reason: str, projection: _Projection) -> str:
    """GEOS's reason, with its point (metres in the projection) back in degrees."""
    head, _, point = reason.partition("[")
    try:
        x, y = (float(v) for v in point.rstrip("]").split())
    except ValueError:
        return reason
    lat = projection.lat0 + y / _M_PER_DEGREE
    lon = projection.lon0 + x / (_M_PER_DEGREE * math.cos(math.radians(projection.lat0)))
    return f"{head.strip()} near [{lon:.6f}, {lat:.6f}]"


def _box_around(lat: float, lon: float, reach_m: float) -> tuple[float, float, float, float]:
    dlat = reach_m / _M_PER_DEGREE
    dlon = reach_m / (_M_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    return (lon - dlon, lat - dlat, lon + dlon, lat + dlat)


def _box_of(polygon: GeoJsonPolygon, band_m: float) -> tuple[float, float, float, float]:
    lons = [p[0] for p in polygon.coordinates[0]]
    lats = [p[1] for p in polygon.coordinates[0]]
    dlat = band_m / _M_PER_DEGREE
    dlon = band_m / (_M_PER_DEGREE * max(math.cos(math.radians(max(map(abs, lats)))), 0.01))
    return (min(lons) - dlon, min(lats) - dlat, max(lons) + dlon, max(lats) + dlat)


class FenceIndex:
    """The fences of one moment and a spatial index of their boxes: never changed once made."""

    def __init__(self, fences: Mapping[str, Fence]) -> None:
        self.fences = dict(fences)
        self._order = list(self.fences.values())
        self._tree = STRtree([shapely.box(*f.box) for f in self._order]) if self._order else None

    def near(self, vin: str, lat: float, lon: float) -> list[Fence]:
        """The fences of ``vin`` whose box (band included) holds the point."""
        if self._tree is None:
            return []
        hits = self._tree.query(shapely.Point(lon, lat))
        return [self._order[i] for i in hits if self._order[i].applies_to(vin)]


class FenceBook:
    """The fences in force. Changed by one thread (the topic's reader), read by another (the
    app's) without a lock: each change makes a new index, swapped in whole."""

    def __init__(self, band_m: float) -> None:
        self.band_m = band_m
        self._index = FenceIndex({})

    def change(self, put: Iterable[GeofenceDefinition], removed: Iterable[str] = ()) -> None:
        """Put these fences (a bad shape raises ``GeometryError`` before anything changes) and
        remove those."""
        compiled = [Fence(definition, self.band_m) for definition in put]
        fences = dict(self._index.fences)
        for fence_id in removed:
            fences.pop(fence_id, None)
        fences.update((fence.fence_id, fence) for fence in compiled)
        self._index = FenceIndex(fences)

    def now(self) -> FenceIndex:
        """The fences in force now: one reader's view for as long as it holds it."""
        return self._index

    def __len__(self) -> int:
        return len(self._index.fences)
