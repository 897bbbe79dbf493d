"""Realistic movement from Eclipse SUMO: a generated city grid with traffic lights, driven by
libsumo, placed over Berlin Mitte. Deterministic for a seed; runs offline.

``netgenerate`` builds the network; every car gets a random destination and a new one when it
arrives, so the fleet keeps driving. With a ``ParkingPlan`` cars park at the curb between trips
instead (``sim.curb``, ``sim.parking_trips``): a parked car is out of SUMO, standing on its spot,
until it drives off on a new trip. One SUMO simulation per process (libsumo is a singleton).
"""

from __future__ import annotations

import math
import os
import random
import subprocess
from collections.abc import Sequence
from pathlib import Path

import libsumo
import sumo

from fleetlink.contracts.models import EventKind
from fleetlink.errors import FleetlinkError
from fleetlink.sim.curb import CurbModel, GapReport, ParkingChange, ParkingPlan, ParkingReports
from fleetlink.sim.kinematic import Car, to_lat_lon
from fleetlink.sim.parking_trips import ParkingTrips
from fleetlink.sim.parking_truth import CurbSpot, CurbTruth
from fleetlink.sim.trip_truth import TrueTrip

GRID_JUNCTIONS = 12
BLOCK_M = 150.0
# SUMO's drivers never brake harder than their type's ``decel``: most brake as people do at a
# light (3.0 m/s², near the 3.4 traffic engineers assume), a brisk tenth at 4.5 (harsh-braking
# events at lights, as real fleets see them); only a scenario makes anyone brake harder. The
# brisk also pull away at up to 3.8 m/s² (SUMO's car: 2.6), now and then a harsh acceleration.
DRIVER_TYPES = (("calm", 3.0, 2.6, 0.9), ("brisk", 4.5, 3.8, 0.1))  # id, decel, accel, share


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
    """``count`` cars driving the SUMO network; same interface as ``KinematicFleet``.

    ``parking``: cars park between trips (None: every car drives all the time).
    """

    def __init__(
        self, count: int, seed: int, workdir: Path, parking: ParkingPlan | None = None
    ) -> None:
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
        for type_id, decel, accel, _share in DRIVER_TYPES:
            libsumo.vehicletype.copy("DEFAULT_VEHTYPE", type_id)
            libsumo.vehicletype.setDecel(type_id, decel)
            libsumo.vehicletype.setApparentDecel(type_id, decel)
            libsumo.vehicletype.setAccel(type_id, accel)
        self._ids = [f"car{index}" for index in range(count)]
        shares = [share for *_, share in DRIVER_TYPES]
        self._types = self._rng.choices([t for t, *_ in DRIVER_TYPES], shares, k=count)
        self.cars = [Car(x_m=0.0, y_m=0.0, target=(0, 0)) for _ in range(count)]
        self._last_distance = [0.0] * count
        self._present: set[str] = set()
        self.elapsed_s = 0
        self.parking = parking
        self.curb: CurbModel | None = None
        self._trips: ParkingTrips | None = None
        self._leaving_at: dict[int, tuple[int, float]] = {}  # car: (second, odometer) it left
        self._true_trips: list[tuple[int, int, int, float]] = []  # car, from, to (s), metres
        if parking is None:
            for vehicle_id in self._ids:
                start, goal = self._rng.sample(self.edges, 2)
                self._add(vehicle_id, start, goal, depart_pos="random")
        else:
            self._start_parking(parking, seed)
        libsumo.simulationStep()
        self._read()

    def _start_parking(self, plan: ParkingPlan, seed: int) -> None:
        self._parking_rng = rng = random.Random(f"{seed}-parking")
        self._edge_set = frozenset(self.edges)
        self._lane_width = {e: float(libsumo.lane.getWidth(f"{e}_0")) for e in self.edges}
        self.curb = CurbModel(self, plan, rng)
        trips = self._trips = ParkingTrips(self.curb, plan, rng)
        self._changes: list[ParkingChange] = []
        self._gaps: list[tuple[int, GapReport]] = []
        # (edge, lane position) along a street with curb spots after the last step; where
        # sensing began
        self._curbside: list[tuple[str, float] | None] = [None] * len(self._ids)
        self._sensing_from: dict[int, float] = {}
        self._trip_count = 0
        standing = [i for i in range(len(self._ids)) if rng.random() < plan.start_parked_share]
        for index, spot in trips.park_at_start(standing, 0.0):
            self._stand(index, spot)
        for index in range(len(self._ids)):
            if index not in trips.parked:
                self._drive_to_spot(index, rng.choice(self.edges), "random", "max")

    def _add(self, vehicle_id: str, start: str, goal: str, depart_pos: str = "base") -> None:
        route_id = f"{vehicle_id}-{self._rng.getrandbits(32)}"
        libsumo.route.add(route_id, [start])
        type_id = self._types[int(vehicle_id.removeprefix("car"))]
        libsumo.vehicle.add(
            vehicle_id, route_id, typeID=type_id, departPos=depart_pos, departSpeed="max"
        )
        libsumo.vehicle.changeTarget(vehicle_id, goal)

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds in 1 s SUMO steps; a car that arrived drives on elsewhere,
        or parks (with parking), and a parked car whose stay is over drives off."""
        for _ in range(max(1, round(dt))):
            libsumo.simulationStep()
            self.elapsed_s += 1
            if self._trips is not None:
                self._park_and_unpark()
                self._read()
                continue
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
            acceleration = libsumo.vehicle.getAcceleration(vehicle_id)
            car.last_decel_ms2 = max(0.0, -acceleration)
            car.last_accel_ms2 = max(0.0, acceleration)
            distance = libsumo.vehicle.getDistance(vehicle_id)
            car.odometer_m += max(0.0, distance - self._last_distance[index])
            self._last_distance[index] = distance if distance >= 0 else 0.0
            if self._trips is not None:
                self._on_the_road(index, vehicle_id)

    def position(self, index: int) -> tuple[float, float]:
        car = self.cars[index]
        return to_lat_lon(car.x_m, car.y_m)

    # parking ------------------------------------------------------------------------------------

    def _drive_to_spot(
        self, index: int, start: str, depart_pos: str, depart_speed: str, *, tour: bool = True
    ) -> None:
        """A new trip from ``start`` to a curb spot; SUMO drives it and ends it on the spot.

        A ``tour`` first passes random places for about a trip's time (``trip_s``): trips
        across this small city alone would take two minutes, real ones in a city 10 to 30.
        """
        assert self._trips is not None
        assert self.parking is not None
        vehicle_id, type_id = self._ids[index], self._types[index]
        rng = self._parking_rng
        spot = self._trips.destination(index, start)
        edges, here = [start], start
        wanted_s = rng.uniform(*self.parking.trip_s) if tour else 0.0
        driven_s = 0.0
        for _ in range(100):  # a bound, in case some part of a network were unreachable
            if driven_s >= wanted_s:
                break
            stage = libsumo.simulation.findRoute(here, rng.choice(self.edges), vType=type_id)
            if len(stage.edges) > 1:
                edges += stage.edges[1:]
                here, driven_s = stage.edges[-1], driven_s + stage.travelTime
        edges += libsumo.simulation.findRoute(here, spot.edge, vType=type_id).edges[1:]
        if edges[-1] != spot.edge:
            raise FleetlinkError(f"no route from {here} to {spot.edge}")
        self._trip_count += 1
        route_id = f"{vehicle_id}-trip{self._trip_count}"
        libsumo.route.add(route_id, edges)
        libsumo.vehicle.add(
            vehicle_id,
            route_id,
            typeID=type_id,
            departPos=depart_pos,
            departSpeed=depart_speed,
            # the car pulls over to the curbside lane and stops with its front at the spot's end
            arrivalLane="0",
            arrivalPos=f"{spot.offset_m + spot.length_m:.2f}",
            arrivalSpeed="0",
        )

    def _park_and_unpark(self) -> None:
        trips, curb = self._trips, self.curb
        assert trips is not None
        assert curb is not None
        curb.advance(self.elapsed_s)
        for vehicle_id in libsumo.simulation.getArrivedIDList():
            index = int(vehicle_id.removeprefix("car"))
            spot, destination = trips.arrive(index, self.elapsed_s)
            if spot is None:  # nothing free near: on to somewhere else
                end = f"{destination.offset_m + destination.length_m:.2f}"
                self._drive_to_spot(index, destination.edge, end, "0", tour=False)
            else:
                self._stand(index, spot)
        for index in trips.due(self.elapsed_s):
            spot = trips.depart(index)
            self._drive_to_spot(index, spot.edge, f"{spot.offset_m + spot.length_m:.2f}", "0")

    def _stand(self, index: int, spot: CurbSpot) -> None:
        assert self.curb is not None
        car = self.cars[index]
        car.x_m, car.y_m = self.curb.xy(spot.spot_id)
        car.speed_ms = car.last_decel_ms2 = 0.0
        car.heading_deg = spot.heading_deg
        self._curbside[index] = None
        self._sensing_from.pop(index, None)
        self._changes.append(ParkingChange(index, EventKind.PARKED, spot))
        left = self._leaving_at.pop(index, None)
        if left is not None:  # a trip from the spot it left (cars driving at the start: none)
            self._true_trips.append((index, left[0], self.elapsed_s, car.odometer_m - left[1]))

    def _on_the_road(self, index: int, vehicle_id: str) -> None:
        """A car SUMO moved: off its spot if it just pulled out; the gaps it passed."""
        assert self._trips is not None
        assert self.curb is not None
        assert self.parking is not None
        if index in self._trips.leaving:
            self._changes.append(ParkingChange(index, EventKind.UNPARKED, self._trips.left(index)))
            self._leaving_at[index] = (self.elapsed_s, self.cars[index].odometer_m)
        edge = str(libsumo.vehicle.getRoadID(vehicle_id))
        # the side sensors reach the curb from either lane of a two-lane street (4-5 m)
        along_curb = edge in self._edge_set
        position = float(libsumo.vehicle.getLanePosition(vehicle_id))
        before = self._curbside[index]
        self._curbside[index] = (edge, position) if along_curb else None
        speed_kmh = self.cars[index].speed_ms * 3.6
        if not along_curb or speed_kmh > self.parking.sensor_max_kmh:
            self._sensing_from.pop(index, None)  # the side sensors see no curb, or blur
            return
        seen_from = self._sensing_from.get(index)
        if before is None or before[0] != edge or seen_from is None or position < before[1]:
            # they watch the curb from here on: from the street's start for a car that turned
            # in at the junction (the curb begins clear of it), else where the car is
            turned_in = before is None or before[0] != edge
            start = 0.0 if turned_in and position < self.parking.junction_clear_m * 2 else position
            self._sensing_from[index] = start
            if start == position:
                return
            before, seen_from = (edge, start), start
        gaps = self.curb.scan(
            edge, before[1], position, speed_kmh, self._parking_rng, seen_from_m=seen_from
        )
        self._gaps += [(index, gap) for gap in gaps]

    def take_parking_reports(self) -> ParkingReports:
        """Cars that parked or left their spots, and the gaps cars saw, since the last call."""
        if self._trips is None:
            return ParkingReports([], [])
        reports = ParkingReports(self._changes, self._gaps)
        self._changes, self._gaps = [], []
        return reports

    def is_parked(self, index: int) -> bool:
        """Standing at the curb (or pulling out, not yet in traffic)."""
        trips = self._trips
        return trips is not None and (index in trips.parked or index in trips.leaving)

    def parked_count(self) -> int:
        return 0 if self._trips is None else len(self._trips.parked) + len(self._trips.leaving)

    def parking_truth(self, start_ms: int) -> CurbTruth | None:
        """Which curb spots were free when (simulated second 0 at ``start_ms``)."""
        return None if self.curb is None else self.curb.truth(start_ms)

    def trip_truth(self, start_ms: int, vins: Sequence[str]) -> list[TrueTrip]:
        """Every trip from a spot to a spot so far (``vins[i]`` names car ``i``; simulated
        second 0 at ``start_ms``)."""
        return [
            TrueTrip(vins[car], start_ms + left * 1000, start_ms + parked * 1000, metres / 1000)
            for car, left, parked, metres in self._true_trips
        ]

    def heading_at(self, edge: str, offset_m: float) -> float:
        """The direction of travel ``offset_m`` along ``edge``, degrees clockwise from north."""
        length = self.edge_length(edge)
        x1, y1 = libsumo.simulation.convert2D(edge, max(0.0, offset_m - 1.0), 0)
        x2, y2 = libsumo.simulation.convert2D(edge, min(length, offset_m + 1.0), 0)
        return math.degrees(math.atan2(x2 - x1, y2 - y1)) % 360

    def curb_xy(self, edge: str, offset_m: float, right_m: float) -> tuple[float, float]:
        """The point ``offset_m`` along ``edge``, ``right_m`` right of its curbside lane's
        right border (the curb)."""
        x, y = libsumo.simulation.convert2D(edge, offset_m, 0)
        heading = math.radians(self.heading_at(edge, offset_m))
        aside = self._lane_width[edge] / 2 + right_m
        return x + math.cos(heading) * aside, y - math.sin(heading) * aside

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
