"""Cars' health over simulated days, seeded, with its truth: what the maintenance app should find.

A seeded share of cars gets one fault each: a slow leak in one tire (10-30 kPa a day, a nail;
fixed 2-4 days later), a puncture (the tire down to half its pressure within minutes; changed
hours later), a fast-fading traction battery (8-15 %/yr against 1-3 % for the rest), a trouble
code raised (sent again at each trip, cleared by a repair days later), or a service coming due.
Every car, faulty or not, lives through the same weather (a daily swing of about 12 °C, one
night down to -15 °C), warms its tires by driving (fronts more than rears), loses 0.2-0.5 kPa
a day to permeation (its tires topped up every 20-40 days), and reports through sensors with
jitter and resolution (1 kPa, 0.1 %).

A slow leak left long enough falls to 75 % of placard: that moment is a ``tire-critical``
truth of its own. Pure: the same seed gives the same cars, readings and truth.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import msgspec

from fleetlink.contracts import vss
from fleetlink.contracts.models import SignalValue

DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000
_ATMOSPHERE_KPA: Final = 101.325
_KELVIN: Final = 273.15
PLACARD: Final = (240.0, 240.0, 235.0, 235.0)  # front-left, front-right, rear-left, rear-right
WHEEL_NAMES: Final = ("front-left", "front-right", "rear-left", "rear-right")
_DRIVE_HEAT_C: Final = (12.0, 12.0, 9.0, 9.0)
DTC_LAMPS: Final = {  # the simulator's codes with the lamps a car shows for each
    "P0300": {"mil": True},
    "P0420": {"mil": True},
    "C0035": {"amber": True},
    "B1000": {},
    "U0100": {"red_stop": True},
}


class FaultKind(StrEnum):
    SLOW_LEAK = "tire-leak"
    TIRE_CRITICAL = "tire-critical"
    BATTERY_FADE = "battery-fade"
    DTC = "dtc"
    SERVICE_DUE = "service-due"


class TrueFault(msgspec.Struct, frozen=True):
    vin: str
    kind: FaultKind
    subject: str  # a wheel, a code, "battery", "service"
    start_ms: int
    end_ms: int | None = None  # fixed (None: still there when the run ended)
    detail: dict[str, float] = {}


@dataclass(frozen=True)
class HealthPlan:
    """Shares of the fleet per fault (each car one at most), and the service interval."""

    leak: float = 0.1
    puncture: float = 0.03
    fade: float = 0.1
    dtc: float = 0.1
    service: float = 0.1
    fault_days: float = 5.0  # faults start within this many days of the start
    interval_km: float = 15_000.0
    interval_days: float = 365.0
    warn_km: float = 1_000.0
    warn_days: float = 30.0


class Weather:
    """One city's air temperature: a daily mean that wanders, a swing peaking at 15:00, and
    the third night a cold snap to -15 °C."""

    def __init__(self, rng: random.Random, days: int, start_ms: int) -> None:
        self._start_ms = start_ms - start_ms % DAY_MS
        means, mean = [], rng.uniform(4, 12)
        for _ in range(days + 2):
            mean = min(25.0, max(-5.0, mean + rng.gauss(0, 2)))
            means.append(mean)
        self._means, self._swing = means, [rng.uniform(4, 7) for _ in means]
        if len(means) > 3:
            self._means[2], self._swing[2] = -8.0, 7.0  # 03:00 of day 3: -15 °C

    def at(self, ts_ms: int) -> float:
        days = (ts_ms - self._start_ms) / DAY_MS
        day = min(max(0, int(days)), len(self._means) - 1)
        hour = (days - int(days)) * 24
        return self._means[day] + self._swing[day] * math.cos(2 * math.pi * (hour - 15) / 24)


@dataclass
class Wheel:
    kpa_at_20c: float
    permeation_per_day: float
    tire_c: float
    leak_per_day: float = 0.0


@dataclass
class CarHealth:
    """One car: ``step`` moves it on to ``ts_ms`` and gives its signals and the DTC events
    it sends then."""

    vin: str
    rng: random.Random
    odometer_km: float
    soh_pct: float
    fade_per_year: float
    wheels: list[Wheel]
    truth: list[TrueFault] = field(default_factory=list)
    open_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    plans: list[tuple[int, str, Any]] = field(default_factory=list)  # (at, what, detail)
    fault: str | None = None  # what the plan gave it: leak, puncture, fade, dtc, service
    trips: list[tuple[int, int]] = field(default_factory=list)  # today's, (start, end)
    planned_day: int = -1
    was_driving: bool = False
    last_ms: int = 0

    def driving(self, ts_ms: int) -> bool:
        return any(start <= ts_ms < end for start, end in self.trips)

    def step(self, ts_ms: int, air_c: float) -> tuple[dict[str, SignalValue], list[dict[str, Any]]]:
        dt_s = max(0.0, (ts_ms - self.last_ms) / 1000) if self.last_ms else 0.0
        events: list[dict[str, Any]] = []
        self._trips(ts_ms)
        driving = self.driving(ts_ms)
        if driving and not self.was_driving:  # a trip begins: the open codes are sent again
            events += [{"code": c, "status": "raised", **d} for c, d in self.open_codes.items()]
        events += self._plans(ts_ms)
        if driving:
            self.odometer_km += dt_s / 3600 * self.rng.uniform(25, 45)
        days = dt_s / 86_400
        self.soh_pct -= self.fade_per_year * days / 365.25
        for index, wheel in enumerate(self.wheels):
            wheel.kpa_at_20c -= (wheel.permeation_per_day + wheel.leak_per_day) * days
            target = air_c + (_DRIVE_HEAT_C[index] if driving else 0.0)
            tau_s = 900.0 if driving else 2700.0
            wheel.tire_c += (target - wheel.tire_c) * (1 - math.exp(-dt_s / tau_s))
            self._critical(index, ts_ms)
        self.last_ms, self.was_driving = ts_ms, driving
        return self._signals(air_c), events

    def _signals(self, air_c: float) -> dict[str, SignalValue]:
        gauges = [
            round(
                (w.kpa_at_20c + _ATMOSPHERE_KPA) * (w.tire_c + _KELVIN) / (20 + _KELVIN)
                - _ATMOSPHERE_KPA
                + self.rng.gauss(0, 0.5)
            )
            for w in self.wheels
        ]
        # the BMS's estimate moves with the cells' temperature and from day to day
        soh = self.soh_pct + 0.01 * (air_c - 20) + self.rng.gauss(0, 0.15)
        signals: dict[str, SignalValue] = {
            vss.ODOMETER: round(self.odometer_km, 1),
            vss.BATTERY_STATE_OF_HEALTH: round(soh, 1),
            vss.AMBIENT_TEMPERATURE: round(air_c + self.rng.gauss(0, 0.3), 1),
        }
        signals.update(zip(vss.TIRE_PRESSURES, (float(g) for g in gauges), strict=True))
        # a TPMS sensor reads its tire's air to the degree
        own = (float(round(w.tire_c + self.rng.gauss(0, 0.3))) for w in self.wheels)
        signals.update(zip(vss.TIRE_TEMPERATURES, own, strict=True))
        return signals

    def _trips(self, ts_ms: int) -> None:
        """Each day's trips, planned at its first step: two commutes (about 07:30 and 17:30),
        and some days an errand at noon."""
        day = ts_ms // DAY_MS
        if day == self.planned_day:
            return
        self.planned_day = day
        self.trips = []
        for leaves_h, chance in ((7.5, 0.9), (12.5, 0.3), (17.5, 0.9)):
            if self.rng.random() < chance:
                start = day * DAY_MS + int((leaves_h + self.rng.uniform(-1, 1)) * HOUR_MS)
                self.trips.append((start, start + int(self.rng.uniform(15, 50) * 60_000)))

    def _plans(self, ts_ms: int) -> list[dict[str, Any]]:
        due = [plan for plan in self.plans if plan[0] <= ts_ms]
        self.plans = [plan for plan in self.plans if plan[0] > ts_ms]
        events: list[dict[str, Any]] = []
        for at, what, detail in due:
            if what == "leak":
                self.wheels[detail[0]].leak_per_day = detail[1]
            elif what == "puncture":
                self.wheels[detail].kpa_at_20c = PLACARD[detail] * 0.5
            elif what == "fix":
                wheel = self.wheels[detail]
                wheel.leak_per_day = 0.0
                wheel.kpa_at_20c = PLACARD[detail] + self.rng.uniform(0, 5)
                self._end(WHEEL_NAMES[detail], at)
            elif what == "top-up":  # at the filling station: the low wheels (a leak goes on)
                for index, wheel in enumerate(self.wheels):
                    if wheel.kpa_at_20c < PLACARD[index]:
                        wheel.kpa_at_20c = PLACARD[index] + self.rng.uniform(0, 5)
                        self._end(WHEEL_NAMES[index], at, FaultKind.TIRE_CRITICAL)
            elif what == "dtc":
                self.open_codes[detail] = {"lamps": DTC_LAMPS[detail]}
                events.append({"code": detail, "status": "raised", "lamps": DTC_LAMPS[detail]})
            elif what == "clear":
                self.open_codes.pop(detail, None)
                events.append({"code": detail, "status": "cleared"})
                self._end(detail, at)
        return events

    def _critical(self, index: int, ts_ms: int) -> None:
        """A wheel at 75 % of placard or below: a truth of its own, from that moment."""
        name = WHEEL_NAMES[index]
        low = self.wheels[index].kpa_at_20c <= 0.75 * PLACARD[index]
        known = any(
            f.kind is FaultKind.TIRE_CRITICAL and f.subject == name and f.end_ms is None
            for f in self.truth
        )
        if low and not known:
            self.truth.append(TrueFault(self.vin, FaultKind.TIRE_CRITICAL, name, ts_ms))

    def _end(self, subject: str, at: int, kind: FaultKind | None = None) -> None:
        self.truth = [
            msgspec.structs.replace(f, end_ms=at)
            if f.subject == subject and f.end_ms is None and kind in (None, f.kind)
            else f
            for f in self.truth
        ]


class ServiceStart(msgspec.Struct, frozen=True):
    """A car's last service before the run (the sim writes it to ``fleet.services``)."""

    vin: str
    ts: int
    odometer_km: float


def fleet_health(
    vins: list[str],
    plan: HealthPlan,
    seed: int,
    start_ms: int,
    days: float,
    faults: Sequence[str | None] = (),
) -> tuple[list[CarHealth], list[ServiceStart], Weather]:
    """The cars, each with its faults planned (and their truth), their last services, and the
    weather they share. ``faults``: the first cars' own (leak, puncture, fade, dtc, service or
    None), instead of the plan's draw."""
    rng = random.Random(f"{seed}-health")
    weather = Weather(random.Random(f"{seed}-weather"), math.ceil(days), start_ms)
    kinds = [
        ("leak", plan.leak),
        ("puncture", plan.puncture),
        ("fade", plan.fade),
        ("dtc", plan.dtc),
        ("service", plan.service),
    ]
    cars: list[CarHealth] = []
    services: list[ServiceStart] = []
    for vin in vins:
        car_rng = random.Random(f"{seed}-{vin}")
        air = weather.at(start_ms)
        car = CarHealth(
            vin=vin,
            rng=car_rng,
            odometer_km=car_rng.uniform(5_000, 80_000),
            soh_pct=car_rng.uniform(88, 99),
            fade_per_year=car_rng.uniform(1.0, 3.0),
            wheels=[
                Wheel(p + car_rng.uniform(-4, 6), car_rng.uniform(0.2, 0.5), air) for p in PLACARD
            ],
        )
        draw, fault = rng.random(), None
        for kind, share in kinds:
            if draw < share:
                fault = kind
                break
            draw -= share
        if len(cars) < len(faults):
            fault = faults[len(cars)]
        services.append(_plan(car, fault, plan, start_ms, days, car_rng))
        cars.append(car)
    return cars, services, weather


def _plan(
    car: CarHealth,
    fault: str | None,
    plan: HealthPlan,
    start_ms: int,
    days: float,
    rng: random.Random,
) -> ServiceStart:
    """Plan the car's fault (its truth with it); its last service before the run."""
    car.fault = fault
    # every car's tires are topped up now and then: every 20-40 days
    top_up = start_ms + int(rng.uniform(0, 40) * DAY_MS)
    while top_up < start_ms + days * DAY_MS:
        car.plans.append((top_up, "top-up", None))
        top_up += int(rng.uniform(20, 40) * DAY_MS)
    at = start_ms + int(rng.uniform(0.2, plan.fault_days) * DAY_MS)
    wheel = rng.randrange(4)
    if fault == "leak":
        rate = rng.uniform(10, 30)
        fixed = at + int(rng.uniform(2, 4) * DAY_MS)
        car.plans += [(at, "leak", (wheel, rate)), (fixed, "fix", wheel)]
        truth = TrueFault(car.vin, FaultKind.SLOW_LEAK, WHEEL_NAMES[wheel], at)
        car.truth.append(msgspec.structs.replace(truth, detail={"kpa_per_day": round(rate, 1)}))
    elif fault == "puncture":
        car.plans += [
            (at, "puncture", wheel),
            (at + int(rng.uniform(2, 6) * HOUR_MS), "fix", wheel),
        ]
    elif fault == "fade":
        car.fade_per_year = rng.uniform(8, 15)
        detail = {"pct_per_year": round(car.fade_per_year, 1)}
        car.truth.append(
            TrueFault(car.vin, FaultKind.BATTERY_FADE, "battery", start_ms, None, detail)
        )
    elif fault == "dtc":
        code = rng.choice(sorted(DTC_LAMPS))
        cleared = at + int(rng.uniform(1, 4) * DAY_MS)
        car.plans += [(at, "dtc", code), (cleared, "clear", code)]
        car.truth.append(TrueFault(car.vin, FaultKind.DTC, code, at))
    if fault == "service":
        # the warning comes within the run: by distance (about 50 km a day) or by date
        if rng.random() < 0.5:
            since_km = plan.interval_km - plan.warn_km - rng.uniform(20, 150)
            since_days = rng.uniform(30, 200)
        else:
            since_km = rng.uniform(1_000, 8_000)
            since_days = plan.interval_days - plan.warn_days - rng.uniform(0.3, plan.fault_days)
    else:
        since_km = rng.uniform(0, plan.interval_km - plan.warn_km - 2_000)
        since_days = rng.uniform(0, plan.interval_days - plan.warn_days - days - 5)
    car.odometer_km = max(car.odometer_km, since_km + rng.uniform(1_000, 20_000))  # not new
    return ServiceStart(car.vin, start_ms - int(since_days * DAY_MS), car.odometer_km - since_km)


def service_truth(car: CarHealth, last: ServiceStart, ts_ms: int, plan: HealthPlan) -> None:
    """Note the moment the car's service falls within the warning (distance or date)."""
    if any(f.kind is FaultKind.SERVICE_DUE for f in car.truth):
        return
    left_km = plan.interval_km - (car.odometer_km - last.odometer_km)
    left_days = plan.interval_days - (ts_ms - last.ts) / DAY_MS
    if left_km <= plan.warn_km or left_days <= plan.warn_days:
        car.truth.append(TrueFault(car.vin, FaultKind.SERVICE_DUE, "service", ts_ms))
