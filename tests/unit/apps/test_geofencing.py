"""Geofences, pure: shapes checked, and enter / dwell / exit with hysteresis, exactly."""

from __future__ import annotations

import json
import logging
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetlink.apps.fleet.fence_model import FenceReadModel
from fleetlink.apps.fleet.fences import FenceBook, GeometryError, Where, check_fence
from fleetlink.apps.fleet.geofencing import FencingParams, Geofencer
from fleetlink.contracts.geofences import (
    MAX_VERTICES,
    FenceCircle,
    FenceEventKind,
    GeofenceDefinition,
    GeofenceEvent,
    GeoJsonPolygon,
)
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import load_settings
from fleetlink.testing.memory_kafka import MemoryKafka
from tests.support.fakes import FakeMessage
from tests.support.strategies import JSON
from tests.unit.apps.stores import JsonStore

LAT0, LON0 = 52.52, 13.40
VIN = "WVWZZZ1JZXW000001"
OTHER = "WVWZZZ1JZXW000002"
T0 = 1_700_000_000_000


def at(east_m: float, north_m: float) -> tuple[float, float]:
    """The point this far east and north of (LAT0, LON0)."""
    lat = LAT0 + north_m / 111_320
    return lat, LON0 + east_m / (111_320 * math.cos(math.radians(LAT0)))


def square(half_m: float, fence_id: str = "depot", **extra: object) -> GeofenceDefinition:
    corners = [at(-half_m, -half_m), at(half_m, -half_m), at(half_m, half_m), at(-half_m, half_m)]
    ring = [[lon, lat] for lat, lon in [*corners, corners[0]]]
    return GeofenceDefinition(
        fence_id=fence_id,
        name=fence_id,
        owner="admin",
        created_at=T0,
        polygon=GeoJsonPolygon("Polygon", [ring]),
        **extra,  # type: ignore[arg-type]
    )


def circle(radius_m: float, fence_id: str = "yard", **extra: object) -> GeofenceDefinition:
    return GeofenceDefinition(
        fence_id=fence_id,
        name=fence_id,
        owner="admin",
        created_at=T0,
        circle=FenceCircle(LAT0, LON0, radius_m),
        **extra,  # type: ignore[arg-type]
    )


def fencer(*fences: GeofenceDefinition, fixes: int = 2) -> tuple[Geofencer, FenceBook]:
    book = FenceBook(band_m=25.0)
    book.change(fences)
    return Geofencer(JsonStore(), book, FencingParams(band_m=25.0, fixes=fixes)), book


def drive(
    geo: Geofencer, path: list[tuple[float, float]], vin: str = VIN, every_s: int = 1
) -> list[tuple[str, str, int]]:
    """Fixes along ``path`` (metres east, north) a second apart: (fence, kind, ts offset s)."""
    events: list[GeofenceEvent] = []
    for n, (east, north) in enumerate(path):
        events += geo.fix(vin, T0 + n * every_s * 1000, *at(east, north))
    return [(e.fence_id, e.kind.value, (e.ts - T0) // 1000) for e in events]


# enter and exit ------------------------------------------------------------------------------


def test_a_car_crossing_a_fence_enters_and_exits_once_each_at_its_first_fix_across() -> None:
    geo, _ = fencer(square(100))
    path = [(-290 + 20 * n, 0) for n in range(31)]  # west to east, 20 m a fix
    # inside from x = -90 (fix 10) to 90 (fix 19); in the band (to 125) at 110; out at 130
    assert drive(geo, path) == [("depot", "enter", 10), ("depot", "exit", 21)]


def test_exit_says_how_long_the_car_was_inside_and_where_it_left() -> None:
    geo, _ = fencer(circle(100))
    events: list[GeofenceEvent] = []
    for n, east in enumerate([0, 0, 0, 200, 200]):
        events += geo.fix(VIN, T0 + n * 60_000, *at(east, 0))
    enter, leave = events
    assert (enter.kind, enter.ts, enter.entered_ts) == (FenceEventKind.ENTER, T0, T0)
    assert (leave.kind, leave.ts, leave.dwell_s) == (FenceEventKind.EXIT, T0 + 180_000, 180.0)
    assert (leave.latitude, leave.longitude) == pytest.approx(at(200, 0), abs=1e-6)
    assert leave.event_id == f"yard/{VIN}/exit/{T0 + 180_000}"


def test_a_car_driving_along_the_border_does_not_flap() -> None:
    """Along the east edge, GPS jitter of 20 m across it: one enter, then nothing until it
    leaves for good."""
    geo, _ = fencer(square(100))
    jitter = [-20, 15, -10, 20, 5, -15, 10, 18, -5, 12]
    along = [(100 + jitter[n % len(jitter)], -90 + 6 * n) for n in range(30)]
    away = [(200, 90), (220, 90)]
    start = [(60, -90), (70, -90)]
    assert drive(geo, start + along + away) == [("depot", "enter", 0), ("depot", "exit", 32)]


def test_along_the_border_outside_it_a_car_never_enters() -> None:
    geo, _ = fencer(square(100))
    jitter = [5, 20, 3, 15, 8, 1]  # always outside, now and then nearly on it
    along = [(100 + jitter[n % len(jitter)], -90 + 6 * n) for n in range(30)]
    assert drive(geo, along) == []


def test_a_single_jump_inside_is_no_visit() -> None:
    geo, _ = fencer(square(100))
    assert drive(geo, [(-300, 0), (0, 0), (-300, 0), (0, 0), (-300, 0)]) == []


def test_one_fix_enters_when_the_settings_say_so() -> None:
    geo, _ = fencer(square(100), fixes=1)
    assert drive(geo, [(-300, 0), (0, 0), (-300, 0)]) == [
        ("depot", "enter", 1),
        ("depot", "exit", 2),
    ]


def test_a_fix_in_the_band_breaks_a_run_out() -> None:
    geo, _ = fencer(square(100))
    # inside; out past the band; back into the band; out again twice
    path = [(0, 0), (0, 0), (200, 0), (110, 0), (200, 0), (200, 0)]
    assert drive(geo, path) == [("depot", "enter", 0), ("depot", "exit", 4)]


def test_history_changes_nothing() -> None:
    geo, _ = fencer(square(100))
    assert drive(geo, [(0, 0), (0, 0)]) == [("depot", "enter", 0)]
    assert geo.fix(VIN, T0, *at(500, 0)) == []
    assert geo.fix(VIN, T0 + 1000, *at(500, 0)) == []


def test_a_fence_for_some_cars_ignores_the_others() -> None:
    geo, _ = fencer(square(100, vins=[OTHER]))
    assert drive(geo, [(0, 0), (0, 0)], vin=VIN) == []
    assert drive(geo, [(0, 0), (0, 0)], vin=OTHER) == [("depot", "enter", 0)]


def test_a_car_far_from_every_fence_stores_nothing() -> None:
    store = JsonStore()
    book = FenceBook(25.0)
    book.change([square(100)])
    geo = Geofencer(store, book, FencingParams())
    for n in range(10):
        geo.fix(VIN, T0 + n, *at(5_000, 0))
    assert store.data == {}


def test_a_fence_deleted_while_a_car_is_inside_ends_the_visit_silently() -> None:
    store = JsonStore()
    book = FenceBook(25.0)
    book.change([square(100)])
    geo = Geofencer(store, book, FencingParams())
    assert [e.kind for e in geo.fix(VIN, T0, *at(0, 0)) + geo.fix(VIN, T0 + 1, *at(0, 0))] == [
        FenceEventKind.ENTER
    ]
    book.change([], removed=["depot"])
    assert geo.fix(VIN, T0 + 2, *at(500, 0)) == []
    assert store.data == {}


def test_a_new_fence_counts_from_when_it_is_read() -> None:
    geo, book = fencer()
    assert drive(geo, [(0, 0), (0, 0)]) == []
    book.change([circle(100)])
    assert [e.kind for e in geo.fix(VIN, T0 + 5000, *at(0, 0))] == []
    assert [e.ts - T0 for e in geo.fix(VIN, T0 + 6000, *at(0, 0))] == [5000]


# dwell ---------------------------------------------------------------------------------------


def test_dwell_is_told_once_a_visit_when_the_car_has_been_inside_that_long() -> None:
    geo, _ = fencer(circle(100, dwell_s=60))
    path = [(0, 0)] * 5 + [(300, 0)] * 2 + [(0, 0)] * 3
    assert drive(geo, path, every_s=20) == [
        ("yard", "enter", 0),
        ("yard", "dwell", 60),
        ("yard", "exit", 100),
        ("yard", "enter", 140),
    ]


def test_a_car_that_leaves_before_its_dwell_time_is_not_told_to_dwell() -> None:
    geo, _ = fencer(circle(100, dwell_s=60))
    path = [(0, 0)] * 3 + [(300, 0)] * 3
    assert drive(geo, path, every_s=20) == [("yard", "enter", 0), ("yard", "exit", 60)]


def test_a_car_standing_silent_inside_dwells_on_the_sweep() -> None:
    geo, _ = fencer(circle(100, dwell_s=600))
    assert drive(geo, [(0, 0), (0, 0)]) == [("yard", "enter", 0)]
    assert geo.sweep(T0 + 599_000) == []
    (dwell,) = geo.sweep(T0 + 605_000)
    assert (dwell.kind, dwell.ts, dwell.dwell_s) == (FenceEventKind.DWELL, T0 + 600_000, 600.0)
    assert geo.sweep(T0 + 700_000) == []
    assert geo.fix(VIN, T0 + 710_000, *at(0, 0)) == []  # told already


# the property: a car's visits to a fence alternate, each exit closing the enter before it ----


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-250, 250), st.integers(-250, 250), st.integers(1, 90)),
        max_size=60,
    )
)
def test_enters_and_exits_alternate_for_any_fixes(path: list[tuple[int, int, int]]) -> None:
    geo, _ = fencer(square(100, dwell_s=30), circle(80))
    ts = T0
    events: list[GeofenceEvent] = []
    for east, north, gap_s in path:
        ts += gap_s * 1000
        events += geo.fix(VIN, ts, *at(east, north))
    for fence_id in ("depot", "yard"):
        mine = [e for e in events if e.fence_id == fence_id]
        inside_since: int | None = None
        for event in mine:
            assert event.ts >= (inside_since or T0)
            if event.kind is FenceEventKind.ENTER:
                assert inside_since is None
                inside_since = event.ts
            else:
                assert event.entered_ts == inside_since
                if event.kind is FenceEventKind.EXIT:
                    inside_since = None
        assert len({e.event_id for e in mine}) == len(mine)


# shapes --------------------------------------------------------------------------------------


def polygon_of(ring: list[list[float]]) -> GeofenceDefinition:
    return GeofenceDefinition(
        fence_id="f",
        name="f",
        owner="admin",
        created_at=T0,
        polygon=GeoJsonPolygon("Polygon", [ring]),
    )


def ring_of(points: list[tuple[float, float]]) -> list[list[float]]:
    return [[lon, lat] for lat, lon in (at(e, n) for e, n in points)]


@pytest.mark.parametrize(
    ("ring", "why"),
    [
        (ring_of([(0, 0), (200, 200), (200, 0), (0, 200), (0, 0)]), "Self-intersection near ["),
        (ring_of([(0, 0), (200, 0), (200, 200), (0, 200)]), "not closed"),
        (ring_of([(0, 0), (200, 0), (0, 0)]), "at least 4 positions"),
        (ring_of([(0, 0), (20, 0), (20, 20), (0, 20), (0, 0)]), "at least 2500 m²"),
        (ring_of([(0, 0), (200_000, 0), (200_000, 200), (0, 200), (0, 0)]), "fits in 100 km"),
        ([[0.0, 0.0], [181.0, 0.0], [1.0, 1.0], [0.0, 0.0]], "out of range"),
        ([[0.0, 0.0], [1.0], [1.0, 1.0], [0.0, 0.0]], "a position is [longitude, latitude]"),
        (
            ring_of([(math.cos(a / 100) * 500, math.sin(a / 100) * 500) for a in range(600)]),
            f"at most {MAX_VERTICES} positions",
        ),
    ],
)
def test_a_bad_polygon_is_refused_with_the_reason(ring: list[list[float]], why: str) -> None:
    with pytest.raises(GeometryError, match=None) as refused:
        check_fence(polygon_of(ring))
    assert why in str(refused.value)


def test_self_intersection_is_placed_in_degrees() -> None:
    bow = ring_of([(0, 0), (200, 200), (200, 0), (0, 200), (0, 0)])
    with pytest.raises(GeometryError) as refused:
        check_fence(polygon_of(bow))
    lat, lon = at(100, 100)
    assert f"[{lon:.6f}, {lat:.6f}]" in str(refused.value)


def test_a_fence_is_a_circle_or_a_polygon() -> None:
    both = GeofenceDefinition(
        "f", "f", "admin", T0, circle=FenceCircle(LAT0, LON0, 100), polygon=square(50).polygon
    )
    neither = GeofenceDefinition("f", "f", "admin", T0)
    for definition in (both, neither):
        with pytest.raises(GeometryError, match="one of the two"):
            check_fence(definition)


def test_a_polygon_with_a_hole_has_no_inside_in_the_hole() -> None:
    outer = ring_of([(-200, -200), (200, -200), (200, 200), (-200, 200), (-200, -200)])
    hole = ring_of([(-100, -100), (-100, 100), (100, 100), (100, -100), (-100, -100)])
    fence = GeofenceDefinition(
        "f", "f", "admin", T0, polygon=GeoJsonPolygon("Polygon", [outer, hole])
    )
    check_fence(fence)
    book = FenceBook(25.0)
    book.change([fence])
    (compiled,) = book.now().near(VIN, *at(150, 0))
    assert compiled.where(*at(150, 0)) is Where.INSIDE
    assert compiled.where(*at(0, 0)) is Where.OUTSIDE
    assert compiled.where(*at(90, 0)) is Where.BAND


def test_a_bad_shape_changes_nothing_in_the_book() -> None:
    book = FenceBook(25.0)
    book.change([square(100)])
    bow = ring_of([(0, 0), (200, 200), (200, 0), (0, 200), (0, 0)])
    with pytest.raises(GeometryError):
        book.change([polygon_of(bow)], removed=["depot"])
    assert len(book) == 1


# any input: a fence or a reason ------------------------------------------------------------

COORDINATES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-181, 181),
    st.sampled_from([0.0, -180.0, 180.0, 90.0, -90.0, 1e-12, 13.4, 52.52]),
)
POSITIONS = st.lists(COORDINATES, min_size=0, max_size=4)
RINGS = st.lists(st.lists(POSITIONS, max_size=12), max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    rings=RINGS
    | st.lists(
        st.lists(
            st.sampled_from([[0.0, 0.0], [0.001, 0.0], [0.0, 0.001], [0.001, 0.001]]), max_size=10
        ),
        max_size=3,
    ),
    closed=st.booleans(),
)
def test_any_polygon_is_a_fence_or_a_geometry_error(
    rings: list[list[list[float]]], closed: bool
) -> None:
    if closed:
        rings = [[*ring, ring[0]] if ring else ring for ring in rings]
    polygon = GeoJsonPolygon("Polygon", rings)
    definition = GeofenceDefinition("f", "f", "admin", T0, polygon=polygon)
    try:
        check_fence(definition)
    except GeometryError as refused:
        reason = str(refused)
    else:
        reason = ""
    if reason:
        return  # refused, with a reason
    book = FenceBook(25.0)
    book.change([definition])  # a fence the check passes compiles and judges fixes
    for fence in book.now().fences.values():
        assert isinstance(fence.where(LAT0, LON0), Where)


@settings(max_examples=200, deadline=None)
@given(
    value=st.none()
    | st.binary(max_size=64)
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.builds(
        lambda rings, radius: json.dumps(
            {
                "fence_id": "f",
                "name": "n",
                "owner": "o",
                "created_at": 1,
                **(
                    {"circle": {"latitude": 1.0, "longitude": 2.0, "radius_m": radius}}
                    if radius
                    else {"polygon": {"type": "Polygon", "coordinates": rings}}
                ),
            }
        ).encode(),
        RINGS.filter(lambda r: all(all(math.isfinite(c) for p in ring for c in p) for ring in r)),
        st.none() | st.floats(0, 1e6),
    ),
    key=st.sampled_from([b"f", b"g", b"\xff", None]),
    events_topic=st.booleans(),
)
def test_the_fence_model_takes_any_record_or_skips_it(
    value: bytes | None, key: bytes | None, events_topic: bool
) -> None:
    settings_ = load_settings()
    topics = settings_.topic_map()
    model = FenceReadModel(
        settings_, logging.getLogger("test.fences"), MemoryKafka().backbone().source(), events=True
    )
    topic = topics[KafkaTopic.GEOFENCE_EVENTS if events_topic else KafkaTopic.GEOFENCES]
    model._take_batch([FakeMessage(topic, key, value)])  # type: ignore[list-item]
    taken = len(model.definitions()) + len(model.events(None, None, None, 10))
    assert taken + sum(model.skipped.counts.values()) == 1 or (value is None and not events_topic)
