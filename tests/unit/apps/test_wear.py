"""Battery fade and service intervals, pure, with exact outputs."""

from __future__ import annotations

import random
from typing import Any

from fleetlink.apps.maintenance.wear import (
    WearParams,
    battery_step,
    service_recorded,
    service_step,
)
from fleetlink.contracts.alerts import AlertState, Severity

VIN = "WVWZZZ1JZXW000001"
T0 = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000  # midnight
DAY_MS = 86_400_000


def fade(per_year: float, days: int, seed: int = 7) -> list[tuple[float, Any]]:
    """SoH read every 2 h from 95 %, falling ``per_year``, with the estimate's noise (±0.8 %
    through a day, as temperature and charge move it)."""
    rng = random.Random(seed)
    state: dict[str, Any] = {}
    found = []
    for n in range(days * 12):
        day = n / 12
        soh = 95.0 - per_year * day / 365.25 + rng.gauss(0, 0.8)
        ts = T0 + int(day * DAY_MS)
        found += [(day, a) for a in battery_step(state, VIN, ts, soh, WearParams())]
    return found


def test_a_normal_fade_raises_nothing_in_a_year() -> None:
    assert fade(2.3, 365) == []
    assert fade(3.0, 365, seed=11) == []  # mostly fast DC charging


def test_a_fast_fade_is_told_once_when_90_days_are_in() -> None:
    [(day, alert)] = fade(15.0, 200)
    assert day == 90.0  # the first record of day 91 closes day 90: 90 daily means
    assert (alert.kind.value, alert.severity, alert.state) == (
        "battery-fade",
        Severity.WARNING,
        AlertState.RAISED,
    )
    assert -17 < alert.evidence["pct_per_year"] < -13


def test_service_warns_once_then_is_due_once_then_a_service_resolves_it() -> None:
    state: dict[str, Any] = {}
    seen = []
    for day in range(0, 300):
        odometer = 20_000.0 + 60.0 * day  # 60 km a day: 15,000 km after 250 days
        for alert in service_step(state, VIN, T0 + day * DAY_MS, odometer, WearParams()):
            seen.append((day, alert.severity, alert.title, alert.evidence["km_left"]))
    assert seen == [
        (234, Severity.INFO, "Service due soon", 960.0),
        (250, Severity.WARNING, "Service due", 0.0),
    ]
    [resolved] = service_recorded(state, T0 + 300 * DAY_MS, 38_000.0)
    assert (resolved.state, resolved.raised_ts) == (AlertState.RESOLVED, T0 + 234 * DAY_MS)
    assert service_step(state, VIN, T0 + 301 * DAY_MS, 38_060.0, WearParams()) == []


def test_service_by_time_for_a_car_that_hardly_drives() -> None:
    state: dict[str, Any] = {}
    days = []
    for day in range(0, 400):
        for alert in service_step(state, VIN, T0 + day * DAY_MS, 5_000.0 + day, WearParams()):
            days.append((day, alert.title))
    assert days == [(335, "Service due soon"), (365, "Service due")]


def test_a_service_recorded_with_nothing_open_resolves_nothing() -> None:
    state: dict[str, Any] = {}
    service_step(state, VIN, T0, 1_000.0, WearParams())
    assert service_recorded(state, T0 + DAY_MS, 1_100.0) == []
    assert (state["since_km"], state["since_ts"]) == (1_100.0, T0 + DAY_MS)
