"""Curb parking in the SUMO city: spots along real edges, background cars coming and going, fleet
cars taking and leaving spots, and what cars' side sensors see of the free curb as they pass.

On a share of the edges car-length spots are laid along the right curb, clear of the junctions;
a few are no-parking stretches (driveways, bus stops) that nobody ever parks in, so sensors see
them free every time. Cars that are not in the fleet park and leave as Poisson processes in
simulated time, starting from their steady state. A car driving along the curb at most
``sensor_max_kmh`` reports every maximal run of free curb it passed whole (a gap), with misses
and measurement noise. Deterministic for a seed: every draw comes from the ``random.Random``
given.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from typing import Any, NamedTuple, Protocol

import msgspec

from fleetlink.contracts.models import EventKind
from fleetlink.contracts.parking import CurbSide
from fleetlink.sim.kinematic import to_lat_lon
from fleetlink.sim.parking_truth import CurbSpot, CurbTruth

_PARKED_CAR_RIGHT_M = 1.0  # a parked car's middle, right of the curbside lane's border


class Stay(msgspec.Struct, frozen=True):
    """One kind of stay at the curb: its share of the stays and its range of durations."""

    share: float
    min_s: float
    max_s: float


class ParkingPlan(msgspec.Struct, frozen=True):
    """The knobs of curb parking and of fleet cars parking between trips."""

    curb_edge_share: float = 0.5  # edges with parking along their right curb
    spot_m: float = 6.0  # a spot: a car and the room to get in and out
    junction_clear_m: float = 15.0  # no spots this close to either end of an edge
    no_parking_share: float = 0.03  # driveways and bus stops among the spots
    mean_free_s: float = 900.0  # a free spot is taken by a non-fleet car after this long (mean)
    mean_stay_s: float = 7200.0  # a non-fleet car stays this long (mean)
    start_parked_share: float = 0.3  # fleet cars standing at the curb when the run starts
    trip_s: tuple[float, float] = (600.0, 1800.0)  # a trip's driving time (free flow), uniform
    stays: tuple[Stay, ...] = (
        Stay(0.5, 5 * 60, 30 * 60),  # errands
        Stay(0.35, 30 * 60, 3 * 3600),  # work, shopping, a visit
        Stay(0.15, 3 * 3600, 12 * 3600),  # overnight
    )
    search_m: float = 150.0  # how far from its destination a driver looks for a free spot
    car_length_m: float = 4.5  # what a fleet car says it is long when it parks
    sensor_max_kmh: float = 55.0  # side sensors measure gaps up to this speed
    miss_slow: float = 0.05  # the share of gaps missed at a crawl...
    miss_fast: float = 0.10  # ...rising to this at ``sensor_max_kmh``
    length_sigma_m: float = 0.3
    along_sigma_m: float = 2.5  # where along the street the car places the gap (odometry, GPS)
    lateral_sigma_m: float = 1.0  # GPS across the street
    truth_every_s: float = 10.0  # free spots recorded this often; 0: no truth (long live runs)


class CurbGeometry(Protocol):
    """What the curb needs of the road network (``SumoFleet`` has it)."""

    edges: list[str]

    def edge_length(self, edge: str) -> float: ...

    def curb_xy(self, edge: str, offset_m: float, right_m: float) -> tuple[float, float]:
        """The point ``offset_m`` along ``edge``, ``right_m`` right of its curbside border."""
        ...

    def heading_at(self, edge: str, offset_m: float) -> float: ...


class GapReport(msgspec.Struct, frozen=True):
    """A free gap as a car's side sensors measured it while passing; ``spots`` the truth."""

    latitude: float
    longitude: float
    length_m: float
    heading_deg: float
    speed_kmh: float
    spots: tuple[str, ...]
    side: CurbSide = CurbSide.RIGHT


class ParkingChange(NamedTuple):
    car: int
    kind: EventKind  # PARKED or UNPARKED
    spot: CurbSpot


class ParkingReports(NamedTuple):
    """What fleet cars did at the curb since the last look."""

    changes: list[ParkingChange]
    gaps: list[tuple[int, GapReport]]


class Placed(NamedTuple):
    """An event at a place and speed of its own (not the car's last reported ones)."""

    kind: EventKind
    data: dict[str, Any]
    latitude: float
    longitude: float
    heading_deg: float
    speed_kmh: float


def placed_events(reports: ParkingReports, car_length_m: float) -> list[tuple[int, Placed]]:
    """The contract's events (``contracts.parking``) of ``reports``, by car."""
    events = []
    for car, kind, spot in reports.changes:
        data: dict[str, Any] = {"length_m": car_length_m}
        events.append(
            (car, Placed(kind, data, spot.latitude, spot.longitude, spot.heading_deg, 0.0))
        )
    for car, gap in reports.gaps:
        data = {"length_m": gap.length_m, "side": gap.side.value}
        events.append(
            (
                car,
                Placed(
                    EventKind.PARKING_GAP,
                    data,
                    gap.latitude,
                    gap.longitude,
                    gap.heading_deg,
                    gap.speed_kmh,
                ),
            )
        )
    return events


class CurbModel:
    """Every curb spot of the city and who stands on it, in simulated seconds (``advance``)."""

    def __init__(self, geometry: CurbGeometry, plan: ParkingPlan, rng: random.Random) -> None:
        self._geometry = geometry
        self._plan = plan
        self._rng = rng
        self.now_s = 0.0
        self.spots: dict[str, CurbSpot] = {}
        self._xy: dict[str, tuple[float, float]] = {}
        self._by_edge: dict[str, list[CurbSpot]] = {}
        self._ends: dict[str, list[float]] = {}  # per edge, where each spot ends: for bisect
        self._place: dict[str, int] = {}  # a spot's index in its edge's list
        for edge in geometry.edges:
            if rng.random() < plan.curb_edge_share:
                self._lay_out(edge)
        self.parking_ids = sorted(s.spot_id for s in self.spots.values() if not s.no_parking)
        self._background: set[str] = set()  # spots a non-fleet car stands on
        self._fleet: set[str] = set()
        self._due: list[tuple[float, int, str]] = []  # (when, version, spot): a car comes or goes
        self._version = dict.fromkeys(self.parking_ids, 0)
        taken_share = plan.mean_stay_s / (plan.mean_free_s + plan.mean_stay_s)
        for spot_id in self.parking_ids:
            if rng.random() < taken_share:
                self._background.add(spot_id)
            self._schedule(spot_id)
        self.snapshots: list[tuple[float, frozenset[str]]] = []
        self._next_snapshot_s = 0.0
        self._snapshot()

    def _lay_out(self, edge: str) -> None:
        plan, geometry = self._plan, self._geometry
        length = geometry.edge_length(edge)
        count = int((length - 2 * plan.junction_clear_m) // plan.spot_m)
        spots = []
        for n in range(max(0, count)):
            offset = plan.junction_clear_m + n * plan.spot_m
            middle = offset + plan.spot_m / 2
            x, y = geometry.curb_xy(edge, middle, _PARKED_CAR_RIGHT_M)
            lat, lon = to_lat_lon(x, y)
            spot = CurbSpot(
                spot_id=f"{edge}/{n}",
                edge=edge,
                offset_m=offset,
                length_m=plan.spot_m,
                latitude=lat,
                longitude=lon,
                heading_deg=round(geometry.heading_at(edge, middle), 1) % 360,
                no_parking=self._rng.random() < plan.no_parking_share,
            )
            self.spots[spot.spot_id] = spot
            self._xy[spot.spot_id] = (x, y)
            self._place[spot.spot_id] = n
            spots.append(spot)
        if spots:
            self._by_edge[edge] = spots
            self._ends[edge] = [s.offset_m + s.length_m for s in spots]

    # time ---------------------------------------------------------------------------------------

    def _schedule(self, spot_id: str) -> None:
        """The next time a non-fleet car arrives at a free spot, or leaves a taken one."""
        mean = self._plan.mean_stay_s if spot_id in self._background else self._plan.mean_free_s
        when = self.now_s + self._rng.expovariate(1 / mean)
        heapq.heappush(self._due, (when, self._version[spot_id], spot_id))

    def advance(self, now_s: float) -> None:
        """Non-fleet cars come and go until ``now_s``; the truth is sampled on the way."""
        while self._due and self._due[0][0] <= now_s:
            when, version, spot_id = heapq.heappop(self._due)
            if version != self._version[spot_id] or spot_id in self._fleet:
                continue  # planned before a fleet car took the spot
            self.now_s = when
            self._background ^= {spot_id}
            self._schedule(spot_id)
        self.now_s = now_s
        self._snapshot()

    def _snapshot(self) -> None:
        every = self._plan.truth_every_s
        if every <= 0 or self.now_s < self._next_snapshot_s:
            return
        free = frozenset(s for s in self.parking_ids if self.parkable(s))
        self.snapshots.append((self.now_s, free))
        while self._next_snapshot_s <= self.now_s:
            self._next_snapshot_s += every

    def truth(self, start_ms: int) -> CurbTruth:
        """The truth so far, simulated second 0 being ``start_ms``."""
        return CurbTruth(
            spots=dict(self.spots),
            snapshots=[(start_ms + round(t * 1000), free) for t, free in self.snapshots],
            every_s=self._plan.truth_every_s,
        )

    # spots --------------------------------------------------------------------------------------

    def xy(self, spot_id: str) -> tuple[float, float]:
        """Where a car parked on the spot stands (SUMO's metres)."""
        return self._xy[spot_id]

    def looks_free(self, spot_id: str) -> bool:
        """No car stands there (a no-parking stretch always looks free)."""
        return spot_id not in self._background and spot_id not in self._fleet

    def parkable(self, spot_id: str) -> bool:
        return self.looks_free(spot_id) and not self.spots[spot_id].no_parking

    def take(self, spot_id: str) -> None:
        """A fleet car parks on the spot."""
        if not self.parkable(spot_id):
            raise ValueError(f"spot {spot_id} is not free to park on")
        self._fleet.add(spot_id)
        self._version[spot_id] += 1  # a non-fleet car due to arrive finds it taken

    def release(self, spot_id: str) -> None:
        """A fleet car left the spot: free, until a non-fleet car or another fleet car comes."""
        self._fleet.remove(spot_id)
        self._version[spot_id] += 1
        self._schedule(spot_id)

    def occupied_by_fleet(self) -> frozenset[str]:
        return frozenset(self._fleet)

    def random_spot(self, rng: random.Random, avoid_edge: str | None = None) -> CurbSpot:
        """A parking spot anywhere (free or not) off ``avoid_edge``: a trip's destination."""
        while True:
            spot = self.spots[rng.choice(self.parking_ids)]
            if spot.edge != avoid_edge:
                return spot

    def nearest_free(self, near: CurbSpot, within_m: float) -> CurbSpot | None:
        """The free parking spot nearest ``near`` on its edge, else the nearest within
        ``within_m`` on any edge."""
        same_edge = [s for s in self._by_edge[near.edge] if self.parkable(s.spot_id)]
        if same_edge:
            return min(same_edge, key=lambda s: (abs(s.offset_m - near.offset_m), s.spot_id))
        x, y = self._xy[near.spot_id]
        best: tuple[float, str] | None = None
        for spot_id in self.parking_ids:
            if not self.parkable(spot_id):
                continue
            sx, sy = self._xy[spot_id]
            distance = math.hypot(sx - x, sy - y)
            if distance <= within_m and (best is None or (distance, spot_id) < best):
                best = (distance, spot_id)
        return None if best is None else self.spots[best[1]]

    # sensing ------------------------------------------------------------------------------------

    def scan(
        self,
        edge: str,
        from_m: float,
        to_m: float,
        speed_kmh: float,
        rng: random.Random,
        *,
        seen_from_m: float | None = None,
    ) -> list[GapReport]:
        """The gaps (maximal runs of free curb) a car driving along ``edge`` passed
        the end of while moving from ``from_m`` to ``to_m``, and whose start it passed too,
        at ``seen_from_m`` or later (default ``from_m``: passed whole in this move)."""
        plan = self._plan
        spots = self._by_edge.get(edge)
        if spots is None or to_m <= from_m or speed_kmh > plan.sensor_max_kmh:
            return []
        seen_from = from_m if seen_from_m is None else seen_from_m
        ends = self._ends[edge]
        first = bisect.bisect_right(ends, from_m)
        last = bisect.bisect_right(ends, to_m)
        reports = []
        for n in range(first, last):
            if not self.looks_free(spots[n].spot_id):
                continue
            if n + 1 < len(spots) and self.looks_free(spots[n + 1].spot_id):
                continue  # the gap goes on beyond this spot
            start = n
            while start > 0 and self.looks_free(spots[start - 1].spot_id):
                start -= 1
            if spots[start].offset_m < seen_from:
                continue  # its start was behind the car before the sensor watched
            miss = plan.miss_slow + (plan.miss_fast - plan.miss_slow) * min(
                1.0, max(0.0, speed_kmh) / plan.sensor_max_kmh
            )
            if rng.random() < miss:
                continue
            reports.append(self._measure(spots[start : n + 1], speed_kmh, rng))
        return reports

    def _measure(self, run: list[CurbSpot], speed_kmh: float, rng: random.Random) -> GapReport:
        plan, geometry = self._plan, self._geometry
        edge = run[0].edge
        start, end = run[0].offset_m, run[-1].offset_m + run[-1].length_m
        along = (start + end) / 2 + rng.gauss(0, plan.along_sigma_m)
        along = min(max(along, 0.0), geometry.edge_length(edge))
        right = _PARKED_CAR_RIGHT_M + rng.gauss(0, plan.lateral_sigma_m)
        lat, lon = to_lat_lon(*geometry.curb_xy(edge, along, right))
        return GapReport(
            latitude=round(lat, 7),
            longitude=round(lon, 7),
            length_m=round(max(0.5, end - start + rng.gauss(0, plan.length_sigma_m)), 2),
            heading_deg=round(geometry.heading_at(edge, (start + end) / 2), 1) % 360,
            speed_kmh=round(speed_kmh, 1),
            spots=tuple(s.spot_id for s in run),
        )
