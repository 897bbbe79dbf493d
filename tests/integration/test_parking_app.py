"""The parking finder as a real process on the real Kafka: curb events and passing cars at fixed
times, each scenario at a spot of its own, kilometres from the others. What it writes is exactly
what the pure logic makes of the same inputs in one pass: from two instances, and after kill -9
with the state directory lost."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import h3
import pytest

from fleetlink.apps.parking.app import params_of
from fleetlink.apps.parking.logic import ParkingShard, shards_of
from fleetlink.apps.runtime.clock import shard_keys, shard_of
from fleetlink.contracts import headers as h
from fleetlink.contracts.parking import ParkingCell, SpotSource
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.apps import (
    AppPlatform,
    app_platform,
    now_ms,
    running_app,
    send_event,
    send_telemetry,
    tick,
    wait_assigned,
)
from tests.support.gateway import header
from tests.support.polling import eventually
from tests.unit.apps.stores import JsonStore

EAST = 90.0
PARTITIONS = 6  # of the test topics (``app_platform``)


def spot(index: int, metres_east: float = 0.0) -> tuple[float, float]:
    """In the middle of a shard's area (H3 res 7, 1.2 km across): a scenario, 150 m long, lies
    in one shard (at a shard border, one stretch could be two spots, one on each side)."""
    lat, lon = h3.cell_to_latlng(h3.latlng_to_cell(52.30 + 0.05 * index, 13.60, 7))
    return (lat, lon + metres_east / 68_000.0)


def gap(
    vin: str, ts: int, where: tuple[float, float], length: float = 6.0, speed: float = 30.0
) -> dict[str, Any]:
    return {
        "t": "gap", "vin": vin, "ts": ts, "lat": where[0], "lon": where[1], "heading": EAST,
        "speed": speed, "length": length, "side": "right", "msg_id": f"{vin}-parking-gap-{ts}",
    }  # fmt: skip


def car(kind: str, vin: str, ts: int, where: tuple[float, float]) -> dict[str, Any]:
    return {
        "t": kind, "vin": vin, "ts": ts, "lat": where[0], "lon": where[1], "heading": EAST,
        "speed": 0.0, "length": 4.5, "side": None, "msg_id": f"{vin}-{kind}-{ts}",
    }  # fmt: skip


def drive_by(vin: str, ts: int, where: tuple[float, float]) -> dict[str, Any]:
    return {
        "t": "pass", "vin": vin, "ts": ts, "lat": where[0], "lon": where[1],
        "speed": 30.0, "heading": EAST,
    }  # fmt: skip


def scenarios(base: int, first: int = 0, count: int = 6) -> list[dict[str, Any]]:
    """Per spot: two cars see one gap; a car parks in another; one leaves; a car drives past a
    third without seeing it; and gaps the finder must ignore (too short, passed too fast)."""
    items: list[dict[str, Any]] = []
    for n in range(first, first + count):
        t = base + n * 100
        items += [
            gap(f"GAP{n:04d}00000000A", t, spot(n)),
            gap(f"GAP{n:04d}00000000B", t + 4_000, spot(n, 3)),
            gap(f"GAP{n:04d}00000000C", t + 1_000, spot(n, 30)),
            car("parked", f"PRK{n:04d}00000000P", t + 6_000, spot(n, 31)),
            car("unparked", f"UNP{n:04d}00000000U", t + 2_000, spot(n, 60)),
            gap(f"GAP{n:04d}00000000D", t + 3_000, spot(n, 90)),
            drive_by(f"PAS{n:04d}00000000E", t + 9_000, spot(n, 91)),
            gap(f"GAP{n:04d}00000000F", t + 5_000, spot(n, 120), length=4.0),
            gap(f"GAP{n:04d}00000000G", t + 5_000, spot(n, 150), speed=70.0),
        ]
    return items


def expected(
    platform: AppPlatform, items: list[dict[str, Any]], until: int
) -> dict[str, ParkingCell]:
    """What the pure logic writes last for each cell, fed the inputs in event-time order,
    sharded as the app shards them."""
    apps = platform.settings.apps
    params = params_of(apps.parking, apps.grace_s)

    def shard_key(cell: str) -> str:
        return shard_of(str(h3.cell_to_parent(cell, apps.parking.shard_resolution)), PARTITIONS)

    shards = {
        key: ParkingShard(JsonStore(), params, lambda cell, key=key: shard_key(cell) == key)
        for key in shard_keys(PARTITIONS)
    }
    latest: dict[str, ParkingCell] = {}
    for item in sorted(items, key=lambda i: i["ts"]):
        for key in shards_of(item, params, shard_key):
            shards[key].handle(item)
            for cell in shards[key].tick(item["ts"]).cells:
                latest[cell.cell] = cell
    for shard in shards.values():
        for cell in shard.tick(until).cells:
            latest[cell.cell] = cell
    return latest


def write(platform: AppPlatform, items: list[dict[str, Any]]) -> None:
    producer = platform.producer()
    events, telemetry = platform.topic(KafkaTopic.EVENTS), platform.topic(KafkaTopic.TELEMETRY)
    kinds = {"gap": "parking-gap", "parked": "parked", "unparked": "unparked"}
    for item in items:
        where = (item["lat"], item["lon"])
        if item["t"] == "pass":
            send_telemetry(producer, telemetry, item["vin"], item["ts"], where, 30.0, EAST)
            continue
        data: dict[str, Any] = {"length_m": item["length"]}
        if item["side"]:
            data["side"] = item["side"]
        send_event(
            producer, events, item["vin"], kinds[item["t"]], item["ts"], where,
            heading_deg=EAST, speed_kmh=item["speed"], data=data,
        )  # fmt: skip
    producer.flush(10)


@pytest.fixture
def platform(tmp_path: Path, local_stack: LocalStack, stack_config: Settings) -> AppPlatform:
    return app_platform(
        tmp_path,
        stack_config,
        grace_s=600.0,
        commit_interval_s=2.0,
        simulated_clock=True,
        # nothing decays away while a test runs; a pass is judged a second after it
        parking={"default_lifetime_s": 3600.0, "pass_grace_s": 1.0},
    )


def settled(platform: AppPlatform, want: dict[str, ParkingCell]) -> bool:
    got = platform.parking()
    return all(got.get(cell) == record for cell, record in want.items())


def test_two_instances_make_exactly_the_spots_of_the_logic(platform: AppPlatform) -> None:
    base = now_ms() - 60_000
    items = scenarios(base)
    want = expected(platform, items, base + 20_000)
    with running_app(platform, "parking", 0) as app, running_app(platform, "parking", 1):
        write(platform, items)
        tick(platform, base + 20_000)
        producer = platform.producer()
        producer.produce(
            platform.topic(KafkaTopic.EVENTS), b"\xff not an event", key=b"GAP00000000000000"
        )
        producer.flush(10)
        eventually(lambda: settled(platform, want), 60, "every cell as the logic has it")
        eventually(lambda: len(platform.read(KafkaTopic.DLQ)) >= 1, 30, "the dead letter")
        wait_assigned(platform, "parking", instances=2)  # both hold partitions
        assert app.poll() is None
    got = platform.parking()
    assert set(got) == set(want)
    merged = [s for c in got.values() for s in c.spots if s.reporters == 2]
    assert len(merged) == 6  # two cars, one gap: one spot in each scenario
    left = [s for c in got.values() for s in c.spots if s.source is SpotSource.UNPARKED]
    assert len(left) == 6
    spots = sum(len(c.spots) for c in got.values())
    assert spots == 12  # per scenario: the merged gap and the left spot; the rest taken or ignored
    assert sum(c.taken for c in got.values()) == 12  # a car parked, a car drove past
    for record in platform.read(KafkaTopic.PARKING):
        assert record.key()
        assert record.key().decode() in got
    assert len({record.partition() for record in platform.read(KafkaTopic.PARKING)}) > 1
    [letter] = platform.read(KafkaTopic.DLQ)
    assert header(letter, h.DLQ_REASON) == b"invalid-key"


def test_kill_9_and_a_lost_state_directory_change_nothing(platform: AppPlatform) -> None:
    base = now_ms() - 60_000
    first, second = scenarios(base, 0, 6), scenarios(base + 30_000, 6, 6)
    with running_app(platform, "parking") as app:
        write(platform, first)
        tick(platform, base + 20_000)
        part = expected(platform, first, base + 20_000)
        eventually(lambda: settled(platform, part), 60, "the first cells")
        write(platform, second[:20])  # held: their time has not come
        _kill_9(app)
    shutil.rmtree(platform.settings.apps_state_dir())  # rebuilt from the changelog topics
    with running_app(platform, "parking") as app:
        write(platform, second[20:])
        tick(platform, base + 50_000)
        want = expected(platform, first + second, base + 50_000)
        eventually(lambda: settled(platform, want), 60, "every cell after the lost state")
        assert app.poll() is None
    assert set(platform.parking()) == set(want)


def _kill_9(app: subprocess.Popen[bytes]) -> None:
    app.kill()
    app.wait(10)
