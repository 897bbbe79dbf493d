"""Fleet tracking as a real process on the real Kafka: cars that drive a trip and end it three
ways (standing still, falling silent, going offline), with harsh events on the way. What it
writes is exactly what the pure logic makes of the same inputs: from two instances, and after
kill -9 with the state directory lost."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from fleetlink.apps.fleet.app import fencing_of, judge_fences, params_of
from fleetlink.apps.fleet.fences import FenceBook
from fleetlink.apps.fleet.geofencing import Geofencer
from fleetlink.apps.fleet.tracking import FleetShard
from fleetlink.apps.runtime.clock import shard_keys, shard_of
from fleetlink.contracts import headers as h
from fleetlink.contracts.fleet import Trip, TripEnd, VehicleState
from fleetlink.contracts.geofences import FenceCircle, GeofenceDefinition, GeofenceEvent
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.apps import (
    AppPlatform,
    app_platform,
    now_ms,
    running_app,
    send_event,
    send_presence,
    send_telemetry,
    tick,
    wait_assigned,
)
from tests.support.gateway import header
from tests.support.polling import eventually
from tests.unit.apps.stores import JsonStore

PARTITIONS = 6  # of the test topics (``app_platform``)
HOME = (52.5200, 13.4050)
STOP_S, SILENCE_S = 30.0, 60.0


def vin(n: int) -> str:
    return f"FLT{n:04d}000000000A"


def scenario(n: int, base: int) -> list[dict[str, Any]]:
    """Car ``n``: online, 90 s at 36 km/h north with harsh events (two of them one episode),
    then it stands still (n % 3 == 0), falls silent still driving (1), or stops and goes
    offline (2)."""
    car = vin(n)
    items: list[dict[str, Any]] = [{"t": "presence", "vin": car, "ts": base, "online": True}]

    def record(s: int, speed: float) -> dict[str, Any]:
        moved = min(s, 95) * 10.0
        return {
            "t": "telemetry", "vin": car, "ts": base + s * 1000, "speed": speed,
            "lat": HOME[0] + n * 0.01 + moved / 111_195, "lon": HOME[1], "heading": 0.0,
            "odo": 100.0 + moved / 1000, "soc": 60.0 - s / 100,
        }  # fmt: skip

    silent = n % 3 == 1  # falls silent while driving (a tunnel, a flat battery)
    items += [record(s, 36.0 if 0 < s < 95 or (silent and s) else 0.0) for s in range(0, 100, 5)]
    items += [
        {"t": "event", "vin": car, "kind": "harsh-braking", "ts": base + 30_000},
        {"t": "event", "vin": car, "kind": "harsh-braking", "ts": base + 40_000},
        {"t": "event", "vin": car, "kind": "harsh-acceleration", "ts": base + 50_000},
    ]
    if n % 3 == 0:  # stands still, telemetry going on
        items += [record(s, 0.0) for s in range(100, 140, 5)]
    elif n % 3 == 2:
        items.append({"t": "presence", "vin": car, "ts": base + 100_000, "online": False})
    return items


def fence_around(
    n: int, metres_north: float, radius_m: float, dwell_s: float
) -> GeofenceDefinition:
    """A circle on car ``n``'s way north, for that car alone."""
    lat = HOME[0] + n * 0.01 + metres_north / 111_195
    return GeofenceDefinition(
        fence_id=f"around-{n}",
        name=f"around car {n}",
        owner="ada",
        created_at=1,
        circle=FenceCircle(lat, HOME[1], radius_m),
        vins=[vin(n)],
        dwell_s=dwell_s,
    )


# car 0 drives through the first (in at 400 m, out at 650 m: 120 m and the 25 m band), car 3
# stops in the second (in at 850 m, stands at 950 m) and dwells there
THROUGH = fence_around(0, 500, 120, dwell_s=10)
STOPS_IN = fence_around(3, 950, 110, dwell_s=20)

Expected = tuple[dict[str, VehicleState], dict[str, Trip], dict[str, GeofenceEvent]]


def expected(
    platform: AppPlatform,
    items: list[dict[str, Any]],
    until: int,
    fences: tuple[GeofenceDefinition, ...] = (),
) -> Expected:
    """The last state of each car, the last word on each trip and the fence events, as the pure
    logic writes them fed the inputs in time order, sharded as the app shards them, then
    ticked."""
    settings = platform.settings.apps.fleet
    params = params_of(settings)
    book = FenceBook(settings.fence_band_m)
    book.change(fences)
    stores = {key: JsonStore() for key in shard_keys(PARTITIONS)}
    shards = {key: FleetShard(store, params, PARTITIONS) for key, store in stores.items()}
    fencers = {key: Geofencer(store, book, fencing_of(settings)) for key, store in stores.items()}
    states: dict[str, VehicleState] = {}
    trips: dict[str, Trip] = {}
    events: dict[str, GeofenceEvent] = {}

    def take(key: str, item: dict[str, Any]) -> None:
        outcome = shards[key].handle(item)
        states.update({s.vin: s for s in outcome.states})
        trips.update({t.trip_id: t for t in outcome.trips})
        events.update({e.event_id: e for e in judge_fences(fencers[key], item, outcome)})

    for item in sorted(items, key=lambda i: i["ts"]):
        take(shard_of(item["vin"], PARTITIONS), item)
    for key in shards:
        for src in range(PARTITIONS):
            take(key, {"t": "tick", "ts": until, "src": src})
    return states, trips, events


def write(platform: AppPlatform, items: list[dict[str, Any]]) -> None:
    producer = platform.producer()
    topic = platform.topic
    for item in items:
        car, ts = item["vin"], item["ts"]
        if item["t"] == "presence":
            send_presence(producer, topic(KafkaTopic.PRESENCE), car, ts, online=item["online"])
        elif item["t"] == "event":
            send_event(producer, topic(KafkaTopic.EVENTS), car, item["kind"], ts, HOME)
        else:
            signals = {
                "Vehicle.TraveledDistance": item["odo"],
                "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": item["soc"],
            }
            where = (item["lat"], item["lon"])
            send_telemetry(
                producer, topic(KafkaTopic.TELEMETRY), car, ts, where, item["speed"], 0.0, signals
            )
    producer.flush(10)


@pytest.fixture
def platform(tmp_path: Path, local_stack: LocalStack, stack_config: Settings) -> AppPlatform:
    return app_platform(
        tmp_path,
        stack_config,
        simulated_clock=True,
        # every record writes the car's state: the test sees when each one was read
        fleet={"stop_s": STOP_S, "silence_s": SILENCE_S, "state_every_s": 0, "sweep_every_s": 1},
    )


def read_up_to(platform: AppPlatform, items: list[dict[str, Any]]) -> bool:
    """Whether the app wrote a state for the last record of each car (all of it was read)."""
    last: dict[str, int] = {}
    for item in items:
        if item["t"] != "event":
            last[item["vin"]] = max(last.get(item["vin"], 0), item["ts"])
    got = platform.vehicle_states()
    return all(car in got and got[car].ts >= ts for car, ts in last.items())


def settled(platform: AppPlatform, want: Expected) -> bool:
    states, trips, events = want
    return (
        platform.vehicle_states() == states
        and platform.trips() == trips
        and platform.geofence_events() == events
    )


def run_scenarios(platform: AppPlatform, items: list[dict[str, Any]], until: int) -> None:
    write(platform, items)
    eventually(lambda: read_up_to(platform, items), 60, "every record read")
    tick(platform, until)  # now the silent ones are over: judged after every record was read


def test_two_instances_make_exactly_the_trips_and_states_of_the_logic(
    platform: AppPlatform,
) -> None:
    base = now_ms() - 600_000
    items = [item for n in range(9) for item in scenario(n, base)]
    until = base + 300_000
    want = expected(platform, items, until, (THROUGH, STOPS_IN))
    platform.draw(THROUGH)
    with running_app(platform, "fleet", 0) as app, running_app(platform, "fleet", 1):
        wait_assigned(platform, "fleet", instances=2)
        platform.draw(STOPS_IN)  # to the running instances: no restart
        time.sleep(2)  # read within a poll (0.1 s) of being written
        run_scenarios(platform, items, until)
        producer = platform.producer()
        producer.produce(platform.topic(KafkaTopic.PRESENCE), b"\xff no presence", key=b"X")
        producer.flush(10)
        eventually(lambda: settled(platform, want), 60, "every car and trip as the logic has it")
        eventually(lambda: len(platform.read(KafkaTopic.DLQ)) >= 1, 30, "the dead letter")
        assert app.poll() is None
    trips = platform.trips()
    assert len(trips) == 9
    ends = sorted(t.ended_by.value for t in trips.values() if t.ended_by is not None)
    assert ends == ["offline"] * 3 + ["silent"] * 3 + ["stopped"] * 3
    for trip in trips.values():
        assert trip.harsh == {"harsh-acceleration": 1, "harsh-braking": 1}
        assert trip.distance_km == pytest.approx(0.9, abs=1e-6)  # the odometer's
        if trip.ended_by is TripEnd.STOPPED:
            assert trip.end_ts == trip.start_ts + 90_000  # first seen standing at 95
        if trip.ended_by is TripEnd.SILENT:
            assert trip.end_ts == trip.start_ts + 90_000  # last heard at 95
    states = platform.vehicle_states()
    # the silent ones are online still: their connection lives (the broker's word)
    assert sorted(s.online for s in states.values()) == [False] * 3 + [True] * 6
    [letter] = platform.read(KafkaTopic.DLQ)
    assert header(letter, h.DLQ_REASON) is not None
    visits = sorted((e.vin, e.kind.value, e.ts - base) for e in platform.geofence_events().values())
    assert visits == [
        (vin(0), "dwell", 50_000),
        (vin(0), "enter", 40_000),
        (vin(0), "exit", 65_000),
        (vin(3), "dwell", 105_000),
        (vin(3), "enter", 85_000),
    ]


def test_kill_9_and_a_lost_state_directory_change_nothing(platform: AppPlatform) -> None:
    base = now_ms() - 600_000
    items = [item for n in range(6) for item in scenario(n, base)]
    first = [i for i in items if i["ts"] < base + 50_000]
    second = [i for i in items if i["ts"] >= base + 50_000]
    until = base + 300_000
    platform.draw(THROUGH, STOPS_IN)
    with running_app(platform, "fleet") as app:
        write(platform, first)
        eventually(lambda: read_up_to(platform, first), 60, "the first half read")
        app.kill()  # kill -9, mid-trip: every car is driving
        app.wait(10)
    shutil.rmtree(platform.settings.apps_state_dir())  # rebuilt from the changelog topics
    with running_app(platform, "fleet") as app:
        run_scenarios(platform, second, until)
        want = expected(platform, items, until, (THROUGH, STOPS_IN))
        eventually(lambda: settled(platform, want), 60, "every car and trip after the lost state")
        assert len(want[2]) == 5
        assert app.poll() is None
    assert len(platform.trips()) == 6
