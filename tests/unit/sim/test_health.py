"""The simulator's car health, pure: seeded, its faults really in the readings, its truth
recorded, and healthy cars healthy."""

from __future__ import annotations

import pytest

from fleetlink.contracts import vss
from fleetlink.sim.health import (
    DAY_MS,
    HOUR_MS,
    FaultKind,
    HealthPlan,
    TrueFault,
    Weather,
    fleet_health,
    service_truth,
)

START = 1_790_000_000_000 - 1_790_000_000_000 % DAY_MS  # midnight
VINS = [f"SEMHEALTH0000000{n}" for n in range(4)]
FAULTS = ["leak", "puncture", "dtc", None]


def simulate(days: float = 7, seed: int = 7, step_s: int = 300) -> tuple[list, dict, list]:
    """The four cars (a leak, a puncture, a DTC, healthy) for ``days``: the cars, the pressures
    (kPa at the gauge) and tire temperatures per VIN per step, and the DTC events."""
    cars, services, weather = fleet_health(VINS, HealthPlan(), seed, START, days, FAULTS)
    readings: dict[str, list[tuple[int, list[float], list[float]]]] = {v: [] for v in VINS}
    events: list[tuple[str, int, dict]] = []
    for ts in range(START + step_s * 1000, START + int(days * DAY_MS), step_s * 1000):
        for car, last in zip(cars, services, strict=True):
            signals, dtcs = car.step(ts, weather.at(ts))
            service_truth(car, last, ts, HealthPlan())
            pressures = [float(signals[w]) for w in vss.TIRE_PRESSURES]
            temperatures = [float(signals[w]) for w in vss.TIRE_TEMPERATURES]
            readings[car.vin].append((ts, pressures, temperatures))
            events += [(car.vin, ts, data) for data in dtcs]
    return cars, readings, events


def at_20c(gauge: float, celsius: float) -> float:
    return (gauge + 101.325) * 293.15 / (celsius + 273.15) - 101.325


def test_the_same_seed_gives_the_same_cars_readings_and_truth() -> None:
    one, two = simulate(days=2), simulate(days=2)
    assert [c.truth for c in one[0]] == [c.truth for c in two[0]]
    assert one[1] == two[1]
    assert simulate(days=2, seed=8)[1] != one[1]


def test_the_third_night_is_minus_15() -> None:
    import random

    weather = Weather(random.Random(1), 7, START)
    assert weather.at(START + 2 * DAY_MS + 3 * HOUR_MS) == pytest.approx(-15.0)
    assert weather.at(START + 2 * DAY_MS + 15 * HOUR_MS) == pytest.approx(-1.0)


def test_a_slow_leak_is_in_the_readings_and_its_truth_ends_with_the_fix() -> None:
    cars, readings, _ = simulate()
    leak = cars[0]
    [fault] = [f for f in leak.truth if f.kind is FaultKind.SLOW_LEAK]
    assert fault.end_ms is not None
    assert 2 * DAY_MS <= fault.end_ms - fault.start_ms <= 4 * DAY_MS
    wheel = ("front-left", "front-right", "rear-left", "rear-right").index(fault.subject)
    during = [
        at_20c(p[wheel], t[wheel])
        for ts, p, t in readings[leak.vin]
        if fault.start_ms <= ts < fault.end_ms
    ]
    days = len(during) * 300 / 86_400
    lost_per_day = (during[0] - during[-1]) / days
    assert lost_per_day == pytest.approx(fault.detail["kpa_per_day"] + 0.35, abs=2.5)


def test_a_puncture_is_critical_at_once_and_a_dtc_is_raised_again_then_cleared() -> None:
    cars, _, events = simulate()
    [critical] = [f for f in cars[1].truth if f.kind is FaultKind.TIRE_CRITICAL]
    assert critical.end_ms is not None
    assert HOUR_MS * 2 <= critical.end_ms - critical.start_ms <= HOUR_MS * 6
    [dtc] = cars[2].truth
    mine = [(ts, data["status"]) for vin, ts, data in events if vin == cars[2].vin]
    assert dtc.end_ms is not None
    # sent at the step after it happened (the truth is when it happened)
    assert mine[0][1] == "raised"
    assert 0 <= mine[0][0] - dtc.start_ms < 300_000
    assert mine[-1][1] == "cleared"
    assert 0 <= mine[-1][0] - dtc.end_ms < 300_000
    assert len(mine) >= 3  # sent again when a trip begins
    assert all(data["code"] == dtc.subject for vin, _, data in events if vin == cars[2].vin)


def test_a_healthy_car_has_no_truth_and_its_wheels_stay_close() -> None:
    cars, readings, _ = simulate()
    assert cars[3].truth == []
    normal = [
        [at_20c(p, t) for p, t in zip(pressures, temps, strict=True)]
        for _, pressures, temps in readings[cars[3].vin]
    ]
    assert max(max(row) - min(row) for row in normal) < 20  # fills differ, no wheel falls away


def test_a_service_coming_due_is_noted_when_the_warning_begins() -> None:
    cars, services, _ = fleet_health(VINS[:1], HealthPlan(), 3, START, 7, ["service"])
    car, last = cars[0], services[0]
    ts = START
    while not car.truth and ts < START + 7 * DAY_MS:
        ts += 300_000
        car.step(ts, 10.0)
        service_truth(car, last, ts, HealthPlan())
    assert car.truth == [TrueFault(car.vin, FaultKind.SERVICE_DUE, "service", ts)]
    driven = car.odometer_km - last.odometer_km
    assert driven >= 14_000 or (ts - last.ts) / DAY_MS >= 335


def test_every_last_service_is_one_the_contract_takes() -> None:
    """Odometers start at 5,000 km or more, a service 14,000 km ago must fit under them."""
    import msgspec

    from fleetlink.contracts.alerts import ServiceRecord
    from fleetlink.contracts.codec import decode, encode

    vins = [f"SEMHEALTH{n:08d}" for n in range(300)]
    _, services, _ = fleet_health(vins, HealthPlan(service=0.5), 11, START, 7)
    for last in services:
        record = ServiceRecord(last.vin, last.ts, last.odometer_km, by="simulator")
        assert decode(ServiceRecord, encode(record)) == record
        assert msgspec.to_builtins(record)["odometer_km"] >= 0
