"""The simulator's truth about trips, pure: each trip a car drove from the curb spot it left to
the one it parked on; and ``score_trips``, the fleet app's trips against it."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import msgspec

from fleetlink.contracts.fleet import Trip


class TrueTrip(msgspec.Struct, frozen=True):
    """A car left the curb at ``start_ms`` and parked at ``end_ms``, ``distance_km`` later."""

    vin: str
    start_ms: int
    end_ms: int
    distance_km: float


class TripQuality(msgspec.Struct, frozen=True):
    """Found trips against true ones that lie whole in the window scored: a true trip is found
    when a closed trip of its car starts and ends within ``tolerance_s`` of it."""

    true_trips: int
    found_trips: int  # closed trips of the app that lie whole in the window
    matched: int
    recall: float | None  # of the true trips, the share found
    precision: float | None  # of the trips found, the share that are true ones
    distance_within: float | None  # of the matched, the share whose distance is within 2 %
    start_error_s: list[float]  # median and largest, of the matched
    end_error_s: list[float]
    distance_error: list[float]  # median and largest relative error, of the matched


def score_trips(
    truth: Sequence[TrueTrip],
    found: Sequence[Trip],
    *,
    start_ms: int,
    end_ms: int,
    tolerance_s: float = 30.0,
    distance_share: float = 0.02,
) -> TripQuality:
    """The app's closed trips against the truth, over the trips that started at or after
    ``start_ms`` and ended by ``end_ms`` (a trip cut by the window's edges is left out)."""
    tolerance_ms = tolerance_s * 1000
    true = [t for t in truth if t.start_ms >= start_ms and t.end_ms <= end_ms]
    closed = [
        t
        for t in found
        if t.end_ts is not None and t.start_ts >= start_ms - tolerance_ms and t.end_ts <= end_ms
    ]
    by_vin: dict[str, list[Trip]] = {}
    for trip in closed:
        by_vin.setdefault(trip.vin, []).append(trip)
    used: set[str] = set()
    starts, ends, distances = [], [], []
    for real in true:
        match = next(
            (
                t
                for t in by_vin.get(real.vin, [])
                if t.trip_id not in used
                and abs(t.start_ts - real.start_ms) <= tolerance_ms
                and abs((t.end_ts or 0) - real.end_ms) <= tolerance_ms
            ),
            None,
        )
        if match is None:
            continue
        used.add(match.trip_id)
        starts.append(abs(match.start_ts - real.start_ms) / 1000)
        ends.append(abs((match.end_ts or 0) - real.end_ms) / 1000)
        distances.append(abs(match.distance_km - real.distance_km) / max(real.distance_km, 1e-3))
    in_window = [t for t in closed if t.start_ts >= start_ms]
    return TripQuality(
        true_trips=len(true),
        found_trips=len(in_window),
        matched=len(used),
        recall=_share(len(used), len(true)),
        precision=_share(len([t for t in in_window if t.trip_id in used]), len(in_window)),
        distance_within=_share(sum(1 for d in distances if d <= distance_share), len(used)),
        start_error_s=_spread(starts),
        end_error_s=_spread(ends),
        distance_error=_spread(distances),
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _spread(values: list[float]) -> list[float]:
    return [round(statistics.median(values), 4), round(max(values), 4)] if values else []
