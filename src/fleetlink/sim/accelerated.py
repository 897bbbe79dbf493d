"""SUMO traffic and hazard sites in simulated time, straight into Kafka: quality runs of the
stream apps that take seconds, not the ten minutes they simulate.

Every car's telemetry and events go through the gateway's own router (the same records, headers
and dead letters as over MQTT) and are written with the Kafka timestamp set to their simulated
time, like the payload's ``ts``; ticks carry simulated time too. An app in simulated-clock mode
(``apps.simulated_clock``) writes no ticks of its own, and Quix Streams reads its concatenated
inputs aligned on those timestamps, so event time runs exactly as in a live run, only faster.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from fleetlink.contracts.models import EventKind
from fleetlink.settings import Settings
from fleetlink.sim.curb import ParkingPlan, Placed, placed_events
from fleetlink.sim.events import CarEvents, Report
from fleetlink.sim.flood import vins_for
from fleetlink.sim.hazard_sites import HazardSites, SitePlan
from fleetlink.sim.hazard_truth import HazardSite
from fleetlink.sim.kinematic import report_motion
from fleetlink.sim.parking_truth import CurbTruth
from fleetlink.sim.sumo import SumoFleet
from fleetlink.sim.trip_truth import TrueTrip
from fleetlink.sim.writer import SimWriter
from fleetlink.vehicle.state import VehicleState


class RunSummary(msgspec.Struct):
    vehicles: int
    simulated_s: float
    wall_s: float
    start_ms: int
    telemetry: int
    events: dict[str, int]
    dead_letters: int
    sites: list[HazardSite]
    parking: CurbTruth | None = None  # which curb spots were free when (with a parking plan)
    trips: list[TrueTrip] = []  # from a spot to a spot (with a parking plan)


class AcceleratedRun:
    def __init__(
        self,
        settings: Settings,
        *,
        vehicles: int,
        seed: int,
        plans: Sequence[SitePlan] = (),
        interval_s: float = 2.0,
        telemetry: bool = True,
        vin_prefix: str = "ACC",
        start_ms: int | None = None,
        log: logging.Logger | None = None,
        parking: ParkingPlan | None = None,
    ) -> None:
        """``parking``: cars park at the curb between trips and report the gaps they pass
        (None: every car drives all the time)."""
        self._clock_s = 0.0
        # the per-car rate limit runs on simulated time
        self._writer = SimWriter(settings, lambda: self._clock_s, log)
        self._workdir = tempfile.TemporaryDirectory(prefix="fleetlink-sumo-")
        self.fleet = SumoFleet(vehicles, seed, Path(self._workdir.name), parking=parking)
        self._car_length_m = 0.0 if parking is None else parking.car_length_m
        rng = random.Random(seed)
        self.sites = HazardSites(self.fleet, plans, random.Random(f"{seed}-sites"))
        self._vins = vins_for(vehicles, vin_prefix)
        self._cars = [CarEvents(random.Random(f"{seed}-{vin}")) for vin in self._vins]
        self._states = [
            VehicleState(vin, *self.fleet.position(i), battery_soc=rng.uniform(20, 95))
            for i, vin in enumerate(self._vins)
        ]
        self._interval = max(1, round(interval_s)) if telemetry else 0
        self._given_start_ms = start_ms
        self.start_ms = start_ms if start_ms is not None else time.time_ns() // 1_000_000
        self._telemetry = 0
        self._events: Counter[str] = Counter()

    def run(
        self,
        duration_s: float,
        *,
        speed: float = 20.0,
        tail_s: float = 30.0,
        progress: Callable[[float], None] = print,
    ) -> RunSummary:
        """Simulate ``duration_s`` seconds, at most ``speed`` times as fast as real time; then
        ``tail_s`` of ticks alone, so the apps' event time passes the last record.
        ``progress`` hears the simulated seconds done.

        The pace matters: an app reads its input partitions in parallel, and the further the
        writer runs ahead of it, the further one partition may get ahead of another; reports
        that arrive out of their time order still confirm a hazard, but later than they could.
        """
        if self._given_start_ms is None:
            # the run lies in the past: a broker refuses records stamped more than an hour
            # ahead of its clock (log.message.timestamp.after.max.ms)
            self.start_ms = time.time_ns() // 1_000_000 - int(duration_s * 1000)
        started = time.monotonic()
        try:
            for second in range(1, int(duration_s) + 1):
                ahead = started + second / speed - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                self._writer.keep_pace()
                self._clock_s = float(second)
                now_ms = self.start_ms + second * 1000
                self.fleet.step(1.0)
                self._drive(second, now_ms)
                self._writer.tick(now_ms)
                if second % 10 == 0:
                    progress(second)
            end_ms = self.start_ms + int(duration_s) * 1000
            sites = self.sites.finish(end_ms)
            parking = self.fleet.parking_truth(self.start_ms)
            trips = self.fleet.trip_truth(self.start_ms, self._vins)
            for second in range(1, int(tail_s) + 1):
                self._writer.tick(end_ms + second * 1000)
            self._writer.flush()
        finally:
            self.fleet.close()
            self._workdir.cleanup()
        return RunSummary(
            vehicles=len(self._vins),
            simulated_s=duration_s,
            wall_s=round(time.monotonic() - started, 1),
            start_ms=self.start_ms,
            telemetry=self._telemetry,
            events=dict(self._events),
            dead_letters=self._writer.dead_letters,
            sites=sites,
            parking=parking,
            trips=trips,
        )

    def _drive(self, second: int, now_ms: int) -> None:
        reports: dict[int, list[Report]] = {}
        for index, report in self.sites.step(float(second), now_ms):
            reports.setdefault(index, []).append(report)
        parking = placed_events(self.fleet.take_parking_reports(), self._car_length_m)
        for index, car in enumerate(self.fleet.cars):
            state = self._states[index]
            report_motion(state, car, self.fleet.position(index), 1.0)
            events = self._cars[index]
            driving = not self.fleet.is_parked(index)  # a parked car has no events of its own
            own = events.step(car.last_decel_ms2, 1.0, car.last_accel_ms2) if driving else []
            mine = own + reports.get(index, [])
            for kind, data in mine:
                if kind is EventKind.HAZARD_LIGHTS:
                    events.hazard_lights = True
                self._event(index, kind, data, now_ms)
            state.hazard_lights = events.hazard_lights
            if self._interval and (second + index) % self._interval == 0:
                self._writer.telemetry(state.vin, state.signals(), now_ms)
                self._telemetry += 1
        for index, placed in parking:
            self._event(index, placed.kind, placed.data, now_ms, placed)

    def _event(
        self,
        index: int,
        kind: str,
        data: dict[str, object],
        now_ms: int,
        at: Placed | None = None,
    ) -> None:
        """An event where the car is, or ``at`` a place of its own (a gap, a spot)."""
        state = self._states[index]
        lat, lon, heading, speed = (
            (state.latitude, state.longitude, state.heading_deg, state.speed_kmh)
            if at is None
            else (at.latitude, at.longitude, at.heading_deg, at.speed_kmh)
        )
        self._writer.event(
            state.vin,
            kind,
            now_ms,
            data=data,
            latitude=round(lat, 6),
            longitude=round(lon, 6),
            heading_deg=round(heading % 360, 1),
            speed_kmh=round(max(0.0, speed), 1),
        )
        self._events[kind] += 1
