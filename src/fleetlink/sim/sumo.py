"""Realistic movement from Eclipse SUMO: a generated city grid with traffic lights, driven by
libsumo, placed over Berlin Mitte. Deterministic for a seed; runs offline.

``netgenerate`` builds the network; every car gets a random destination and a new one when it
arrives, so the fleet keeps driving. One SUMO simulation per process (libsumo is a singleton).
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import libsumo
import sumo

from fleetlink.errors import FleetlinkError
from fleetlink.sim.kinematic import Car, to_lat_lon

GRID_JUNCTIONS = 12
BLOCK_M = 150.0
# SUMO's drivers never brake harder than their type's ``decel``: most brake as people do at a
# light (3.0 m/s², near the 3.4 traffic engineers assume), a brisk tenth at 4.5 (harsh-braking
# events at lights, as real fleets see them); only a scenario makes anyone brake harder
DRIVER_TYPES = (("calm", 3.0, 0.9), ("brisk", 4.5, 0.1))  # type id, decel m/s², share


def sumo_binary(name: str) -> Path:
    return Path(sumo.SUMO_HOME) / "bin" / name


def generate_network(workdir: Path, seed: int) -> Path:
    """A grid city with traffic lights at every junction (``netgenerate``, offline)."""
    workdir.mkdir(parents=True, exist_ok=True)
    net = workdir / f"grid-{seed}.net.xml"
    result = subprocess.run(
        [
            str(sumo_binary("netgenerate")),
            "--grid",
            f"--grid.number={GRID_JUNCTIONS}",
            f"--grid.length={BLOCK_M}",
            "--default.lanenumber=2",
            "--default.speed=13.89",
            "--default-junction-type=traffic_light",
            f"--seed={seed}",
            "--no-turnarounds=false",
            f"--output-file={net}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SUMO_HOME": sumo.SUMO_HOME},
    )
    if result.returncode != 0:
        raise FleetlinkError(f"netgenerate failed: {result.stderr.strip()[-300:]}")
    return net


class SumoFleet:
    """``count`` cars driving the SUMO network; same interface as ``KinematicFleet``."""

    def __init__(self, count: int, seed: int, workdir: Path) -> None:
        self._rng = random.Random(seed)
        net = generate_network(workdir, seed)
        libsumo.start(
            [
                "sumo",
                "--net-file", str(net),
                "--step-length", "1",
                "--seed", str(seed),
                "--no-step-log", "true",
                "--no-warnings", "true",
                "--time-to-teleport", "120",
                "--collision.action", "none",
            ]
        )  # fmt: skip
        self.edges = sorted(e for e in libsumo.edge.getIDList() if not e.startswith(":"))
        for type_id, decel, _share in DRIVER_TYPES:
            libsumo.vehicletype.copy("DEFAULT_VEHTYPE", type_id)
            libsumo.vehicletype.setDecel(type_id, decel)
            libsumo.vehicletype.setApparentDecel(type_id, decel)
        self._ids = [f"car{index}" for index in range(count)]
        shares = [share for *_, share in DRIVER_TYPES]
        self._types = self._rng.choices([t for t, *_ in DRIVER_TYPES], shares, k=count)
        self.cars = [Car(x_m=0.0, y_m=0.0, target=(0, 0)) for _ in range(count)]
        self._last_distance = [0.0] * count
        self._present: set[str] = set()
        for vehicle_id in self._ids:
            start, goal = self._rng.sample(self.edges, 2)
            self._add(vehicle_id, start, goal, depart_pos="random")
        libsumo.simulationStep()
        self._read()

    def _add(self, vehicle_id: str, start: str, goal: str, depart_pos: str = "base") -> None:
        route_id = f"{vehicle_id}-{self._rng.getrandbits(32)}"
        libsumo.route.add(route_id, [start])
        type_id = self._types[int(vehicle_id.removeprefix("car"))]
        libsumo.vehicle.add(
            vehicle_id, route_id, typeID=type_id, departPos=depart_pos, departSpeed="max"
        )
        libsumo.vehicle.changeTarget(vehicle_id, goal)

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds in 1 s SUMO steps; a car that arrived drives on elsewhere."""
        for _ in range(max(1, round(dt))):
            libsumo.simulationStep()
            for vehicle_id in libsumo.simulation.getArrivedIDList():
                car_index = int(vehicle_id.removeprefix("car"))
                arrived_on = self._arrival_edge(car_index)
                goal = self._rng.choice([e for e in self.edges if e != arrived_on])
                self._add(vehicle_id, arrived_on, goal)
            self._read()

    def _arrival_edge(self, index: int) -> str:
        car = self.cars[index]
        return self._nearest_edge(car.x_m, car.y_m)

    def _nearest_edge(self, x: float, y: float) -> str:
        edge, _pos, _lane = libsumo.simulation.convertRoad(x, y)
        return str(edge) if edge in self.edges else self._rng.choice(self.edges)

    def _read(self) -> None:
        present = self._present = set(libsumo.vehicle.getIDList())
        for index, vehicle_id in enumerate(self._ids):
            if vehicle_id not in present:
                continue  # departing this step; keep its last known state
            car = self.cars[index]
            car.x_m, car.y_m = libsumo.vehicle.getPosition(vehicle_id)
            car.speed_ms = libsumo.vehicle.getSpeed(vehicle_id)
            car.heading_deg = libsumo.vehicle.getAngle(vehicle_id)
            car.last_decel_ms2 = max(0.0, -libsumo.vehicle.getAcceleration(vehicle_id))
            distance = libsumo.vehicle.getDistance(vehicle_id)
            car.odometer_m += max(0.0, distance - self._last_distance[index])
            self._last_distance[index] = distance if distance >= 0 else 0.0

    def position(self, index: int) -> tuple[float, float]:
        car = self.cars[index]
        return to_lat_lon(car.x_m, car.y_m)

    # for scenarios ------------------------------------------------------------------------------

    def road_of(self, index: int) -> tuple[str, float] | None:
        """The edge a car drives on and how far along it (m); None on a junction or away."""
        vehicle_id = self._ids[index]
        if vehicle_id not in self._present:
            return None
        edge = str(libsumo.vehicle.getRoadID(vehicle_id))
        if edge not in self.edges:
            return None
        return edge, float(libsumo.vehicle.getLanePosition(vehicle_id))

    def edge_length(self, edge: str) -> float:
        return float(libsumo.lane.getLength(f"{edge}_0"))

    def opposite(self, edge: str) -> str | None:
        """The edge of the other direction of the same street, if the street has one."""
        ends = (libsumo.edge.getToJunction(edge), libsumo.edge.getFromJunction(edge))
        return next(
            (
                other
                for other in self.edges
                if (libsumo.edge.getFromJunction(other), libsumo.edge.getToJunction(other)) == ends
            ),
            None,
        )

    def point_on(self, edge: str, offset_m: float) -> tuple[float, float]:
        """Latitude and longitude of the point ``offset_m`` along ``edge``."""
        x, y = libsumo.simulation.convert2D(edge, offset_m, 0)
        return to_lat_lon(x, y)

    def hold(self, index: int, stopped: bool) -> None:
        """Stop a car where it is (it breaks down) and keep it there; or let it drive on."""
        vehicle_id = self._ids[index]
        if vehicle_id in libsumo.vehicle.getIDList():
            libsumo.vehicle.setSpeed(vehicle_id, 0.0 if stopped else -1.0)

    def close(self) -> None:
        libsumo.close()
