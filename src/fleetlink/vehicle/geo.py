"""Which ``geo/{cell}/warnings`` topics a vehicle listens to, as it moves."""

from __future__ import annotations

import h3

from fleetlink.contracts.topics import GEO_WARNING_RESOLUTION, GEO_WARNING_RING


def cell_of(latitude: float, longitude: float) -> str:
    """The warning cell (H3, resolution ``GEO_WARNING_RESOLUTION``) of a position."""
    return str(h3.latlng_to_cell(latitude, longitude, GEO_WARNING_RESOLUTION))


def warning_cells(latitude: float, longitude: float) -> frozenset[str]:
    """The H3 cell under the vehicle and the ring around it."""
    return frozenset(h3.grid_disk(cell_of(latitude, longitude), GEO_WARNING_RING))


def subscription_changes(
    current: frozenset[str], wanted: frozenset[str]
) -> tuple[list[str], list[str]]:
    """Cells to subscribe to and cells to leave, sorted (so the order is deterministic)."""
    return sorted(wanted - current), sorted(current - wanted)
