"""The simulator's truth about curb parking, pure: every spot it laid out, and which were free
when. A parking finder's estimates are scored against it."""

from __future__ import annotations

import bisect

import msgspec


class CurbSpot(msgspec.Struct, frozen=True):
    """A car-length stretch of curb along the right of a SUMO edge; ``latitude``/``longitude``
    its middle, ``heading_deg`` the edge's direction of travel there."""

    spot_id: str
    edge: str
    offset_m: float  # where it starts along the edge
    length_m: float
    latitude: float
    longitude: float
    heading_deg: float
    no_parking: bool = False  # a driveway or bus stop: nobody parks there, it always looks free


class CurbTruth(msgspec.Struct, frozen=True):
    """Every spot, and which parking spots (never the no-parking ones) were free, sampled every
    ``every_s`` simulated seconds: ``snapshots`` of (event time ms, free spot ids), in order."""

    spots: dict[str, CurbSpot]
    snapshots: list[tuple[int, frozenset[str]]]
    every_s: float

    def free_at(self, ts_ms: int) -> frozenset[str] | None:
        """The free spots of the last snapshot at or before ``ts_ms``; None before the first."""
        index = bisect.bisect_right([ts for ts, _ in self.snapshots], ts_ms) - 1
        return self.snapshots[index][1] if index >= 0 else None
