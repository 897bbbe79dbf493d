"""Scoring found trips against true ones, pure: exact counts and errors."""

from __future__ import annotations

from fleetlink.contracts.fleet import Trip, TripEnd
from fleetlink.sim.trip_truth import TrueTrip, score_trips

T0 = 1_800_000_000_000
A, B = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"


def found(vin: str, start_s: float, end_s: float | None, km: float) -> Trip:
    return Trip(
        trip_id=f"{vin}-{start_s}",
        vin=vin,
        start_ts=T0 + int(start_s * 1000),
        end_ts=None if end_s is None else T0 + int(end_s * 1000),
        ended_by=None if end_s is None else TripEnd.STOPPED,
        distance_km=km,
    )


def true(vin: str, start_s: float, end_s: float, km: float) -> TrueTrip:
    return TrueTrip(vin, T0 + int(start_s * 1000), T0 + int(end_s * 1000), km)


def test_found_trips_match_true_ones_within_30_s_and_2_percent() -> None:
    truth = [
        true(A, 100, 900, 10.0),
        true(A, 1000, 1600, 5.0),
        true(B, 200, 700, 8.0),
        true(B, 3000, 3500, 4.0),  # ends after the window
    ]
    trips = [
        found(A, 104, 890, 10.1),  # 1 % off: within
        found(A, 1040, 1600, 5.0),  # starts 40 s late: no match
        found(B, 199, 702, 8.4),  # 5 % off: matched, not within
        found(B, 2000, 2100, 1.0),  # no true trip
        found(B, 2500, None, 0.0),  # open: not counted
    ]
    quality = score_trips(truth, trips, start_ms=T0, end_ms=T0 + 3_000_000)
    assert (quality.true_trips, quality.found_trips, quality.matched) == (3, 4, 2)
    assert (quality.recall, quality.precision, quality.distance_within) == (0.6667, 0.5, 0.5)
    assert quality.start_error_s == [2.5, 4.0]
    assert quality.end_error_s == [6.0, 10.0]
    assert quality.distance_error == [0.03, 0.05]
