"""Fleet tracking, pure: hand-built telemetry, events and presence at set times, exact outcomes."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetlink.apps.fleet.tracking import FleetShard, Outcome, TrackingParams
from fleetlink.contracts.fleet import Motion, Trip, TripEnd, VehicleState, driving_score
from tests.unit.apps.stores import JsonStore

T0 = 1_800_000_000_000
VIN = "WVWZZZ1JZXW000001"
HOME = (52.5200, 13.4050)


def tracker(**params: Any) -> FleetShard:
    return FleetShard(JsonStore(), TrackingParams(**params))


def at(seconds: float) -> int:
    return T0 + int(seconds * 1000)


def north_of(point: tuple[float, float], metres: float) -> tuple[float, float]:
    return point[0] + metres / 111_195.0, point[1]


def telemetry(
    at_s: float, speed: float, odo: float | None = None, where: tuple[float, float] = HOME
) -> dict[str, Any]:
    return {
        "t": "telemetry",
        "vin": VIN,
        "ts": at(at_s),
        "lat": where[0],
        "lon": where[1],
        "speed": speed,
        "heading": 0.0,
        "odo": odo,
        "soc": 80.0,
    }


def event(kind: str, at_s: float) -> dict[str, Any]:
    return {"t": "event", "vin": VIN, "kind": kind, "ts": at(at_s)}


def presence(online: bool, at_s: float) -> dict[str, Any]:
    return {"t": "presence", "vin": VIN, "ts": at(at_s), "online": online}


def run(shard: FleetShard, *items: dict[str, Any]) -> Outcome:
    """Every input, and a tick at its time; what came out, together."""
    out = Outcome()
    for item in items:
        for outcome in (shard.handle(item), shard.tick(int(item["ts"]))):
            out.states += outcome.states
            out.trips += outcome.trips
    return out


def drive(start_s: int, end_s: int, speed: float, odo_at_start: float) -> list[dict[str, Any]]:
    """Telemetry every 10 s while driving north at ``speed``, the odometer counting."""
    return [
        telemetry(
            s,
            speed,
            odo_at_start + (s - start_s) * speed / 3600,
            north_of(HOME, (s - start_s) * speed / 3.6),
        )
        for s in range(start_s, end_s, 10)
    ]


def test_one_trip_across_a_short_stop() -> None:
    shard = tracker()
    items = [
        telemetry(0, 0.0, 100.0),
        *drive(10, 600, 36.0, 100.0),  # ten minutes at 36 km/h: 5.9 km
        *(telemetry(s, 0.0, 105.9) for s in range(600, 780, 10)),  # three minutes at a light
        *drive(780, 1380, 36.0, 105.9),
        *(telemetry(s, 0.0, 111.8) for s in range(1380, 1800, 10)),  # parked
    ]
    out = run(shard, *items)
    [opened, closed] = out.trips
    assert opened == Trip(
        trip_id=f"{VIN}-{at(10)}",
        vin=VIN,
        start_ts=at(10),
        start_latitude=HOME[0],
        start_longitude=HOME[1],
        max_speed_kmh=36.0,
    )
    assert closed.trip_id == opened.trip_id
    assert (closed.end_ts, closed.ended_by) == (at(1380), TripEnd.STOPPED)
    assert closed.duration_s == 1370.0
    assert closed.distance_km == pytest.approx(11.8, abs=1e-6)
    assert closed.max_speed_kmh == 36.0
    assert out.states[-1].motion == Motion.PARKED
    assert out.states[-1].trip_id is None


def test_a_trip_ended_by_silence_ends_when_the_car_was_last_heard() -> None:
    shard = tracker(silence_s=600)
    out = run(shard, *drive(0, 300, 50.0, 0.0))
    assert len(out.trips) == 1  # open
    out = run(shard, {"t": "tick", "ts": at(290 + 599)})
    assert out.trips == []
    out = run(shard, {"t": "tick", "ts": at(290 + 605)})
    [closed] = out.trips
    assert (closed.end_ts, closed.ended_by) == (at(290), TripEnd.SILENT)
    assert closed.distance_km == pytest.approx(290 * 50 / 3600, abs=1e-3)
    [state] = out.states
    assert (state.online, state.motion, state.last_seen) == (False, Motion.PARKED, at(290))


def test_a_car_that_stopped_and_fell_silent_ends_its_trip_when_it_stopped() -> None:
    shard = tracker(stop_s=300, silence_s=3600)
    run(shard, *drive(0, 120, 30.0, 0.0), telemetry(120, 0.0, 1.0))
    other = {**telemetry(415, 0.0), "vin": "WVWZZZ1JZXW000002"}  # keeps the shard's time going
    assert run(shard, {**other, "ts": at(409)}).trips == []
    [closed] = run(shard, other).trips
    assert (closed.end_ts, closed.ended_by) == (at(120), TripEnd.STOPPED)


def test_going_offline_ends_the_trip_at_the_last_word() -> None:
    shard = tracker()
    run(shard, presence(True, 0), *drive(0, 100, 30.0, 0.0))
    out = run(shard, presence(False, 130))
    [closed] = out.trips
    assert (closed.end_ts, closed.ended_by) == (at(90), TripEnd.OFFLINE)
    [state] = out.states
    assert (state.online, state.motion) == (False, Motion.PARKED)


def test_harsh_events_in_a_trip_count_once_within_30_s_and_never_outside_a_trip() -> None:
    shard = tracker(harsh_once_s=30)
    out = run(
        shard,
        event("harsh-braking", 5),  # before the trip: not counted
        *drive(10, 200, 40.0, 0.0),
        event("harsh-braking", 50),
        event("harsh-braking", 60),  # the same episode
        event("harsh-braking", 85),  # 35 s after the one counted: a new one
        event("harsh-acceleration", 60),
        event("esc-activation", 70),  # no driving-style event
        event("harsh-braking", 85),  # a replay
        *(telemetry(s, 0.0, 2.2) for s in range(200, 520, 10)),
    )
    closed = out.trips[-1]
    assert closed.end_ts is not None
    assert closed.harsh == {"harsh-acceleration": 1, "harsh-braking": 2}


def test_a_replayed_input_changes_nothing() -> None:
    shard = tracker()
    items = drive(0, 100, 30.0, 0.0)
    run(shard, *items)
    before = dict(shard._store.data)  # type: ignore[attr-defined]
    again = run(shard, *items[3:])
    assert again.trips == []
    assert again.states == []
    assert shard._store.data == before  # type: ignore[attr-defined]


def test_the_state_is_written_at_most_every_state_every_s_and_at_once_on_a_change() -> None:
    shard = tracker(state_every_s=10)
    out = run(shard, *(telemetry(s, 0.0, 5.0) for s in range(0, 30)))
    assert [s.ts for s in out.states] == [at(0), at(10), at(20)]
    out = run(shard, telemetry(31, 20.0, 5.0))  # a trip starts: at once
    [state] = out.states
    assert (state.motion, state.trip_id, state.speed_kmh) == (
        Motion.DRIVING,
        f"{VIN}-{at(31)}",
        20.0,
    )
    assert state == VehicleState(
        vin=VIN,
        ts=at(31),
        online=True,
        last_seen=at(31),
        motion=Motion.DRIVING,
        latitude=HOME[0],
        longitude=HOME[1],
        heading_deg=0.0,
        speed_kmh=20.0,
        odometer_km=5.0,
        soc_pct=80.0,
        trip_id=f"{VIN}-{at(31)}",
        trip_start_ts=at(31),
    )


def test_without_an_odometer_the_distance_is_the_positions() -> None:
    shard = tracker(stop_s=60)
    items = [telemetry(s, 36.0, None, north_of(HOME, s * 10.0)) for s in range(0, 100, 10)] + [
        telemetry(s, 0.0, None, north_of(HOME, 900.0)) for s in range(100, 200, 10)
    ]
    closed = run(shard, *items).trips[-1]
    assert closed.distance_km == pytest.approx(0.9, abs=1e-3)


def trip(distance_km: float, end_s: float, **harsh: int) -> Trip:
    return Trip(
        trip_id=f"t{end_s}",
        vin=VIN,
        start_ts=at(end_s - 600),
        end_ts=at(end_s),
        distance_km=distance_km,
        harsh={k.replace("_", "-"): v for k, v in harsh.items()},
    )


def test_the_score_is_100_minus_10_per_weighted_event_per_100_km() -> None:
    trips = [
        trip(30.0, 1000, harsh_braking=2),
        trip(20.0, 2000, harsh_acceleration=1, crash=0),
        trip(50.0, 3000, harsh_cornering=1),
        trip(99.0, 9000, harsh_braking=50),  # after the period
    ]
    score = driving_score(VIN, trips, at(0), at(5000))
    assert (score.trips, score.distance_km) == (3, 100.0)
    assert score.harsh == {
        "crash": 0,
        "harsh-acceleration": 1,
        "harsh-braking": 2,
        "harsh-cornering": 1,
    }
    assert (score.weighted_per_100_km, score.score) == (4.0, 60.0)
    crash = driving_score(VIN, [trip(50.0, 1000, crash=1)], at(0), at(5000))
    assert (crash.weighted_per_100_km, crash.score) == (20.0, 0.0)  # clamped at 0


def test_no_score_under_10_km() -> None:
    score = driving_score(VIN, [trip(9.9, 1000, harsh_braking=1)], at(0), at(5000))
    assert (score.distance_km, score.score, score.weighted_per_100_km) == (9.9, None, None)


def closed_trips(out: Outcome) -> dict[str, Trip]:
    """The last word on each trip that ended."""
    return {t.trip_id: t for t in out.trips if t.end_ts is not None}


def test_a_harsh_event_read_before_the_telemetry_of_its_trip_counts_in_it() -> None:
    shard = tracker()
    out = run(shard, telemetry(0, 0.0, 0.0), event("harsh-braking", 40))
    assert out.trips == []
    out = run(
        shard, *drive(10, 200, 40.0, 0.0), *(telemetry(s, 0.0, 2.1) for s in range(200, 520, 10))
    )
    [closed] = closed_trips(out).values()
    assert closed.harsh == {"harsh-braking": 1}


def test_a_harsh_event_read_after_its_trip_ended_amends_the_trip() -> None:
    shard = tracker()
    run(shard, *drive(10, 200, 40.0, 0.0), *(telemetry(s, 0.0, 2.1) for s in range(200, 520, 10)))
    # stopped at 200 (ended there), the trip was seen over at 490: read in order, an event at
    # 300 would have come while it was open
    late = (event("harsh-acceleration", 20), event("harsh-braking", 300))
    out = run(shard, *late, event("harsh-braking", 600))
    first, amended = out.trips
    assert first.harsh == {"harsh-acceleration": 1}
    assert (amended.trip_id, amended.end_ts) == (f"{VIN}-{at(10)}", at(200))
    assert amended.harsh == {"harsh-acceleration": 1, "harsh-braking": 1}


@given(
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 700), max_size=12),
    st.none() | st.integers(20, 760),
)
@settings(max_examples=80, deadline=None)
def test_whatever_order_the_cars_topics_are_read_in_the_trips_and_state_are_the_same(
    rng: random.Random, event_times: list[int], offline_s: int | None
) -> None:
    """Each topic (telemetry, events, presence) is read in its own order; how they interleave
    changes no trip and not the car's last state."""
    records = [
        *drive(10, 200, 40.0, 0.0),
        *(telemetry(s, 0.0, 2.1) for s in range(200, 320, 10)),
        *drive(320, 400, 30.0, 2.1),
        *(telemetry(s, 0.0, 2.8) for s in range(400, 760, 10)),
    ]
    presence_records = [presence(True, 10)]  # the same time as the first telemetry
    if offline_s is not None:  # the car goes offline: nothing after that
        records = [r for r in records if r["ts"] < at(offline_s)]
        presence_records.append(presence(False, offline_s))
    kinds = ("harsh-braking", "harsh-acceleration", "crash")
    events = [event(kinds[n % 3], t) for n, t in enumerate(sorted(event_times))]
    everything = sorted(presence_records + records + events, key=lambda i: i["ts"])
    in_order = read(tracker(), everything)
    streams = [records, events, presence_records]
    merged = []
    while any(streams):
        merged.append(rng.choice([s for s in streams if s]).pop(0))
    shuffled = read(tracker(), merged)
    assert closed_trips(shuffled) == closed_trips(in_order)
    assert shuffled.states[-1] == in_order.states[-1]


def read(shard: FleetShard, items: list[dict[str, Any]]) -> Outcome:
    """Every input, no tick (time is the app's, not the records')."""
    out = Outcome()
    for item in items:
        outcome = shard.handle(item)
        out.states += outcome.states
        out.trips += outcome.trips
    return out


def test_silence_is_judged_on_the_records_time_while_they_come() -> None:
    shard = tracker(silence_s=600)
    # two cars in one shard; the ticks run five minutes ahead, as on a backlog after a restart
    other = "WVWZZZ1JZXW000002"
    read(shard, drive(0, 60, 50.0, 0.0))
    for s in range(0, 650, 10):
        shard.handle({**telemetry(s, 50.0, 1.0), "vin": other})
        assert shard.tick(at(300 + s)).trips == []  # VIN was heard at 50: not 600 s ago yet
    shard.handle({**telemetry(650, 50.0, 1.0), "vin": other})
    [closed] = shard.tick(at(300 + 650)).trips  # the records reached 650: 600 s of silence
    assert (closed.vin, closed.ended_by, closed.end_ts) == (VIN, TripEnd.SILENT, at(50))
    # the whole shard quiet for silence_s of tick time: the ticks' time counts
    assert shard.tick(at(650 + 599)).trips == []
    [ended] = shard.tick(at(650 + 605)).trips  # (a sweep each sweep_every_s)
    assert (ended.vin, ended.ended_by, ended.end_ts) == (other, TripEnd.SILENT, at(650))
