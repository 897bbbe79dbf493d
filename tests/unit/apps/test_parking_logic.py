"""The free-parking finder, pure: hand-built reports at fixed times, exact outcomes."""

from __future__ import annotations

import math
from typing import Any

import h3
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetlink.apps.parking.logic import ParkingShard
from fleetlink.apps.parking.sites import ParkingParams
from fleetlink.contracts.parking import PARKING_RESOLUTION, ParkingCell, SpotSource, Trend
from tests.unit.apps.stores import JsonStore

T0 = 1_800_000_000_000
# the middle of a parking cell: the scenarios' stretches, tens of metres apart, share it
SPOT = h3.cell_to_latlng(h3.latlng_to_cell(52.5200, 13.4050, PARKING_RESOLUTION))
EAST = 90.0  # the reporters drive east, the curb on their right


def finder(**params: Any) -> ParkingShard:
    return ParkingShard(JsonStore(), ParkingParams(**params))


def east_of(point: tuple[float, float], metres: float) -> tuple[float, float]:
    lat, lon = point
    return lat, lon + metres / (111_320.0 * math.cos(math.radians(lat)))


def at(seconds: float) -> int:
    return T0 + int(seconds * 1000)


def gap(
    vin: str,
    at_s: float,
    where: tuple[float, float] = SPOT,
    length: float = 6.0,
    speed: float = 30.0,
    heading: float = EAST,
) -> dict[str, Any]:
    return {
        "t": "gap",
        "vin": vin,
        "ts": at(at_s),
        "lat": where[0],
        "lon": where[1],
        "heading": heading,
        "speed": speed,
        "length": length,
        "side": "right",
        "msg_id": f"{vin}-gap-{at_s}",
    }


def car(kind: str, vin: str, at_s: float, where: tuple[float, float] = SPOT) -> dict[str, Any]:
    return {
        "t": kind,
        "vin": vin,
        "ts": at(at_s),
        "lat": where[0],
        "lon": where[1],
        "heading": EAST,
        "length": 4.5,
        "msg_id": f"{vin}-{kind}-{at_s}",
    }


def drive_by(vin: str, at_s: float, where: tuple[float, float] = SPOT) -> dict[str, Any]:
    return {
        "t": "pass",
        "vin": vin,
        "ts": at(at_s),
        "lat": where[0],
        "lon": where[1],
        "heading": EAST,
        "speed": 30.0,
    }


def feed(
    shard: ParkingShard, *items: dict[str, Any], until_s: float | None = None
) -> list[ParkingCell]:
    """Each input, then the tick at its time (as live ticks come); then ticks up to ``until_s``."""
    out: list[ParkingCell] = []
    for item in items:
        out += shard.handle(item).cells
        out += shard.tick(int(item["ts"])).cells
    if until_s is not None:
        out += shard.tick(at(until_s)).cells
    return out


def latest(cells: list[ParkingCell]) -> ParkingCell:
    assert cells, "the finder wrote nothing"
    return cells[-1]


def test_a_gap_is_free_with_probability_one_over_e_after_its_mean_lifetime() -> None:
    cell = latest(feed(finder(default_lifetime_s=600), gap("A", 0)))
    [spot] = cell.spots
    assert (spot.length_m, spot.reporters, spot.source) == (6.0, 1, SpotSource.GAP)
    assert spot.lifetime_s == 600
    assert not cell.learned
    assert spot.p_free(at(0)) == 1.0
    assert spot.p_free(at(600)) == pytest.approx(math.exp(-1))
    assert spot.p_free(at(1200)) == pytest.approx(math.exp(-2))
    assert (cell.freed, cell.taken, cell.trend) == (1, 0, Trend.STABLE)


def test_two_cars_reporting_the_same_gap_make_one_spot_seen_by_both() -> None:
    cells = feed(finder(), gap("A", 0, length=6.0), gap("B", 60, east_of(SPOT, 3), length=7.0))
    [spot] = latest(cells).spots
    assert spot.reporters == 2
    assert (spot.first_ts, spot.observed_ts) == (at(0), at(60))
    assert spot.length_m == 6.5
    assert spot.longitude == pytest.approx(east_of(SPOT, 1.5)[1], abs=1e-6)
    assert latest(cells).freed == 1  # one spot became free, seen twice


def test_a_gap_on_the_other_side_of_the_street_is_another_spot() -> None:
    cells = feed(finder(), gap("A", 0), gap("B", 10, east_of(SPOT, 3), heading=270.0))
    assert len(latest(cells).spots) == 2


def test_a_car_parking_there_consumes_the_spot() -> None:
    cells = feed(finder(), gap("A", 0), car("parked", "P", 30, east_of(SPOT, 2)))
    cell = latest(cells)
    assert cell.spots == []
    assert (cell.freed, cell.taken) == (1, 1)
    assert cell.ts == at(30)


def test_a_car_leaving_frees_a_spot_for_certain() -> None:
    [spot] = latest(feed(finder(), car("unparked", "U", 0))).spots
    assert (spot.source, spot.length_m, spot.reporters) == (SpotSource.UNPARKED, 5.5, 1)


def test_a_car_driving_past_without_reporting_it_saw_it_taken() -> None:
    shard = finder(pass_grace_s=10)
    cells = feed(shard, gap("A", 0), drive_by("B", 30))
    assert latest(cells).spots  # B may still report it
    cells = feed(shard, until_s=40)
    cell = latest(cells)
    assert cell.spots == []
    assert cell.taken == 1
    assert cell.ts == at(30)


def test_a_car_that_drives_past_and_reports_it_keeps_it_free() -> None:
    shard = finder(pass_grace_s=10)
    cells = feed(shard, gap("A", 0), drive_by("B", 30), gap("B", 31), until_s=60)
    [spot] = latest(cells).spots
    assert spot.reporters == 2
    assert spot.observed_ts == at(31)


def test_a_driveway_seen_free_again_and_again_is_learned_and_left_out() -> None:
    shard = finder(no_parking_min_passes=4, no_parking_min_span_s=100)
    cells = feed(shard, *(gap(f"C{n}", 40 * n) for n in range(3)))
    assert len(latest(cells).spots) == 1
    cell = latest(feed(shard, gap("C3", 120)))
    assert (cell.spots, cell.no_parking) == ([], 1)
    # and it stays out
    assert latest(feed(shard, gap("C4", 200))).spots == []


def test_a_stretch_someone_parked_in_is_never_a_driveway() -> None:
    shard = finder(no_parking_min_passes=4, no_parking_min_span_s=100)
    feed(shard, car("unparked", "U", 0))
    cells = feed(shard, *(gap(f"C{n}", 40 + 40 * n) for n in range(5)))
    assert len(latest(cells).spots) == 1
    assert latest(cells).no_parking == 0


@pytest.mark.parametrize(
    ("length", "speed"),
    [(4.0, 30.0), (6.0, 70.0)],
    ids=["too-short", "passed-too-fast"],
)
def test_a_gap_too_short_or_passed_too_fast_is_ignored(length: float, speed: float) -> None:
    assert feed(finder(), gap("A", 0, length=length, speed=speed), until_s=30) == []


def test_a_spot_is_dropped_when_too_unlikely_to_be_free() -> None:
    shard = finder(default_lifetime_s=100, drop_below_p=0.05)
    feed(shard, gap("A", 0))
    assert feed(shard, until_s=299) == []
    cell = latest(feed(shard, until_s=300))  # 100 * ln 20 = 299.6 s
    assert cell.spots == []
    assert cell.taken == 0


def test_the_lifetime_is_learned_from_the_spots_seen_taken() -> None:
    shard = finder(learn_min_ends=2, default_lifetime_s=600)
    feed(shard, gap("A", 0), car("parked", "P", 100))  # free 100 s, then taken
    elsewhere = east_of(SPOT, 30)
    feed(shard, gap("A", 200, elsewhere), car("parked", "Q", 500, elsewhere))  # 300 s
    cell = latest(feed(shard, gap("B", 600, east_of(SPOT, 15))))
    assert cell.learned
    assert cell.lifetime_s == 200.0
    assert cell.spots[0].lifetime_s == 200.0


def test_a_cell_filling_up_and_one_emptying() -> None:
    spots = [east_of(SPOT, 9 * n) for n in range(4)]
    filling = latest(feed(finder(), *(car("parked", f"P{n}", n, w) for n, w in enumerate(spots))))
    assert (filling.taken, filling.trend) == (4, Trend.FILLING_UP)
    emptying = latest(
        feed(finder(), *(car("unparked", f"U{n}", n, w) for n, w in enumerate(spots)))
    )
    assert (emptying.freed, emptying.trend) == (4, Trend.EMPTYING)


def test_inputs_out_of_order_within_the_grace_give_the_same_spots() -> None:
    items = [gap("A", 0), gap("B", 5, east_of(SPOT, 2)), drive_by("C", 8), car("parked", "P", 40)]
    in_order = finder()
    for item in items:
        in_order.handle(item)
    shuffled = finder()
    for item in [items[2], items[0], items[3], items[1]]:
        shuffled.handle(item)
    assert in_order.tick(at(100)).cells == shuffled.tick(at(100)).cells != []


def test_a_late_report_counts_nothing() -> None:
    shard = finder(grace_s=10)
    feed(shard, until_s=100)
    outcome = shard.handle(gap("A", 50))
    assert outcome.late
    assert outcome.cells == []
    late_flag = {**gap("B", 100), "late": True}
    assert shard.handle(late_flag).late


def test_an_input_replayed_after_a_crash_counts_once() -> None:
    items = [gap("A", 0), gap("B", 5, east_of(SPOT, 4)), drive_by("C", 8), car("unparked", "U", 9)]
    once = {cell.cell: cell for cell in feed(finder(), *items, until_s=100)}
    # the replay: what was not committed comes again, even after it came out once
    replayed = feed(finder(), *items, *items[1:], until_s=100)
    assert once == {cell.cell: cell for cell in replayed}
    assert once


_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.text(max_size=5),
)


@st.composite
def curb_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """Any input the app may hand the finder: positions within the contract's ranges (the
    event model checks those), everything else whatever a car may say."""
    kind = draw(st.sampled_from(["gap", "parked", "unparked", "pass"]))
    north, east = draw(st.floats(-40, 40)), draw(st.floats(-40, 40))
    lat, lon = east_of((SPOT[0] + north / 111_320.0, SPOT[1]), east)
    return {
        "t": kind,
        "vin": draw(st.sampled_from(["A", "B", "C"])),
        "ts": at(draw(st.integers(0, 300))),
        "lat": lat,
        "lon": lon,
        "heading": draw(st.one_of(st.none(), st.floats(0, 360))),
        "speed": draw(st.one_of(st.none(), st.floats(0, 1000))),
        "length": draw(_anything),
        "side": draw(st.sampled_from([None, "left", "right"])),
        "msg_id": draw(st.text(min_size=1, max_size=8)),
    }


@settings(max_examples=60, deadline=None)
@given(st.lists(curb_inputs(), max_size=25))
def test_whatever_cars_say_the_finder_writes_records_the_contract_reads(
    items: list[dict[str, Any]],
) -> None:
    shard = finder(learn_min_ends=2, no_parking_min_passes=2, no_parking_min_span_s=10)
    cells = feed(shard, *sorted(items, key=lambda i: i["ts"]), until_s=2000)
    for cell in cells:
        assert msgspec.json.decode(msgspec.json.encode(cell), type=ParkingCell) == cell


def test_a_long_gap_refreshes_the_spots_it_covers_and_counts_for_a_driveway_in_it() -> None:
    shard = finder(no_parking_min_passes=3, no_parking_min_span_s=60)
    driveway = east_of(SPOT, 20)
    feed(shard, gap("A", 0, driveway))
    # the driveway and free spots beside it: one 20 m gap whose middle is 9 m off
    cells = feed(shard, gap("B", 40, east_of(SPOT, 29), length=20.0))
    spots = latest(cells).spots
    assert len(spots) == 2  # the long gap is a stretch of its own
    driveway_spot = next(s for s in spots if s.first_ts == at(0))
    assert (driveway_spot.observed_ts, driveway_spot.reporters) == (at(40), 2)
    cell = latest(feed(shard, gap("D", 80, driveway), until_s=100))
    assert cell.no_parking == 1  # seen free on 3 passes over 80 s: the long gap counted
    assert all(s.first_ts != at(0) for s in cell.spots)


def test_a_gap_over_a_driveway_alone_says_nothing_of_the_longer_stretch_beside_it() -> None:
    shard = finder(pass_grace_s=10)
    driveway = east_of(SPOT, 20)
    # the driveway and the spot east of it free: one 12 m gap, its middle on their border
    feed(shard, gap("A", 0, east_of(SPOT, 23), length=12.0))
    # the spot is taken: a car passing sees the driveway alone (its middle 3 m off)
    cells = feed(shard, drive_by("B", 30, east_of(SPOT, 23)), gap("B", 31, driveway), until_s=60)
    spots = latest(cells).spots
    assert [s.length_m for s in spots] == [6.0]  # the 12 m stretch was seen taken
    assert spots[0].first_ts == at(31)


def test_a_gap_between_a_driveway_and_a_spot_seen_taken_is_the_driveway() -> None:
    shard = finder(pass_grace_s=10, no_parking_min_passes=3, no_parking_min_span_s=60)
    driveway, spot = SPOT, east_of(SPOT, 6)
    cells = feed(shard, *(gap(f"C{n}", 40 * n, driveway) for n in range(3)))
    assert latest(cells).no_parking == 1
    cells = feed(shard, car("parked", "P", 100, spot))  # the spot beside it, taken
    assert latest(cells).spots == []
    # placing noise puts the driveway's gap nearer the taken spot than the driveway
    cells = feed(shard, gap("D", 300, east_of(SPOT, 3.5)), until_s=320)
    assert cells == [] or latest(cells).spots == []


def test_a_car_parked_a_spot_away_from_where_a_driveway_is_placed_does_not_hide_it() -> None:
    shard = finder(no_parking_min_passes=4, no_parking_min_span_s=100)
    # a car parks beside the driveway, before anyone reported it: its stretch starts there
    feed(shard, car("unparked", "U", 0, east_of(SPOT, 5.5)))
    # the driveway's gaps land on that stretch (the nearest) and move it onto the driveway
    cells = feed(shard, *(gap(f"C{n}", 40 + 40 * n) for n in range(12)), until_s=600)
    assert latest(cells).no_parking == 1
    assert latest(cells).spots == []
