"""Hazards a scenario places in the SUMO city, the reports they make cars send, and their truth.

- An **icy stretch** (60 m of one street): a car driving over it at speed slips, and its ABS or
  ESC engages, with probability ``slip_chance`` per pass.
- A **broken-down car**: one car stops where it drives and switches its hazard lights on (it
  reports them as it stops, and again after standing ``_ANNOUNCE_S``); a car that comes to a
  stand behind it switches its own on too, with probability ``follower_lights_chance``
  (drivers warn the traffic behind them).

The truth (``sites``) says where each one was and from when to when, in simulated time.
Sites of one kind open at the same time are placed in different warning cells, ``_APART_M``
apart: the app's spot is a cell, so two icy stretches in one cell are one hazard to it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import msgspec

from fleetlink.contracts.geo import cell_of, distance_m
from fleetlink.contracts.models import EventKind
from fleetlink.sim.events import Report
from fleetlink.sim.hazard_truth import HazardSite, SiteKind
from fleetlink.sim.sumo import SumoFleet

_ICE_M = 60.0
_QUEUE_M = 60.0  # a car standing this far behind the broken-down one is in its queue
_MOVING_MS = 5.0  # a car slips on ice only when faster than this (18 km/h)
_STANDING_MS = 1.3  # under 5 km/h: the app's stationary
_ANNOUNCE_S = 35.0  # the broken-down car reports its lights again after standing this long
_PASS_GAP_S = 30.0  # a car on the stretch again after this long is on a new pass
# sites of one kind open at once lie in different warning cells and this far apart: the app
# tells hazards of one group apart by their cell (one spot), so closer ones would be one
_APART_M = 600.0


class SitePlan(msgspec.Struct, frozen=True):
    kind: SiteKind
    at_s: float  # simulated seconds after the start
    duration_s: float


def recurring_sites(every_s: float, duration_s: float) -> list[SitePlan]:
    """An icy stretch, then a broken-down car, and so on, one every ``every_s`` seconds."""
    plans = []
    for n in range(1, int(duration_s // every_s) + 1):
        kind = SiteKind.ICE if n % 2 else SiteKind.BREAKDOWN
        plans.append(SitePlan(kind, at_s=n * every_s, duration_s=240 if n % 2 else 180))
    return plans


class _Site:
    def __init__(
        self, truth: HazardSite, stretches: dict[str, tuple[float, float]], car: int | None
    ) -> None:
        self.truth = truth
        self.stretches = stretches  # edge -> from, to along it (metres)
        self.car = car  # the broken-down car
        self.seen: dict[int, float] = {}  # car -> when it last met the site (s)
        self.announced: set[float] = set()  # the broken-down car's reports, by time standing


class HazardSites:
    def __init__(
        self,
        fleet: SumoFleet,
        plans: Sequence[SitePlan],
        rng: random.Random,
        *,
        slip_chance: float = 0.6,
        follower_lights_chance: float = 0.5,
    ) -> None:
        self._fleet = fleet
        self._waiting = sorted(plans, key=lambda plan: plan.at_s)
        self._rng = rng
        self._slip = slip_chance
        self._lights = follower_lights_chance
        self._open: list[tuple[_Site, float]] = []  # with the time it ends (s)
        self.sites: list[HazardSite] = []

    def step(self, t_s: float, now_ms: int) -> list[tuple[int, Report]]:
        """Start and end sites due at ``t_s``; the reports cars make about the open ones."""
        while self._waiting and self._waiting[0].at_s <= t_s:
            plan = self._waiting.pop(0)
            site = self._start(plan, now_ms)
            if site is not None:
                self._open.append((site, t_s + plan.duration_s))
        reports: list[tuple[int, Report]] = []
        for site, ends in list(self._open):
            if t_s >= ends:
                self._end(site, now_ms)
                continue
            reports += self._reports(site, t_s, now_ms)
        return reports

    def finish(self, now_ms: int) -> list[HazardSite]:
        """End what is still open; the truth of every site."""
        for site, _ in list(self._open):
            self._end(site, now_ms)
        return self.sites

    def _start(self, plan: SitePlan, now_ms: int) -> _Site | None:
        fleet = self._fleet
        if plan.kind is SiteKind.ICE:
            edges = [
                e
                for e in fleet.edges
                if fleet.edge_length(e) >= _ICE_M + 40
                and self._apart(plan.kind, *fleet.point_on(e, fleet.edge_length(e) / 2))
            ]
            if not edges:
                return None  # no room in this city: the plan is dropped
            edge = self._rng.choice(edges)
            middle = fleet.edge_length(edge) / 2
            lat, lon = fleet.point_on(edge, middle)
            truth = HazardSite(f"ice-{len(self.sites)}", plan.kind, lat, lon, now_ms, now_ms)
            stretches = {edge: (middle - _ICE_M / 2, middle + _ICE_M / 2)}
            opposite = fleet.opposite(edge)
            if opposite is not None:  # the ice covers the whole road, both ways
                back = fleet.edge_length(opposite) - middle
                stretches[opposite] = (back - _ICE_M / 2, back + _ICE_M / 2)
            site = _Site(truth, stretches, None)
        else:
            car = self._breaking_down()
            if car is None:
                return None  # nobody drives mid-street now: the plan is dropped
            edge, offset = fleet.road_of(car) or ("", 0.0)
            fleet.hold(car, stopped=True)
            lat, lon = fleet.position(car)
            truth = HazardSite(f"breakdown-{len(self.sites)}", plan.kind, lat, lon, now_ms, now_ms)
            site = _Site(truth, {edge: (offset - _QUEUE_M, offset)}, car)
        self.sites.append(truth)
        return site

    def _breaking_down(self) -> int | None:
        fleet = self._fleet
        candidates = []
        for index, car in enumerate(fleet.cars):
            road = fleet.road_of(index)
            if road is None or car.speed_ms < _MOVING_MS:
                continue
            edge, offset = road
            if _QUEUE_M <= offset <= fleet.edge_length(edge) - 20 and self._apart(
                SiteKind.BREAKDOWN, *fleet.position(index)
            ):
                candidates.append(index)
        return self._rng.choice(candidates) if candidates else None

    def _apart(self, kind: SiteKind, lat: float, lon: float) -> bool:
        """Whether a site of ``kind`` here is told apart from the open ones of its kind."""
        return all(
            cell_of(lat, lon) != cell_of(site.truth.latitude, site.truth.longitude)
            and distance_m(lat, lon, site.truth.latitude, site.truth.longitude) >= _APART_M
            for site, _ in self._open
            if site.truth.kind is kind
        )

    def _end(self, site: _Site, now_ms: int) -> None:
        self._open = [(s, ends) for s, ends in self._open if s is not site]
        if site.car is not None:
            self._fleet.hold(site.car, stopped=False)
        index = self.sites.index(site.truth)
        self.sites[index] = msgspec.structs.replace(self.sites[index], end_ms=now_ms)
        site.truth = self.sites[index]

    def _reports(self, site: _Site, t_s: float, now_ms: int) -> list[tuple[int, Report]]:
        fleet, rng = self._fleet, self._rng
        reports: list[tuple[int, Report]] = []
        broken = site.car
        standing = broken is not None and fleet.cars[broken].speed_ms <= _STANDING_MS
        if broken is not None and standing:
            # lights on as it stops; the car says so again once it has stood a while
            stopped = site.seen.setdefault(broken, t_s)
            for after_s in (0.0, _ANNOUNCE_S):
                if after_s <= t_s - stopped and after_s not in site.announced:
                    site.announced.add(after_s)
                    lights = {"on": True, "standing_s": round(t_s - stopped)}
                    reports.append((broken, (EventKind.HAZARD_LIGHTS, lights)))
        for index, car in enumerate(fleet.cars):
            if index == site.car:
                continue
            road = fleet.road_of(index)
            stretch = None if road is None else site.stretches.get(road[0])
            if road is None or stretch is None or not stretch[0] <= road[1] <= stretch[1]:
                continue
            last = site.seen.get(index)
            if site.car is None:  # ice: once per pass
                if car.speed_ms < _MOVING_MS or (last is not None and t_s - last < _PASS_GAP_S):
                    continue
                site.seen[index] = t_s
                if rng.random() < self._slip:
                    if rng.random() < 0.5:
                        slip = (EventKind.ABS_ACTIVATION, {"deceleration_ms2": car.last_decel_ms2})
                    else:
                        slip = (EventKind.ESC_ACTIVATION, {"yaw_rate_dps": rng.randint(8, 25)})
                    reports.append((index, slip))
            elif last is None and car.speed_ms <= _STANDING_MS:  # queued behind the breakdown
                site.seen[index] = t_s
                if rng.random() < self._lights:
                    lights = {"on": True, "standing_s": 0}
                    reports.append((index, (EventKind.HAZARD_LIGHTS, lights)))
        if reports and site.truth.first_report_ms is None:
            index = self.sites.index(site.truth)
            self.sites[index] = msgspec.structs.replace(site.truth, first_report_ms=now_ms)
            site.truth = self.sites[index]
        return reports
