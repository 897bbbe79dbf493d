"""SUMO mode: the network is generated offline, and the same seed drives the same traffic."""

from pathlib import Path
from xml.etree import ElementTree

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
