"""The simulator's truth about curb parking, pure: every spot it laid out, and which were free
when; and ``score``, the parking finder's spots against it (precision, recall, calibration)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import h3
import msgspec

from fleetlink.contracts.geo import distance_m, heading_diff
from fleetlink.contracts.parking import ParkingCell, ParkingSpot


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


class Bin(msgspec.Struct, frozen=True):
    """Spots the finder gave a probability in [low, high): how many were really free."""

    low: float
    high: float
    spots: int
    mean_p: float | None
    free_share: float | None


class ParkingQuality(msgspec.Struct, frozen=True):
    """The finder's spots against the truth, summed over ``queries`` moments: a reported spot
    is right when a free parking spot of the truth lies within the tolerance of its middle on
    the same side of the same street."""

    queries: int
    min_p: float
    reported: int  # spots with p >= min_p
    right: int
    precision: float | None
    truly_free: int  # free parking spots of the truth
    known: int  # ... that a spot with p >= min_p matches
    recall: float | None
    recall_any: float | None  # ... that any spot the finder holds matches
    precision_any: float | None  # of every spot the finder holds, whatever its p
    no_parking_reported: int  # reported spots on a driveway or bus stop (p >= min_p)
    calibration: list[Bin]


def score(
    truth: CurbTruth,
    records: Sequence[ParkingCell],
    *,
    start_ms: int,
    end_ms: int,
    every_s: float = 60.0,
    min_p: float = 0.5,
    floor_p: float = 0.05,
    tolerance_m: float = 10.0,
) -> ParkingQuality:
    """Ask the finder at every ``every_s`` from ``start_ms`` to ``end_ms`` (its view then: the
    latest record of each cell up to that moment, p at that moment) and compare."""
    history: dict[str, list[ParkingCell]] = {}
    for record in records:
        history.setdefault(record.cell, []).append(record)
    index = _SpotIndex(truth)
    tally = _Tally(min_p)
    moment = start_ms
    while moment <= end_ms:
        free = truth.free_at(moment)
        if free is not None:
            held = [
                (spot, spot.p_free(moment))
                for cell in _view(history, moment)
                for spot in cell.spots
            ]
            tally.moment([(s, p) for s, p in held if p >= floor_p], free, index, tolerance_m)
        moment += int(every_s * 1000)
    return tally.result()


def _view(history: dict[str, list[ParkingCell]], moment: int) -> list[ParkingCell]:
    view = []
    for records in history.values():
        at = bisect.bisect_right([r.ts for r in records], moment) - 1
        if at >= 0:
            view.append(records[at])
    return view


class _SpotIndex:
    """The truth's spots by H3 cell, for the spots near a point."""

    _RESOLUTION = 11  # about 25 m across

    def __init__(self, truth: CurbTruth) -> None:
        self.spots = truth.spots
        self._cells: dict[str, list[CurbSpot]] = {}
        for spot in truth.spots.values():
            cell = h3.latlng_to_cell(spot.latitude, spot.longitude, self._RESOLUTION)
            self._cells.setdefault(cell, []).append(spot)

    def near(self, spot: ParkingSpot, tolerance_m: float) -> list[CurbSpot]:
        cell = h3.latlng_to_cell(spot.latitude, spot.longitude, self._RESOLUTION)
        return [
            true
            for near in h3.grid_disk(cell, 1)
            for true in self._cells.get(near, [])
            if distance_m(spot.latitude, spot.longitude, true.latitude, true.longitude)
            <= tolerance_m
            and heading_diff(spot.heading_deg, true.heading_deg) <= _SAME_SIDE_DEG
        ]


_SAME_SIDE_DEG = 45.0
_BINS = (0.05, 0.2, 0.4, 0.5, 0.6, 0.8, 0.9, 1.01)


class _Tally:
    def __init__(self, min_p: float) -> None:
        self.min_p = min_p
        self.queries = self.reported = self.right = self.truly_free = self.known = 0
        self.known_any = self.held = self.held_right = self.no_parking = 0
        self.bins: list[list[float]] = [[0, 0.0, 0] for _ in _BINS[:-1]]  # spots, Σp, free

    def moment(
        self,
        held: list[tuple[ParkingSpot, float]],
        free: frozenset[str],
        index: _SpotIndex,
        tolerance_m: float,
    ) -> None:
        self.queries += 1
        known: set[str] = set()
        known_any: set[str] = set()
        for spot, p in held:
            near = index.near(spot, tolerance_m)
            right = any(true.spot_id in free for true in near)
            matched = {true.spot_id for true in near if true.spot_id in free}
            self.held += 1
            self.held_right += right
            known_any |= matched
            slot = bisect.bisect_right(_BINS, p) - 1
            if 0 <= slot < len(self.bins):
                self.bins[slot][0] += 1
                self.bins[slot][1] += p
                self.bins[slot][2] += right
            if p >= self.min_p:
                self.reported += 1
                self.right += right
                known |= matched
                self.no_parking += any(true.no_parking for true in near) and not right
        self.truly_free += len(free)
        self.known += len(known)
        self.known_any += len(known_any)

    def result(self) -> ParkingQuality:
        return ParkingQuality(
            queries=self.queries,
            min_p=self.min_p,
            reported=self.reported,
            right=self.right,
            precision=_share(self.right, self.reported),
            truly_free=self.truly_free,
            known=self.known,
            recall=_share(self.known, self.truly_free),
            recall_any=_share(self.known_any, self.truly_free),
            precision_any=_share(self.held_right, self.held),
            no_parking_reported=self.no_parking,
            calibration=[
                Bin(
                    low=_BINS[n],
                    high=min(1.0, _BINS[n + 1]),
                    spots=int(spots),
                    mean_p=round(total / spots, 3) if spots else None,
                    free_share=_share(int(free), int(spots)),
                )
                for n, (spots, total, free) in enumerate(self.bins)
            ],
        )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
