"""The curb model on straight streets: spots, gaps as side sensors see them, background cars
coming and going, fleet cars taking spots, and the truth of which spots were free."""

from __future__ import annotations

import math
import random
import statistics

import msgspec
import pytest

from fleetlink.contracts.models import EventKind
from fleetlink.contracts.parking import CurbSide
from fleetlink.sim.curb import (
    CurbModel,
    GapReport,
    ParkingChange,
    ParkingPlan,
    ParkingReports,
    Stay,
    placed_events,
)
from fleetlink.sim.kinematic import EARTH_RADIUS_M, ORIGIN_LAT, ORIGIN_LON
from fleetlink.sim.parking_trips import ParkingTrips

EDGE_M = 150.0
LANE_HALF_M = 1.6
SPOTS_PER_EDGE = 20  # (150 - 2 x 15) / 6


class Streets:
    """Parallel one-way streets heading north, 100 m apart, ``EDGE_M`` long."""

    def __init__(self, count: int) -> None:
        self.edges = [f"e{n}" for n in range(count)]

    def edge_length(self, edge: str) -> float:
        return EDGE_M

    def curb_xy(self, edge: str, offset_m: float, right_m: float) -> tuple[float, float]:
        return 100.0 * int(edge[1:]) + LANE_HALF_M + right_m, offset_m

    def heading_at(self, edge: str, offset_m: float) -> float:
        return 0.0


def to_xy(lat: float, lon: float) -> tuple[float, float]:
    x = math.radians(lon - ORIGIN_LON) * EARTH_RADIUS_M * math.cos(math.radians(ORIGIN_LAT))
    return x, math.radians(lat - ORIGIN_LAT) * EARTH_RADIUS_M


# free curb everywhere, nobody comes: the tests decide who stands where
EMPTY = ParkingPlan(curb_edge_share=1.0, no_parking_share=0.0, mean_free_s=1e12, mean_stay_s=1e-9)
EXACT = msgspec.structs.replace(
    EMPTY, miss_slow=0.0, miss_fast=0.0, length_sigma_m=0.0, along_sigma_m=0.0, lateral_sigma_m=0.0
)


def curb(plan: ParkingPlan, streets: int = 1, seed: int = 1) -> CurbModel:
    return CurbModel(Streets(streets), plan, random.Random(seed))


def park_all_but(model: CurbModel, edge: str, free: set[int]) -> None:
    for n in range(SPOTS_PER_EDGE):
        if n not in free:
            model.take(f"{edge}/{n}")


def test_spots_lie_along_the_right_curb_clear_of_the_junctions() -> None:
    model = curb(EMPTY, streets=3)
    spots = sorted(model.spots.values(), key=lambda s: (s.edge, s.offset_m))
    assert len(spots) == 3 * SPOTS_PER_EDGE
    first, last = spots[0], spots[SPOTS_PER_EDGE - 1]
    assert (first.spot_id, first.offset_m, first.length_m) == ("e0/0", 15.0, 6.0)
    assert last.offset_m + last.length_m == pytest.approx(135.0)
    x, y = to_xy(first.latitude, first.longitude)
    assert x == pytest.approx(LANE_HALF_M + 1.0, abs=0.01)  # beside the lane, right of it
    assert y == pytest.approx(18.0, abs=0.01)  # its middle
    assert first.heading_deg == 0.0


def test_a_share_of_edges_has_curb_parking_and_a_few_spots_are_driveways() -> None:
    model = curb(ParkingPlan(), streets=400, seed=3)
    edges = {spot.edge for spot in model.spots.values()}
    assert 160 <= len(edges) <= 240  # half of 400
    driveways = sum(spot.no_parking for spot in model.spots.values())
    assert 0.02 <= driveways / len(model.spots) <= 0.04
    assert len(model.parking_ids) == len(model.spots) - driveways


def test_a_run_of_free_spots_is_one_gap_of_its_length() -> None:
    model = curb(EXACT)
    park_all_but(model, "e0", {5, 6, 7})
    rng = random.Random(1)
    [gap] = model.scan("e0", 0.0, EDGE_M, 30.0, rng)
    assert gap.spots == ("e0/5", "e0/6", "e0/7")
    assert gap.length_m == pytest.approx(18.0)
    x, y = to_xy(gap.latitude, gap.longitude)
    assert y == pytest.approx(15 + 5 * 6 + 9, abs=0.01)
    assert x == pytest.approx(LANE_HALF_M + 1.0, abs=0.01)
    assert (gap.side, gap.heading_deg, gap.speed_kmh) == (CurbSide.RIGHT, 0.0, 30.0)


def test_a_gap_is_reported_once_passed_whole() -> None:
    model = curb(EXACT)
    park_all_but(model, "e0", {5, 6, 7})  # 45 m to 63 m
    rng = random.Random(1)
    assert model.scan("e0", 0.0, 60.0, 30.0, rng) == []  # its end is still ahead
    assert model.scan("e0", 50.0, 70.0, 30.0, rng) == []  # its start was passed unseen
    [gap] = model.scan("e0", 50.0, 70.0, 30.0, rng, seen_from_m=40.0)
    assert gap.length_m == pytest.approx(18.0)
    assert model.scan("e0", 63.0, 80.0, 30.0, rng, seen_from_m=40.0) == []  # reported already


def test_the_side_sensors_measure_nothing_above_55_kmh() -> None:
    model = curb(EXACT)
    park_all_but(model, "e0", {10})
    rng = random.Random(1)
    assert model.scan("e0", 0.0, EDGE_M, 55.1, rng) == []
    assert len(model.scan("e0", 0.0, EDGE_M, 55.0, rng)) == 1


def test_a_driveway_looks_free_but_nobody_parks_there_and_the_truth_leaves_it_out() -> None:
    plan = ParkingPlan(curb_edge_share=1.0, no_parking_share=1.0)
    model = curb(plan)
    assert model.parking_ids == []
    [gap] = model.scan("e0", 0.0, EDGE_M, 20.0, random.Random(2))
    assert len(gap.spots) == SPOTS_PER_EDGE  # the whole curb is one free stretch
    with pytest.raises(ValueError, match="not free"):
        model.take("e0/3")
    assert model.truth(0).snapshots == [(0, frozenset())]


def test_misses_and_noise_stay_within_bounds() -> None:
    streets = 50
    model = curb(EMPTY, streets=streets)
    edges = sorted({spot.edge for spot in model.spots.values()})
    for edge in edges:
        park_all_but(model, edge, set(range(1, SPOTS_PER_EDGE, 2)))  # every other spot free
    rng = random.Random(5)

    def passes(speed_kmh: float, rounds: int) -> tuple[float, list[GapReport]]:
        gaps = [
            gap
            for _ in range(rounds)
            for edge in edges
            for gap in model.scan(edge, 0.0, EDGE_M, speed_kmh, rng)
        ]
        there = rounds * streets * SPOTS_PER_EDGE // 2
        return 1 - len(gaps) / there, gaps

    missed_slow, slow = passes(10.0, 4)
    missed_fast, fast = passes(50.0, 4)
    assert 0.04 <= missed_slow <= 0.08  # 5 % plus a little at 10 km/h
    assert 0.075 <= missed_fast <= 0.12  # about 9.5 % at 50 km/h
    assert missed_fast > missed_slow
    gaps = slow + fast
    length_errors = [gap.length_m - 6.0 for gap in gaps]
    along_errors, lateral_errors = [], []
    for gap in gaps:
        spot = model.spots[gap.spots[0]]
        x, y = to_xy(gap.latitude, gap.longitude)
        along_errors.append(y - (spot.offset_m + 3.0))
        lateral_errors.append(x - 100.0 * int(spot.edge[1:]) - LANE_HALF_M - 1.0)
    assert abs(statistics.mean(length_errors)) < 0.03
    assert 0.27 <= statistics.stdev(length_errors) <= 0.33
    assert abs(statistics.mean(along_errors)) < 0.2
    assert 2.3 <= statistics.stdev(along_errors) <= 2.7
    assert max(abs(e) for e in along_errors) < 6 * 2.5
    assert 0.9 <= statistics.stdev(lateral_errors) <= 1.1


def test_background_cars_come_and_go_at_the_configured_rates() -> None:
    plan = ParkingPlan(curb_edge_share=1.0, no_parking_share=0.0, truth_every_s=10.0)
    model = curb(plan, streets=100, seed=8)
    spots = len(model.parking_ids)
    for t in range(10, 4 * 3600 + 1, 10):
        model.advance(float(t))
    free_s = taken_s = 0.0
    freed = taken = 0
    for (_t, before), (_t2, after) in zip(model.snapshots, model.snapshots[1:], strict=False):
        free_s += 10 * len(before)
        taken_s += 10 * (spots - len(before))
        taken += len(before - after)
        freed += len(after - before)
    steady = plan.mean_free_s / (plan.mean_free_s + plan.mean_stay_s)  # 11 % free
    assert len(model.snapshots[0][1]) / spots == pytest.approx(steady, abs=0.02)
    assert len(model.snapshots[-1][1]) / spots == pytest.approx(steady, abs=0.02)
    assert free_s / taken == pytest.approx(plan.mean_free_s, rel=0.12)
    assert taken_s / freed == pytest.approx(plan.mean_stay_s, rel=0.12)


def test_a_spot_a_fleet_car_holds_is_nobody_elses_until_it_leaves() -> None:
    plan = ParkingPlan(curb_edge_share=1.0, no_parking_share=0.0, mean_free_s=60, mean_stay_s=60)
    model = curb(plan, streets=2, seed=4)
    spot = next(s for s in model.parking_ids if model.parkable(s))
    model.take(spot)
    assert not model.parkable(spot)
    assert model.occupied_by_fleet() == {spot}
    with pytest.raises(ValueError, match="not free"):
        model.take(spot)
    for t in range(1, 1801):
        model.advance(float(t))
        assert not model.looks_free(spot)  # no non-fleet car arrives, none leaves
    model.release(spot)
    assert model.parkable(spot)
    assert model.occupied_by_fleet() == frozenset()
    for t in range(1801, 2401):
        model.advance(float(t))
    after_release = [free for t, free in model.snapshots if t > 1800]
    assert any(spot not in free for free in after_release)  # someone else parked there since
    assert all(spot not in free for t, free in model.snapshots if 0 < t <= 1800)


def test_the_truth_is_sampled_every_so_often_in_event_time() -> None:
    plan = ParkingPlan(curb_edge_share=1.0, no_parking_share=0.0, truth_every_s=10.0)
    model = curb(plan, seed=2)
    free = next(s for s in model.parking_ids if model.parkable(s))
    model.take(free)
    for t in range(1, 101):
        model.advance(float(t))
    truth = model.truth(start_ms=1_000_000)
    assert [ts for ts, _ in truth.snapshots] == [1_000_000 + 10_000 * n for n in range(11)]
    assert all(free not in spots for _, spots in truth.snapshots[1:])
    assert truth.snapshots[-1][1] == {s for s in model.parking_ids if model.parkable(s)}
    assert truth.free_at(1_045_000) == truth.snapshots[4][1]
    assert truth.free_at(999_999) is None
    assert set(truth.spots) == set(model.spots)
    quiet = curb(ParkingPlan(curb_edge_share=1.0, truth_every_s=0), seed=2)
    quiet.advance(100.0)
    assert quiet.snapshots == []


def test_events_place_a_parked_car_on_its_spot_and_a_gap_where_it_was_measured() -> None:
    model = curb(EXACT)
    spot = model.spots["e0/4"]
    gap = GapReport(52.5, 13.4, 7.9, 90.0, 31.0, ("e0/4",))
    changes = [ParkingChange(3, EventKind.PARKED, spot), ParkingChange(3, EventKind.UNPARKED, spot)]
    events = placed_events(ParkingReports(changes, [(7, gap)]), car_length_m=4.5)
    (car, parked), (_, unparked), (gap_car, seen) = events
    assert (car, parked.kind, parked.data, parked.speed_kmh) == (3, "parked", {"length_m": 4.5}, 0)
    assert (parked.latitude, parked.longitude) == (spot.latitude, spot.longitude)
    assert unparked.kind is EventKind.UNPARKED
    assert (gap_car, seen.kind, seen.data) == (7, "parking-gap", {"length_m": 7.9, "side": "right"})
    assert (seen.latitude, seen.longitude, seen.heading_deg, seen.speed_kmh) == (
        52.5,
        13.4,
        90.0,
        31.0,
    )


def test_stays_mix_errands_visits_and_nights() -> None:
    plan = ParkingPlan(curb_edge_share=1.0, stays=(Stay(0.5, 300, 1800), Stay(0.5, 3600, 7200)))
    trips = ParkingTrips(curb(plan), plan, random.Random(3))
    stays = [trips.stay_s() for _ in range(4000)]
    assert all(300 <= s <= 1800 or 3600 <= s <= 7200 for s in stays)
    assert sum(s <= 1800 for s in stays) / len(stays) == pytest.approx(0.5, abs=0.04)
