"""The free spots near a place, pure: what ``fleet.parking`` holds, ranked and summed up at a
fixed clock."""

from __future__ import annotations

import math
from typing import Any

import h3
import pytest

from fleetlink.apps.parking.view import (
    Availability,
    ParkingView,
    is_parking_cell,
    level_of,
    score,
)
from fleetlink.contracts.geo import distance_m
from fleetlink.contracts.parking import (
    PARKING_RESOLUTION,
    CurbSide,
    ParkingCell,
    ParkingSpot,
    SpotSource,
    Trend,
)

NOW = 1_800_000_000_000
LIFETIME_S = 600.0
HERE = (52.5200, 13.4050)
M_PER_DEGREE_LAT = 111_195.0  # h3's great-circle metres per degree of latitude


def north(metres: float, of: tuple[float, float] = HERE) -> tuple[float, float]:
    return (of[0] + metres / M_PER_DEGREE_LAT, of[1])


def spot(
    spot_id: str, where: tuple[float, float], age_s: float = 0.0, **changes: Any
) -> ParkingSpot:
    observed = NOW - int(age_s * 1000)
    fields: dict[str, Any] = {
        "spot_id": spot_id,
        "latitude": where[0],
        "longitude": where[1],
        "heading_deg": 90.0,
        "side": CurbSide.RIGHT,
        "length_m": 6.0,
        "first_ts": observed - 60_000,
        "observed_ts": observed,
        "reporters": 2,
        "source": SpotSource.GAP,
        "lifetime_s": LIFETIME_S,
    }
    return ParkingSpot(**(fields | changes))


def cell_record(
    where: tuple[float, float], *spots: ParkingSpot, ts: int = NOW, **changes: Any
) -> ParkingCell:
    fields: dict[str, Any] = {
        "cell": h3.latlng_to_cell(*where, PARKING_RESOLUTION),
        "ts": ts,
        "spots": list(spots),
        "lifetime_s": LIFETIME_S,
        "learned": True,
        "freed": 0,
        "taken": 0,
        "trend": Trend.STABLE,
    }
    return ParkingCell(**(fields | changes))


def view_of(*records: ParkingCell) -> ParkingView:
    view = ParkingView()
    for record in records:
        assert view.take(record)
    return view


def test_a_spot_seen_one_lifetime_ago_is_free_with_e_to_the_minus_one() -> None:
    view = view_of(cell_record(HERE, spot("s", HERE, age_s=LIFETIME_S)))
    (found,) = view.near(*HERE, 100, NOW, 20).spots
    assert found.p_free == pytest.approx(math.exp(-1))
    assert found.age_s == LIFETIME_S
    assert found.distance_m == pytest.approx(0.0, abs=1e-6)
    assert found.score == pytest.approx(math.exp(-1))
    assert found.cell == h3.latlng_to_cell(*HERE, PARKING_RESOLUTION)
    # a spot reported ahead of the clock is as fresh as can be, not likelier than certain
    ahead = view_of(cell_record(HERE, spot("s", HERE, age_s=-30)))
    assert ahead.near(*HERE, 100, NOW, 20).spots[0].p_free == 1.0


def test_spots_rank_by_likely_free_times_nearness() -> None:
    fresh_far = spot("fresh-far", north(400))  # 1 * e^-0.8 = 0.449
    stale_here = spot("stale-here", HERE, age_s=LIFETIME_S)  # e^-1 = 0.368
    fresh_near = spot("fresh-near", north(100))  # e^-0.2 = 0.819
    view = view_of(cell_record(HERE, stale_here), cell_record(north(400), fresh_far, fresh_near))
    found = view.near(*HERE, 1000, NOW, 20).spots
    assert [s.spot.spot_id for s in found] == ["fresh-near", "fresh-far", "stale-here"]
    assert [round(s.distance_m) for s in found] == [100, 400, 0]
    for item in found:
        assert item.score == pytest.approx(item.p_free * math.exp(-item.distance_m / 500))
    assert score(1.0, 400.0) == pytest.approx(math.exp(-0.8))
    # twice as likely free ranks level with about 350 m nearer
    assert score(0.8, 500 * math.log(2)) == pytest.approx(score(0.4, 0.0))


def test_spots_outside_the_radius_or_below_the_floor_are_left_out_and_the_limit_cuts() -> None:
    floor_age_s = -LIFETIME_S * math.log(0.05)  # p = 0.05 exactly at this age
    view = view_of(
        cell_record(
            HERE,
            spot("just-above", HERE, age_s=floor_age_s - 1),
            spot("just-below", HERE, age_s=floor_age_s + 1),
            spot("fresh", north(50)),
            spot("fresh-2", north(60)),
        ),
        cell_record(north(900), spot("beyond", north(900))),
    )
    everything = view.near(*HERE, 500, NOW, 20)
    assert [s.spot.spot_id for s in everything.spots] == ["fresh", "fresh-2", "just-above"]
    assert everything.spots[-1].p_free == pytest.approx(0.05, abs=1e-4)
    two = view.near(*HERE, 500, NOW, 2)
    assert [s.spot.spot_id for s in two.spots] == ["fresh", "fresh-2"]
    # the summary is the area's, whatever the limit
    assert two.summary == everything.summary
    assert two.summary.cells == 1
    assert view.near(*HERE, 1000, NOW, 20).summary.cells == 2
    # a stricter floor (the finder's drop_below_p) leaves out more
    strict = ParkingView(floor=0.5)
    strict.take(cell_record(HERE, spot("half", HERE, age_s=LIFETIME_S)))
    assert strict.near(*HERE, 500, NOW, 20).spots == []


def test_the_summary_sums_probabilities_and_says_how_likely_any_is_free() -> None:
    one_lifetime = math.exp(-1)
    view = view_of(
        cell_record(
            HERE,
            spot("a", HERE, age_s=LIFETIME_S),
            spot("b", north(20), age_s=LIFETIME_S),
            freed=4,
            taken=1,
            no_parking=2,
            lifetime_s=300.0,
            ts=NOW - 5000,
        ),
        cell_record(north(300), freed=1, taken=1, no_parking=1, lifetime_s=900.0, ts=NOW - 1000),
        cell_record(north(600), lifetime_s=1200.0),
    )
    summary = view.near(*HERE, 400, NOW, 20).summary
    assert summary.cells == 2  # the cell 600 m north reaches nowhere near 400 m
    assert summary.free_estimate == pytest.approx(2 * one_lifetime)
    assert summary.p_any == pytest.approx(1 - (1 - one_lifetime) ** 2)  # 0.600
    assert summary.level is Availability.MEDIUM
    assert summary.trend is Trend.EMPTYING  # 5 freed, 2 taken
    assert summary.no_parking == 3
    assert summary.lifetime_s == 600.0  # the median of 300 and 900
    assert summary.updated_at == NOW - 1000
    single = view.near(*HERE, 10, NOW, 20).summary  # spot b is 20 m off
    assert single.p_any == pytest.approx(one_lifetime)
    assert single.level is Availability.LOW


def test_the_trend_counts_only_cells_written_within_the_window() -> None:
    view = view_of(
        cell_record(HERE, taken=5, ts=NOW - 11 * 60_000),  # nothing changed for 11 minutes
        cell_record(north(200), freed=1, taken=3, ts=NOW - 60_000),
    )
    summary = view.near(*HERE, 500, NOW, 20).summary
    assert summary.cells == 2
    assert summary.trend is Trend.FILLING_UP  # 1 freed, 3 taken: the old 5 taken are over
    assert view.near(*HERE, 500, NOW + 10 * 60_000, 20).summary.trend is Trend.STABLE


def test_an_area_nobody_wrote_about_is_empty_and_low() -> None:
    summary = ParkingView().near(*HERE, 500, NOW, 20).summary
    assert (summary.cells, summary.free_estimate, summary.p_any) == (0, 0.0, 0.0)
    assert (summary.level, summary.trend) == (Availability.LOW, Trend.STABLE)
    assert (summary.lifetime_s, summary.updated_at, summary.no_parking) == (None, None, 0)


def test_a_cell_counts_when_it_reaches_into_the_circle() -> None:
    cell = h3.latlng_to_cell(*HERE, PARKING_RESOLUTION)
    centre = h3.cell_to_latlng(cell)
    corner = max(h3.cell_to_boundary(cell), key=lambda c: distance_m(*centre, *c))
    # a point beyond the corner, looking a little further than the gap to it
    outside = (2 * corner[0] - centre[0], 2 * corner[1] - centre[1])
    gap = distance_m(*outside, *corner)
    view = view_of(cell_record(centre))
    assert view.near(*outside, gap + 1, NOW, 20).summary.cells == 1
    assert distance_m(*outside, *centre) > gap + 1  # its centre is outside the circle
    assert view.near(*outside, gap - 10, NOW, 20).summary.cells == 0  # 10 m short of it


def test_a_spot_that_drifted_out_of_its_cell_is_still_found() -> None:
    cell = h3.latlng_to_cell(*HERE, PARKING_RESOLUTION)
    centre = h3.cell_to_latlng(cell)
    corner = max(h3.cell_to_boundary(cell), key=lambda c: distance_m(*centre, *c))
    reach = distance_m(*centre, *corner)
    beyond = 1 + 15 / reach  # 15 m past the farthest corner, away from the centre
    where = (
        centre[0] + (corner[0] - centre[0]) * beyond,
        centre[1] + (corner[1] - centre[1]) * beyond,
    )
    assert h3.latlng_to_cell(*where, PARKING_RESOLUTION) != cell
    view = view_of(cell_record(centre, spot("drifted", where), cell=cell))
    answer = view.near(*where, 5, NOW, 20)
    assert [s.spot.spot_id for s in answer.spots] == ["drifted"]
    assert answer.summary.cells == 1


def test_a_newer_record_replaces_the_cell_an_older_is_ignored_a_tombstone_removes_it() -> None:
    view = view_of(cell_record(HERE, spot("old", HERE), ts=NOW - 1000))
    assert view.take(cell_record(HERE, spot("new", HERE), ts=NOW))
    assert not view.take(cell_record(HERE, spot("older", HERE), ts=NOW - 500))
    assert [s.spot.spot_id for s in view.near(*HERE, 100, NOW, 20).spots] == ["new"]
    assert view.take(cell_record(HERE, ts=NOW))  # the same time: the one read last holds
    assert view.near(*HERE, 100, NOW, 20).spots == []
    cell = h3.latlng_to_cell(*HERE, PARKING_RESOLUTION)
    assert view.forget(cell)
    assert not view.forget(cell)
    assert view.near(*HERE, 100, NOW, 20).summary.cells == 0


@pytest.mark.parametrize(
    ("p_any", "level"),
    [
        (0.95, Availability.HIGH),
        (0.7, Availability.HIGH),
        (0.69, Availability.MEDIUM),
        (0.4, Availability.MEDIUM),
        (0.39, Availability.LOW),
        (0.0, Availability.LOW),
    ],
)
def test_the_level_of_the_chance_any_spot_is_free(p_any: float, level: Availability) -> None:
    assert level_of(p_any) is level


def test_only_h3_cells_of_the_finders_resolution_are_parking_cells() -> None:
    assert is_parking_cell(h3.latlng_to_cell(*HERE, PARKING_RESOLUTION))
    assert not is_parking_cell(h3.latlng_to_cell(*HERE, PARKING_RESOLUTION - 1))
    assert not is_parking_cell("somewhere")
