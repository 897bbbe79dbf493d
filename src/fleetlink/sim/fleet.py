"""A simulated fleet: kinematic movement driving N in-vehicle agents in one asyncio loop."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import ssl
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

import httpx
import msgspec

from fleetlink.contracts.models import EventKind
from fleetlink.errors import FleetlinkError
from fleetlink.security.signing import Verifier
from fleetlink.sim.curb import ParkingPlan, placed_events
from fleetlink.sim.events import CarEvents, Report
from fleetlink.sim.flood import vins_for
from fleetlink.sim.hazard_sites import HazardSites, recurring_sites
from fleetlink.sim.hazard_truth import HazardSite
from fleetlink.sim.kinematic import Car, KinematicFleet, report_motion
from fleetlink.sim.sumo import SumoFleet
from fleetlink.sim.truth import Truth
from fleetlink.sim.variants import variant_for
from fleetlink.vehicle.agent import VehicleAgent
from fleetlink.vehicle.ota import OtaConfig
from fleetlink.vehicle.state import VehicleState

_REPORT_SLICES = 20  # each interval, the fleet reports in this many groups


class Movement(Protocol):
    """Where the cars are: SUMO traffic or the light kinematic model."""

    cars: list[Car]

    def step(self, dt: float) -> None: ...

    def position(self, index: int) -> tuple[float, float]: ...

    def close(self) -> None: ...


class Faults(msgspec.Struct, frozen=True):
    """Fault knobs.

    - a share of vehicles loses its link at ``offline_at_s`` for ``offline_s`` (tunnels);
    - ``storm_at_s``: every vehicle drops its link at once and reconnects (a reconnect storm);
    - ``clock_skew_s``: each car's clock is off by up to this much, either way;
    - ``malformed_share``: that share of telemetry is broken JSON (the gateway's DLQ path).
    """

    offline_share: float = 0.0
    offline_at_s: float = 10.0
    offline_s: float = 30.0
    storm_at_s: float | None = None
    clock_skew_s: float = 0.0
    malformed_share: float = 0.0


class SimulationError(FleetlinkError):
    """A simulated car's task ended with an error: the run is not to be trusted."""


class FleetSummary(msgspec.Struct):
    vehicles: int
    duration_s: float
    connected_at_end: int
    telemetry_sampled: int
    published: int
    resent: int
    events: int
    commands: int
    connects: int
    disconnects: int
    errors: int
    malformed: int
    outbox_dropped: int
    forced_offline: list[str]
    # end-to-end confirmation (cars keep each message until it is durably in Kafka)
    confirm: bool = True
    confirmed: int = 0
    sent_again: int = 0  # after a lost link or an overdue confirmation
    unconfirmed_max: int = 0  # the largest backlog one car held
    held_at_exit: int = 0  # still held when the cars stopped
    confirm_p50_ms: float | None = None  # PUBACK to confirmation
    confirm_p99_ms: float | None = None
    warned: dict[str, int] = {}  # hazard id -> cars that heard its warning
    sites: list[HazardSite] = []  # the hazards the scenario placed (its truth)
    parked: int = 0  # parked events sent (cars that came to stand at the curb)
    unparked: int = 0
    parking_gaps: int = 0
    ota_steps: dict[str, int] = {}  # software-state reports, by step
    firmware: dict[str, int] = {}  # version -> cars running it at the end


class FleetSimulation:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        vehicles: int,
        interval_s: float,
        seed: int,
        faults: Faults | None = None,
        vin_prefix: str = "SMV",
        connect_rate: float = 0.0,
        mode: Literal["sumo", "kinematic"] = "sumo",
        verifier: Verifier | None,
        tls_for: Callable[[str], ssl.SSLContext | None] = lambda _vin: None,
        password: str | None = None,
        confirm: bool = True,
        confirm_timeout_s: float = 15.0,
        reconnect_max_s: float = 30.0,
        hazard_sites_every_s: float = 0.0,
        duration_s: float = 0.0,
        parking: ParkingPlan | None = None,
        ota: OtaConfig | None = None,
        stationary: bool = False,
        model: str | None = None,
    ) -> None:
        """``tls_for(vin)`` gives each car its TLS context (its own certificate); ``verifier``
        holds the platform keys the cars trust (``None``: they run unsigned commands).
        ``parking``: cars park at the curb between trips (SUMO mode only). ``ota``: the cars
        take software updates; they share one HTTP client (``ota.http``, or one the fleet
        makes and closes) and, with ``ota.flash_dir``, each keeps its flash in a directory
        named by its VIN under it. ``stationary``: the cars stand where they start (a fleet
        parked for the night); ``model``: every car is one (else a mixed fleet)."""
        self.stationary = stationary
        self.interval_s = interval_s
        self.confirm = confirm
        self.connect_rate = connect_rate
        self.faults = faults or Faults()
        self._rng = random.Random(seed)
        self.movement: Movement
        self._parking = parking
        if mode == "sumo":
            self._workdir = tempfile.TemporaryDirectory(prefix="fleetlink-sumo-")
            # a live fleet runs for days: it keeps no truth of the curb
            live = None if parking is None else msgspec.structs.replace(parking, truth_every_s=0)
            self.movement = SumoFleet(vehicles, seed, Path(self._workdir.name), parking=live)
        else:
            self.movement = KinematicFleet(vehicles, seed)
        self._http: httpx.AsyncClient | None = None  # made here, closed at the end of ``run``
        if ota is not None and ota.http is None:
            # one pool for the fleet; a car waits for a connection rather than time out
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(30.0, pool=None), limits=httpx.Limits(max_connections=200)
            )
            ota = dataclasses.replace(ota, http=self._http)
        self.agents = []
        for index, vin in enumerate(vins_for(vehicles, vin_prefix)):
            lat, lon = self.movement.position(index)
            state = VehicleState(
                vin=vin,
                latitude=lat,
                longitude=lon,
                battery_soc=self._rng.uniform(20, 95),
                ambient_c=self._rng.uniform(4, 18),
            )
            variant = variant_for(vin, seed)
            state.model, state.firmware = model or variant.model, variant.firmware
            state.equipment = variant.equipment
            agent_rng = random.Random(f"{seed}-{vin}")
            skew_ms = int(agent_rng.uniform(-1, 1) * self.faults.clock_skew_s * 1000)
            self.agents.append(
                VehicleAgent(
                    state,
                    host=host,
                    port=port,
                    rng=agent_rng,
                    clock_skew_ms=skew_ms,
                    malformed_share=self.faults.malformed_share,
                    tls_context=tls_for(vin),
                    verifier=verifier,
                    password=password,
                    confirm=confirm,
                    confirm_timeout_s=confirm_timeout_s,
                    reconnect_max_s=reconnect_max_s,
                    ota=_car_ota(ota, vin),
                )
            )
        self.sampled = 0
        self.events = 0
        self.parking_events: Counter[str] = Counter()
        self.forced_offline: list[str] = []
        self._samples: list[asyncio.TimerHandle] = []  # of the last tick, still to come
        self._car_events = [
            CarEvents(random.Random(f"{seed}-events-{agent.vin}")) for agent in self.agents
        ]
        self._elapsed_s = 0.0
        self.sites: HazardSites | None = None
        if hazard_sites_every_s > 0 and isinstance(self.movement, SumoFleet):
            plans = recurring_sites(hazard_sites_every_s, duration_s)
            self.sites = HazardSites(self.movement, plans, random.Random(f"{seed}-sites"))

    def truth(self) -> Truth:
        """What the cars sent: per VIN and boot, the last seq (each boot sent 1..last)."""
        return {agent.vin: {agent.boot: agent.last_seq} for agent in self.agents}

    def connected(self) -> int:
        return sum(agent.connected for agent in self.agents)

    def tick(self) -> None:
        """Advance movement by one interval and let every car report, spread over the interval.

        Real cars do not report in step: one burst of the whole fleet each interval would stall
        the simulator's event loop (and what it measures) for hundreds of milliseconds.
        """
        if not self.stationary:
            self.movement.step(self.interval_s)
        self._elapsed_s += self.interval_s
        placed: dict[int, list[Report]] = {}
        if self.sites is not None:
            now_ms = time.time_ns() // 1_000_000
            for index, report in self.sites.step(self._elapsed_s, now_ms):
                placed.setdefault(index, []).append(report)
        loop = asyncio.get_running_loop()
        spread = self.interval_s / _REPORT_SLICES
        self._samples = []
        for index, (agent, car) in enumerate(zip(self.agents, self.movement.cars, strict=True)):
            if not self.stationary:
                report_motion(agent.state, car, self.movement.position(index), self.interval_s)
            self._samples.append(
                loop.call_later((index % _REPORT_SLICES) * spread, agent.sample_telemetry)
            )
            self.sampled += 1
            self._maybe_events(index, agent, car, placed.get(index, []))
        self._parking_reports()

    def parked_now(self) -> int:
        """Cars standing at the curb."""
        return self.movement.parked_count() if isinstance(self.movement, SumoFleet) else 0

    def _parking_reports(self) -> None:
        if not isinstance(self.movement, SumoFleet) or self._parking is None:
            return
        reports = self.movement.take_parking_reports()
        for index, placed in placed_events(reports, self._parking.car_length_m):
            where = (placed.latitude, placed.longitude, placed.heading_deg, placed.speed_kmh)
            self.agents[index].report_event(placed.kind, placed.data, where)
            self.events += 1
            self.parking_events[placed.kind] += 1

    def _maybe_events(
        self, index: int, agent: VehicleAgent, car: Car, placed: list[Report]
    ) -> None:
        """The car's own events (a parked car has none) and those a hazard site makes it report."""
        events = self._car_events[index]
        driving = not (isinstance(self.movement, SumoFleet) and self.movement.is_parked(index))
        own = (
            events.step(car.last_decel_ms2, self.interval_s, car.last_accel_ms2) if driving else []
        )
        for kind, data in own + placed:
            if kind is EventKind.HAZARD_LIGHTS:
                events.hazard_lights = True
            agent.report_event(kind, data)
            self.events += 1
        agent.state.hazard_lights = events.hazard_lights

    async def _start_agent(self, agent: VehicleAgent, index: int, stop: asyncio.Event) -> None:
        """Start ``agent``, spread over time at ``connect_rate`` connections per second."""
        if self.connect_rate > 0:
            await asyncio.sleep(index / self.connect_rate)
        await agent.run(stop)

    def _inject_faults(self) -> None:
        share = self.faults.offline_share
        if share <= 0:
            return
        count = round(len(self.agents) * share)
        for agent in self._rng.sample(self.agents, count):
            agent.drop_connection(self.faults.offline_s)
            self.forced_offline.append(agent.vin)

    async def run(
        self,
        duration_s: float,
        *,
        on_tick: Callable[[FleetSimulation, float], None] | None = None,
        stop: asyncio.Event | None = None,
    ) -> FleetSummary:
        stop = stop or asyncio.Event()
        agent_stop = asyncio.Event()
        tasks = [
            asyncio.create_task(self._start_agent(agent, index, agent_stop))
            for index, agent in enumerate(self.agents)
        ]
        car_failed = asyncio.Event()
        for task in tasks:
            task.add_done_callback(
                lambda done: car_failed.set() if not done.cancelled() and done.exception() else None
            )
        started = time.monotonic()
        next_tick = started + self.interval_s
        faulted = stormed = False
        try:
            while (
                not stop.is_set()
                and not car_failed.is_set()
                and time.monotonic() - started < duration_s
            ):
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
                next_tick += self.interval_s
                self.tick()
                elapsed = time.monotonic() - started
                if not faulted and elapsed >= self.faults.offline_at_s:
                    self._inject_faults()
                    faulted = True
                storm = self.faults.storm_at_s
                if storm is not None and not stormed and elapsed >= storm:
                    for agent in self.agents:
                        agent.drop_connection(0.5)
                    stormed = True
                if on_tick is not None:
                    on_tick(self, elapsed)
        finally:
            connected_at_end = self.connected()
            for sample in self._samples:  # a car that stopped samples nothing more
                sample.cancel()
            agent_stop.set()
            await asyncio.wait(tasks, timeout=30)
            now_ms = time.time_ns() // 1_000_000
            sites = [] if self.sites is None else self.sites.finish(now_ms)
            self.movement.close()
            if self._http is not None:
                await self._http.aclose()
        failed = [
            task for task in tasks if task.done() and not task.cancelled() and task.exception()
        ]
        if failed:  # a car whose task died would be silent for the rest of the run
            error = failed[0].exception()
            raise SimulationError(f"{len(failed)} car(s) failed: {error!r}") from error
        stats = [agent.stats for agent in self.agents]
        return FleetSummary(
            vehicles=len(self.agents),
            duration_s=round(time.monotonic() - started, 1),
            connected_at_end=connected_at_end,
            telemetry_sampled=self.sampled,
            published=sum(s.published for s in stats),
            resent=sum(s.resent for s in stats),
            events=self.events,
            commands=sum(s.commands for s in stats),
            connects=sum(s.connects for s in stats),
            disconnects=sum(s.disconnects for s in stats),
            errors=sum(s.errors for s in stats),
            malformed=sum(s.malformed for s in stats),
            outbox_dropped=sum(agent.outbox.dropped for agent in self.agents),
            forced_offline=self.forced_offline,
            confirm=self.confirm,
            confirmed=sum(agent.outbox.confirmed_count for agent in self.agents),
            sent_again=sum(agent.outbox.resends for agent in self.agents),
            unconfirmed_max=max((s.unconfirmed_max for s in stats), default=0),
            held_at_exit=sum(s.held_at_exit for s in stats),
            **_lag_percentiles([lag for agent in self.agents for lag in agent.outbox.lags]),
            warned=dict(Counter(h for agent in self.agents for h in agent.warnings.first_heard_ms)),
            sites=sites,
            parked=self.parking_events[EventKind.PARKED],
            unparked=self.parking_events[EventKind.UNPARKED],
            parking_gaps=self.parking_events[EventKind.PARKING_GAP],
            ota_steps=dict(sum((a.ota.steps for a in self.agents if a.ota), Counter[str]())),
            firmware=dict(Counter(agent.state.firmware for agent in self.agents)),
        )


def _car_ota(ota: OtaConfig | None, vin: str) -> OtaConfig | None:
    """One car's OTA settings: the fleet's, with a flash directory of its own."""
    if ota is None or ota.flash_dir is None:
        return ota
    return dataclasses.replace(ota, flash_dir=ota.flash_dir / vin)


def _lag_percentiles(lags: list[float]) -> dict[str, float | None]:
    if not lags:
        return {"confirm_p50_ms": None, "confirm_p99_ms": None}
    lags.sort()
    return {
        "confirm_p50_ms": round(lags[len(lags) // 2] * 1000, 1),
        "confirm_p99_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000, 1),
    }
