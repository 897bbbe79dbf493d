"""Tire pressure, pure: a slow leak by its trend, a cold night not, a rapid loss at once."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from fleetlink.apps.maintenance.tires import (
    WHEELS,
    Found,
    TireFinding,
    TireParams,
    normalised_kpa,
    theil_sen_per_day,
    tire_step,
)

T0 = 1_800_000_000_000
HOUR_MS = 3_600_000
PLACARD = {WHEELS[0]: 240.0, WHEELS[1]: 240.0, WHEELS[2]: 235.0, WHEELS[3]: 235.0}
LEAKING = WHEELS[2]


def gauge_at(kpa_at_20c: float, temperature_c: float) -> float:
    """What the gauge shows for air that reads ``kpa_at_20c`` at 20 °C."""
    return (kpa_at_20c + 101.325) * (temperature_c + 273.15) / 293.15 - 101.325


def drive(
    hours: float,
    *,
    leak_kpa_per_day: float = 0.0,
    temperature: Any = lambda _h: 20.0,
    every_min: float = 5.0,
    jitter_kpa: float = 0.5,
    seed: int = 7,
) -> list[tuple[float, Found]]:
    """A car reporting every ``every_min`` for ``hours``: every wheel loses 0.3 kPa a day
    (permeation), ``LEAKING`` also ``leak_kpa_per_day``; the findings, with their hour."""
    rng = random.Random(seed)
    state: dict[str, Any] = {}
    found: list[tuple[float, Found]] = []
    steps = int(hours * 60 / every_min)
    for n in range(steps + 1):
        hour = n * every_min / 60
        celsius = temperature(hour)
        gauges = {}
        for wheel in WHEELS:
            loss = 0.3 * hour / 24 + (leak_kpa_per_day * hour / 24 if wheel == LEAKING else 0)
            at_20 = PLACARD[wheel] - loss + rng.gauss(0, jitter_kpa)
            gauges[wheel] = gauge_at(at_20, celsius)
        ts = T0 + int(hour * HOUR_MS)
        found += [(hour, f) for f in tire_step(state, ts, gauges, celsius, TireParams())]
    return found


def test_normalising_undoes_what_the_temperature_does() -> None:
    assert normalised_kpa(240.0, 20.0) == pytest.approx(240.0)
    cold = gauge_at(240.0, -15.0)
    assert cold == pytest.approx(199.0, abs=0.5)  # 41 kPa less on a -15 °C morning
    assert normalised_kpa(cold, -15.0) == pytest.approx(240.0)


def test_theil_sen_ignores_a_few_wild_readings() -> None:
    points = [[h * 3600.0, -h * 1.0] for h in range(24)]  # -24 kPa a day
    points[5][1] = 40.0
    points[17][1] = -90.0
    assert theil_sen_per_day(points) == pytest.approx(-24.0, abs=0.5)


def test_a_20_kpa_a_day_leak_is_found_within_six_and_a_half_hours_once() -> None:
    found = drive(48, leak_kpa_per_day=20.0)
    assert [(f.wheel, f.finding) for _, f in found] == [(LEAKING, TireFinding.LEAK)]
    hour, leak = found[0]
    assert 6.0 <= hour <= 6.5
    assert leak.evidence["kpa_per_day"] == pytest.approx(-20.0, abs=3.0)


def test_a_minus_15_night_is_no_leak() -> None:
    def night(hour: float) -> float:  # 15 °C at 4 in the afternoon, -15 °C at 4 in the morning
        return 15.0 * math.cos(2 * math.pi * (hour - 16) / 24)

    assert night(4) == pytest.approx(-15.0)
    assert drive(72, temperature=night) == []


def test_a_cold_night_is_no_leak_even_when_the_car_misreads_the_air() -> None:
    """The car's thermometer says 20 °C all night while the tires cool to -15 °C: 41 kPa less
    on every wheel by morning, a fall of 80 kPa a day, yet the wheels fall alike."""

    def night(hour: float) -> float:
        return 15.0 * math.cos(2 * math.pi * (hour - 16) / 24)

    rng = random.Random(3)
    state: dict[str, Any] = {}
    found = []
    for n in range(72 * 12):
        hour = n / 12
        gauges = {w: gauge_at(PLACARD[w] + rng.gauss(0, 0.5), night(hour)) for w in WHEELS}
        found += tire_step(state, T0 + int(hour * HOUR_MS), gauges, 20.0, TireParams())
    assert found == []


def test_a_rapid_loss_is_critical_on_the_record_that_shows_it() -> None:
    state: dict[str, Any] = {}
    gauges = dict(PLACARD)
    assert tire_step(state, T0, gauges, 20.0, TireParams()) == []
    gauges[LEAKING] = 170.0  # a blow-out: 72 % of placard
    [critical] = tire_step(state, T0 + 60_000, gauges, 20.0, TireParams())
    assert (critical.wheel, critical.finding, critical.ts) == (
        LEAKING,
        TireFinding.CRITICAL,
        T0 + 60_000,
    )
    assert critical.evidence == {"kpa_at_20c": 170.0, "placard_kpa": 235.0}
    assert tire_step(state, T0 + 120_000, gauges, 20.0, TireParams()) == []  # told once


def test_a_refill_resolves_what_was_told_and_the_wheel_starts_afresh() -> None:
    state: dict[str, Any] = {}
    gauges = dict(PLACARD)
    gauges[LEAKING] = 170.0
    assert len(tire_step(state, T0, gauges, 20.0, TireParams())) == 1
    gauges[LEAKING] = 235.0
    [refilled] = tire_step(state, T0 + 60_000, gauges, 20.0, TireParams())
    assert refilled == Found(
        LEAKING,
        TireFinding.CRITICAL,
        T0 + 60_000,
        {"kpa_at_20c": 235.0},
        raised_ts=T0,
        resolved=True,
    )
    assert tire_step(state, T0 + 90_000, gauges, 20.0, TireParams()) == []
    gauges[LEAKING] = 160.0
    assert [f.finding for f in tire_step(state, T0 + 120_000, gauges, 20.0, TireParams())] == [
        TireFinding.CRITICAL
    ]


def test_history_and_a_record_without_every_wheel_change_nothing() -> None:
    state: dict[str, Any] = {}
    assert tire_step(state, T0, dict(PLACARD), 20.0, TireParams()) == []
    before = dict(state)
    flat = {**PLACARD, LEAKING: 100.0}
    assert tire_step(state, T0 - 1, flat, 20.0, TireParams()) == []  # older: history
    assert tire_step(state, T0 + 1, {WHEELS[0]: 100.0}, 20.0, TireParams()) == []
    assert state == before
