"""Places of the contract: warning cells (H3) and the distances and headings between points."""

from __future__ import annotations

import math
from collections.abc import Iterable

import h3

from fleetlink.contracts.topics import GEO_WARNING_RESOLUTION, GEO_WARNING_RING

_M_PER_DEGREE = 111_320.0


def cell_of(latitude: float, longitude: float) -> str:
    """The warning cell (H3, resolution ``GEO_WARNING_RESOLUTION``) of a position."""
    return str(h3.latlng_to_cell(latitude, longitude, GEO_WARNING_RESOLUTION))


def warning_cells(latitude: float, longitude: float) -> frozenset[str]:
    """The H3 cell under a vehicle and the ring around it: where it hears warnings."""
    return frozenset(h3.grid_disk(cell_of(latitude, longitude), GEO_WARNING_RING))


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return float(h3.great_circle_distance((lat1, lon1), (lat2, lon2), unit="m"))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The direction from the first point to the second, degrees clockwise from north."""
    east = (lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return math.degrees(math.atan2(east, lat2 - lat1)) % 360


def heading_diff(a: float, b: float) -> float:
    diff = abs(a - b) % 360
    return min(diff, 360 - diff)


def mean_heading(headings: Iterable[float]) -> float | None:
    """The circular mean of headings; None when they cancel out (or there are none)."""
    x = y = 0.0
    for heading in headings:
        x += math.sin(math.radians(heading))
        y += math.cos(math.radians(heading))
    if math.hypot(x, y) < 1e-6:
        return None
    return round(math.degrees(math.atan2(x, y)) % 360, 1)


def cells_near(
    latitude: float, longitude: float, radius_m: float, resolution: int = GEO_WARNING_RESOLUTION
) -> set[str]:
    """The H3 cells (warning cells unless ``resolution`` says otherwise) within about
    ``radius_m`` of a point (its own and any it nearly touches), from the point and eight
    points on the circle around it."""

    def at(lat: float, lon: float) -> str:
        return str(h3.latlng_to_cell(lat, lon, resolution))

    cells = {at(latitude, longitude)}
    per_degree_lon = _M_PER_DEGREE * max(0.01, math.cos(math.radians(latitude)))
    for step in range(8):
        angle = math.radians(step * 45)
        lat = latitude + radius_m * math.cos(angle) / _M_PER_DEGREE
        lon = longitude + radius_m * math.sin(angle) / per_degree_lon
        cells.add(at(max(-90.0, min(90.0, lat)), ((lon + 180) % 360) - 180))
    return cells
