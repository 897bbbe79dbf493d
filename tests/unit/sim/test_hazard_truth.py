"""The simulator's hazard truth and the scoring of the app's output against it, pure."""

from __future__ import annotations

import random
from typing import Any

from fleetlink.contracts.geo import cell_of
from fleetlink.contracts.hazards import Hazard, HazardGroup, HazardState
from fleetlink.contracts.models import EventKind
from fleetlink.sim.events import ABS_MS2, HARSH_ACCELERATION_MS2, HARSH_BRAKING_MS2, CarEvents
from fleetlink.sim.hazard_truth import HazardSite, SiteKind, score

T0 = 1_800_000_000_000
ICE = HazardSite("ice-0", SiteKind.ICE, 52.52, 13.40, T0, T0 + 240_000, T0 + 5_000)
CAR = HazardSite("breakdown-1", SiteKind.BREAKDOWN, 52.53, 13.41, T0, T0 + 180_000)


def hazard(hazard_id: str, group: HazardGroup, at: tuple[float, float], after_s: float) -> Hazard:
    fields: dict[str, Any] = {
        "hazard_id": hazard_id,
        "state": HazardState.CONFIRMED,
        "group": group,
        "cause": 6,
        "sub_cause": 0,
        "cell": cell_of(*at),
        "latitude": at[0],
        "longitude": at[1],
        "reporters": 3,
        "first_ts": T0,
        "confirmed_ts": T0 + int(after_s * 1000),
        "ts": T0 + int(after_s * 1000),
        "expires_at": T0 + 900_000,
    }
    return Hazard(**fields)


def test_found_sites_false_hazards_and_delays() -> None:
    found = hazard("h1", HazardGroup.TRACTION, (52.5201, 13.4001), 40)
    wrong_group = hazard("h2", HazardGroup.EMERGENCY_BRAKE, (52.52, 13.40), 50)
    elsewhere = hazard("h3", HazardGroup.STATIONARY, (52.60, 13.41), 10)
    quality = score([ICE, CAR], [found, wrong_group, elsewhere])
    assert (quality.sites, quality.found, quality.confirmed) == (2, 1, 3)
    assert (quality.true_positives, quality.false_positives) == (1, 2)
    assert quality.recall == 0.5
    assert quality.precision == 1 / 3
    ice, car = quality.per_site
    assert (ice.found, ice.delay_s, ice.delay_after_report_s) == (True, 40.0, 35.0)
    assert (car.found, car.delay_s) == (False, None)
    assert {h.hazard_id for h in quality.false_hazards} == {"h2", "h3"}


def test_a_hazard_confirmed_long_after_the_site_ended_finds_nothing() -> None:
    late = hazard("h1", HazardGroup.TRACTION, (52.52, 13.40), 240 + 31)
    quality = score([ICE], [late])
    assert quality.recall == 0.0
    assert quality.false_positives == 1


def test_no_sites_and_no_hazards_is_a_clean_run() -> None:
    quality = score([], [])
    assert (quality.recall, quality.precision, quality.false_positives) == (None, None, 0)


def test_a_car_reports_harsh_braking_abs_and_its_hazard_lights() -> None:
    car = CarEvents(random.Random(1))
    assert [kind for kind, _ in car.step(HARSH_BRAKING_MS2 - 0.1, 0.0)] == []
    assert [kind for kind, _ in car.step(HARSH_BRAKING_MS2, 0.0)] == [EventKind.HARSH_BRAKING]
    kinds = [kind for kind, _ in car.step(ABS_MS2, 0.0)]
    assert kinds == [EventKind.HARSH_BRAKING, EventKind.ABS_ACTIVATION, EventKind.HAZARD_LIGHTS]
    assert car.hazard_lights


def test_a_car_reports_harsh_acceleration_from_the_threshold_on() -> None:
    car = CarEvents(random.Random(1))
    assert car.step(0.0, 0.0, HARSH_ACCELERATION_MS2 - 0.1) == []
    [(kind, data)] = car.step(0.0, 0.0, HARSH_ACCELERATION_MS2)
    assert (kind, data) == (EventKind.HARSH_ACCELERATION, {"acceleration_ms2": 3.6})


def test_a_normal_day_of_driving_brings_no_crash_and_rare_esc() -> None:
    car = CarEvents(random.Random(7))
    kinds = [kind for _ in range(36_000) for kind, _ in car.step(0.0, 1.0)]  # ten hours
    assert EventKind.CRASH not in kinds
    assert kinds.count(EventKind.ESC_ACTIVATION) <= 3
    assert EventKind.PARKING_GAP not in kinds  # gaps are seen at the curb (sim.curb)
