"""The hazard rules, pure: hand-built reports at fixed times, exact outcomes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from msgspec.structs import replace

from fleetlink.apps.hazards.logic import HazardParams, HazardShard
from fleetlink.contracts.geo import cell_of, cells_near, distance_m
from fleetlink.contracts.hazards import (
    RULE_OF_GROUP,
    ClearReason,
    Hazard,
    HazardGroup,
    HazardState,
)
from tests.unit.apps.stores import JsonStore

T0 = 1_800_000_000_000
SPOT = (52.5200, 13.4050)


def shard(**params: Any) -> HazardShard:
    return HazardShard(JsonStore(), HazardParams(**params))


def offset(point: tuple[float, float], north_m: float, east_m: float) -> tuple[float, float]:
    lat, lon = point
    return (
        lat + north_m / 111_320.0,
        lon + east_m / (111_320.0 * math.cos(math.radians(lat))),
    )


def report(
    vin: str,
    at_s: float,
    where: tuple[float, float] = SPOT,
    kind: str = "harsh-braking",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "t": "report",
        "vin": vin,
        "kind": kind,
        "ts": T0 + int(at_s * 1000),
        "lat": where[0],
        "lon": where[1],
        "msg_id": f"{vin}-{kind}-{at_s}",
        "heading": 90.0,
        **extra,
    }


def feed(shard: HazardShard, *items: dict[str, Any]) -> list[Hazard]:
    """Each input, then the tick of its partition at its time (as the ticker's come live)."""
    out: list[Hazard] = []
    for item in items:
        out += shard.handle(item).hazards
        if item["t"] != "tick":
            out += shard.tick(item["ts"], item.get("src", 0)).hazards
    return out


def test_k_minus_one_cars_make_nothing_and_k_make_one_confirmed() -> None:
    s = shard()
    assert feed(s, report("CAR1", 0), report("CAR2", 5)) == []
    [hazard] = feed(s, report("CAR3", 9))
    assert hazard.state is HazardState.CONFIRMED
    assert (hazard.group, hazard.cause, hazard.sub_cause) == (HazardGroup.EMERGENCY_BRAKE, 99, 1)
    assert hazard.reporters == 3
    assert hazard.first_ts == T0
    assert hazard.confirmed_ts == T0 + 9000
    assert hazard.expires_at == T0 + 9000 + 300_000
    assert hazard.cell == cell_of(*SPOT)
    assert hazard.heading_deg == 90.0
    assert distance_m(hazard.latitude, hazard.longitude, *SPOT) < 1


def test_the_same_car_twice_counts_once() -> None:
    s = shard()
    assert feed(s, report("CAR1", 0), report("CAR1", 5), report("CAR2", 6)) == []
    assert feed(s, report("CAR2", 7)) == []
    assert [h.reporters for h in feed(s, report("CAR3", 8))] == [3]


def test_any_span_confirms_not_fixed_windows() -> None:
    # a fixed 60 s window starting at T0 would split these (55 s | 62 s, 70 s)
    s = shard()
    [hazard] = feed(s, report("CAR1", 55), report("CAR2", 62), report("CAR3", 70))
    assert hazard.confirmed_ts == T0 + 70_000


def test_reports_further_apart_than_the_window_do_not_confirm() -> None:
    s = shard()
    assert feed(s, report("CAR1", 0), report("CAR2", 50), report("CAR3", 111)) == []


def border_points(gap_m: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Two points ``gap_m`` apart on either side of a warning-cell border."""
    start = cell_of(*SPOT)
    for step in range(1, 2000):
        point = offset(SPOT, 0, step)
        if cell_of(*point) != start:
            return offset(point, 0, -gap_m / 2 - 1), offset(point, 0, gap_m / 2)
    raise AssertionError("no border found")


def test_reports_across_a_cell_border_count_together() -> None:
    west, east = border_points(100)
    assert cell_of(*west) != cell_of(*east)
    s = shard()
    hazards = feed(s, report("CAR1", 0, west), report("CAR2", 3, east), report("CAR3", 6, west))
    assert [h.state for h in hazards] == [HazardState.CONFIRMED]


def test_reports_far_apart_in_different_cells_do_not() -> None:
    west, east = border_points(400)
    s = shard()
    assert feed(s, report("CAR1", 0, west), report("CAR2", 3, east), report("CAR3", 6, west)) == []


def test_a_crash_confirms_alone() -> None:
    [hazard] = feed(shard(), report("CAR1", 0, kind="crash"))
    assert (hazard.cause, hazard.reporters, hazard.group) == (92, 1, HazardGroup.POST_CRASH)


def test_abs_and_esc_together_are_an_adhesion_hazard() -> None:
    s = shard()
    hazards = feed(
        s,
        report("CAR1", 0, kind="abs-activation"),
        report("CAR2", 10, kind="esc-activation"),
        report("CAR3", 20, kind="abs-activation"),
    )
    assert [(h.cause, h.sub_cause) for h in hazards] == [(6, 0)]
    only_abs = feed(
        shard(),
        *(report(f"CAR{i}", i, kind="abs-activation") for i in range(3)),
    )
    assert [(h.cause, h.sub_cause) for h in only_abs] == [(99, 4)]


def test_a_new_reporter_updates_and_extends_validity() -> None:
    s = shard()
    [confirmed] = feed(s, *(report(f"CAR{i}", i) for i in range(3)))
    [updated] = feed(s, report("CAR9", 100))
    assert updated.state is HazardState.UPDATED
    assert updated.hazard_id == confirmed.hazard_id
    assert updated.reporters == 4
    assert updated.expires_at == T0 + 100_000 + 300_000
    assert feed(s, report("CAR9", 110), report("CAR1", 120)) == []  # known reporters


def test_time_going_on_expires_it() -> None:
    s = shard()
    [confirmed] = feed(s, *(report(f"CAR{i}", i) for i in range(3)))
    assert s.tick(confirmed.expires_at - 1).hazards == []
    [cleared] = s.tick(confirmed.expires_at + 500).hazards
    assert cleared.state is HazardState.CLEARED
    assert cleared.reason is ClearReason.EXPIRED
    assert cleared.hazard_id == confirmed.hazard_id
    assert cleared.ts == confirmed.expires_at
    assert s.tick(confirmed.expires_at + 5000).hazards == []


def passing(vin: str, at_s: float, speed: float = 40.0, heading: float = 90.0) -> dict[str, Any]:
    return {
        "t": "pass",
        "vin": vin,
        "ts": T0 + int(at_s * 1000),
        "lat": SPOT[0],
        "lon": SPOT[1],
        "speed": speed,
        "heading": heading,
    }


def test_cars_passing_without_reporting_clear_it() -> None:
    s = shard(pass_grace_s=5.0)
    [confirmed] = feed(s, *(report(f"CAR{i}", i) for i in range(3)))
    # a reporter passing, a slow car, a car the other way: none counts
    ignored = [passing("CAR1", 10), passing("SLOW", 11, speed=5), passing("BACK", 12, 40, 270)]
    assert feed(s, *ignored) == []
    assert feed(s, passing("P1", 20), passing("P2", 21), passing("P3", 22)) == []
    # P3 reports it after all: a reporter, not a passer, and the hazard is still there, so
    # only cars passing after its report count
    assert [h.state for h in feed(s, report("P3", 23))] == [HazardState.UPDATED]
    assert feed(s, passing("P4", 24), passing("P5", 25)) == []
    assert s.tick(T0 + 30_500).hazards == []  # P1 and P2 passed before the report
    assert feed(s, passing("P6", 26)) == []
    [cleared] = s.tick(T0 + 31_000).hazards
    assert (cleared.state, cleared.reason, cleared.passed) == (
        HazardState.CLEARED,
        ClearReason.PASSED,
        3,
    )
    assert cleared.hazard_id == confirmed.hazard_id


def test_two_hazards_in_one_cell_stay_apart() -> None:
    s = shard()
    braking = feed(s, *(report(f"CAR{i}", i) for i in range(3)))
    crash = feed(s, report("CAR7", 5, kind="crash"))
    assert len({h.hazard_id for h in braking + crash}) == 2
    assert {h.cell for h in braking + crash} == {cell_of(*SPOT)}
    expired = s.tick(braking[0].expires_at).hazards
    assert [h.hazard_id for h in expired] == [braking[0].hazard_id]


def test_late_reports_are_counted_and_never_confirm() -> None:
    s = shard(grace_s=10.0)
    s.tick(T0 + 100_000)
    outcomes = [s.handle(report(f"CAR{i}", 80 + i)) for i in range(3)]
    assert all(o.late and not o.hazards for o in outcomes)
    flagged = [s.handle(report(f"NEW{i}", 100 + i, late=True)) for i in range(3)]
    assert all(o.late and not o.hazards for o in flagged)


def test_a_partition_that_runs_ahead_makes_no_other_late() -> None:
    """Partition 0 is 200 s ahead (a replay, an accelerated run): partition 1's reports of
    that time still count, and nothing expires before every partition got there."""
    s = HazardShard(JsonStore(), HazardParams(grace_s=10.0), sources=2)
    s.tick(T0 + 200_000, 0)
    outcomes = [s.handle(report(f"CAR{i}", i, src=1)) for i in range(3)]
    assert [o.late for o in outcomes] == [False, False, False]
    [confirmed] = s.tick(T0 + 2_000, 1).hazards  # partition 1's watermark reached them
    s.tick(confirmed.expires_at + 1000, 0)
    assert s.tick(confirmed.expires_at - 1000, 1).hazards == []  # partition 1 not there yet
    [cleared] = s.tick(confirmed.expires_at, 1).hazards
    assert (cleared.hazard_id, cleared.reason) == (confirmed.hazard_id, ClearReason.EXPIRED)
    # once both are past it, an old report is late
    assert s.handle(report("LATE1", 100, src=1)).late


def test_partitions_interleaved_any_way_give_what_time_order_gives() -> None:
    """Reports of cars on two partitions, read in every interleaving that keeps each
    partition's own order: the same hazard, confirmed by the first three cars in time."""
    first = [report("CAR0", 0, src=0), report("CAR1", 17, src=0), report("CAR3", 198, src=0)]
    second = [report("CAR2", 41, src=1)]
    ticks = [{"t": "tick", "ts": T0 + 200_000, "src": n} for n in (0, 1)]
    results = set()
    for at in range(len(first) + 1):
        s = HazardShard(JsonStore(), HazardParams(), sources=2)
        hazards = feed(s, *first[:at], *second, *first[at:], *ticks)
        results.add(tuple((h.hazard_id, h.state, h.confirmed_ts, h.reporters) for h in hazards))
    [outputs] = results
    (hazard_id, state, confirmed_ts, reporters), update = outputs
    assert (state, confirmed_ts, reporters) == (HazardState.CONFIRMED, T0 + 41_000, 3)
    assert update == (hazard_id, HazardState.UPDATED, T0 + 41_000, 4)


def test_arrival_order_does_not_change_the_hazard() -> None:
    reports = [report("CAR1", 0), report("CAR2", 2), report("CAR3", 4)]
    [a] = feed(shard(), *reports)
    [b] = feed(shard(), *reversed(reports))
    assert (a.hazard_id, a.confirmed_ts, a.first_ts, a.cell) == (
        b.hazard_id,
        b.confirmed_ts,
        b.first_ts,
        b.cell,
    )


def test_rules_come_from_settings() -> None:
    rules = dict(RULE_OF_GROUP)
    rules[HazardGroup.EMERGENCY_BRAKE] = replace(rules[HazardGroup.EMERGENCY_BRAKE], k=2)
    [hazard] = feed(shard(rules=rules), report("CAR1", 0), report("CAR2", 1))
    assert hazard.reporters == 2


@pytest.mark.parametrize("radius", [10.0, 150.0, 600.0])
def test_cells_near_holds_every_cell_within_the_radius(radius: float) -> None:
    near = cells_near(*SPOT, radius)
    for bearing in range(0, 360, 10):
        north = radius * 0.9 * math.cos(math.radians(bearing))
        east = radius * 0.9 * math.sin(math.radians(bearing))
        point = offset(SPOT, north, east)
        if radius <= 150:
            assert cell_of(*point) in near


def test_cars_driving_round_a_standing_car_do_not_clear_it() -> None:
    s = shard(pass_grace_s=0.0)
    [confirmed] = feed(s, report("STUCK", 0, kind="hazard-lights"))
    assert (confirmed.group, confirmed.reporters) == (HazardGroup.STATIONARY, 1)
    assert feed(s, *(passing(f"P{i}", 10 + i) for i in range(5))) == []
    assert s.tick(T0 + 60_000).hazards == []
