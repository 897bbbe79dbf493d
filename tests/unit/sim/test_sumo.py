"""SUMO mode: the network is generated offline, and the same seed drives the same traffic."""

from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

import pytest

from fleetlink.contracts.models import EventKind
from fleetlink.sim.curb import GapReport, ParkingPlan, Stay
from fleetlink.sim.sumo import GRID_JUNCTIONS, SumoFleet, generate_network


def test_network_is_generated_offline_with_traffic_lights(tmp_path: Path) -> None:
    net = generate_network(tmp_path, seed=4)
    root = ElementTree.parse(net).getroot()  # noqa: S314 - our own generated file
    junctions = [j for j in root.iter("junction") if j.get("type") != "internal"]
    assert len(junctions) == GRID_JUNCTIONS**2
    assert len(list(root.iter("tlLogic"))) > GRID_JUNCTIONS**2 // 2
    assert len([e for e in root.iter("edge") if e.get("function") != "internal"]) > 100


def test_same_seed_same_traffic(tmp_path: Path) -> None:
    def drive(seed: int, workdir: Path) -> list[tuple[float, float, float]]:
        fleet = SumoFleet(40, seed, workdir)
        try:
            for _ in range(30):
                fleet.step(2.0)
            return [(car.x_m, car.y_m, car.speed_ms) for car in fleet.cars]
        finally:
            fleet.close()

    first = drive(9, tmp_path / "a")
    assert first == drive(9, tmp_path / "b")
    assert first != drive(10, tmp_path / "c")
    assert sum(1 for x, y, _speed in first if (x, y) != (0.0, 0.0)) == 40  # all on the map


QUICK_PARKING = ParkingPlan(trip_s=(0.0, 0.0), stays=(Stay(1.0, 60.0, 120.0),))


def test_cars_park_between_trips_on_free_spots_and_see_gaps_only_slowly(tmp_path: Path) -> None:
    fleet = SumoFleet(60, 3, tmp_path, parking=QUICK_PARKING)
    try:
        assert fleet.curb is not None
        holder: dict[str, int] = {}  # spot -> the fleet car on it
        kinds: Counter[EventKind] = Counter()
        gaps: list[GapReport] = []
        fastest_kmh = 0.0
        for _ in range(300):
            fleet.step(1.0)
            changes, seen = fleet.take_parking_reports()
            for car, kind, spot in changes:
                kinds[kind] += 1
                if kind is EventKind.PARKED:
                    assert spot.spot_id not in holder  # never two cars on one spot
                    assert not spot.no_parking
                    holder[spot.spot_id] = car
                else:
                    assert holder.pop(spot.spot_id) == car
            assert set(holder) == fleet.curb.occupied_by_fleet()
            for spot_id, car in holder.items():
                if fleet.is_parked(car):
                    assert fleet.cars[car].speed_ms == 0.0
                    spot = fleet.curb.spots[spot_id]
                    assert fleet.position(car) == pytest.approx((spot.latitude, spot.longitude))
            gaps += [gap for _car, gap in seen]
            fastest_kmh = max(fastest_kmh, *(car.speed_ms * 3.6 for car in fleet.cars))
        assert kinds[EventKind.PARKED] >= 25  # the 18 parked at the start, and arrivals
        assert kinds[EventKind.UNPARKED] >= 10
        assert 0 < fleet.parked_count() < 60
        assert len(gaps) > 50
        assert fastest_kmh > 55  # some drive faster, and see no gaps then
        assert max(gap.speed_kmh for gap in gaps) <= 55.0
        assert all(len(gap.spots) >= 1 and gap.length_m > 3 for gap in gaps)
    finally:
        fleet.close()


def test_parking_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    def park(seed: int, workdir: Path) -> list[object]:
        fleet = SumoFleet(30, seed, workdir, parking=QUICK_PARKING)
        try:
            happened: list[object] = []
            for _ in range(120):
                fleet.step(1.0)
                changes, gaps = fleet.take_parking_reports()
                happened += [*changes, *gaps]
            return happened
        finally:
            fleet.close()

    first = park(4, tmp_path / "a")
    assert len(first) > 20
    assert first == park(4, tmp_path / "b")
    assert first != park(5, tmp_path / "c")
