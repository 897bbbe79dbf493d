"""The hazards app survives kill -9 (with its state directory, and without it) and shares its
work between two instances: the hazards it writes are those the pure logic makes of the same
reports in one uninterrupted pass (the same ids and steps; at-least-once may repeat a record)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fleetlink.apps.hazards.logic import HazardParams, HazardShard
from fleetlink.contracts.hazards import HazardState
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.apps import (
    AppPlatform,
    app_platform,
    now_ms,
    running_app,
    send_event,
    wait_assigned,
)
from tests.support.polling import eventually
from tests.unit.apps.stores import JsonStore
from tests.unit.apps.test_hazard_logic import feed

Step = tuple[str, HazardState]


def reports(spots: range, base: int) -> list[dict[str, Any]]:
    """Three cars brake hard at each spot (kilometres apart), a second apart."""
    items = []
    for spot in spots:
        for car in range(3):
            vin, ts = f"KXL{spot:04d}0000000{car:03d}", base + spot * 100 + car * 1000
            items.append(
                {
                    "t": "report",
                    "vin": vin,
                    "kind": "harsh-braking",
                    "ts": ts,
                    "lat": 52.30 + 0.02 * spot,
                    "lon": 13.60,
                    "heading": None,
                    "msg_id": f"{vin}-harsh-braking-{ts}",  # as send_event names it
                }
            )
    return items


def expected(items: list[dict[str, Any]]) -> set[Step]:
    shard = HazardShard(JsonStore(), HazardParams())
    in_time = sorted(items, key=lambda i: i["ts"])
    return {(hazard.hazard_id, hazard.state) for hazard in feed(shard, *in_time)}


def write(platform: AppPlatform, items: list[dict[str, Any]]) -> None:
    producer = platform.producer()
    for item in items:
        send_event(
            producer,
            platform.topic(KafkaTopic.EVENTS),
            item["vin"],
            item["kind"],
            item["ts"],
            (item["lat"], item["lon"]),
        )
    producer.flush(10)


def written(platform: AppPlatform) -> set[Step]:
    return {(hazard.hazard_id, hazard.state) for hazard in platform.hazards()}


@pytest.fixture
def platform(tmp_path: Path, local_stack: LocalStack, stack_config: Settings) -> AppPlatform:
    return app_platform(tmp_path, stack_config, grace_s=600.0, commit_interval_s=2.0)


def test_kill_9_and_a_lost_state_directory_change_nothing(platform: AppPlatform) -> None:
    base = now_ms() - 60_000  # valid 300 s: none expires during the test
    first, second, third = (
        reports(range(0, 8), base),
        reports(range(8, 16), base),
        reports(range(16, 24), base),
    )
    state = platform.settings.apps_state_dir()
    with running_app(platform, "hazards") as app:
        write(platform, first)
        eventually(lambda: len(written(platform)) >= 1, 60, "the first hazards")
        write(platform, second)
        _kill_9(app)
    with running_app(platform, "hazards") as app:
        eventually(lambda: expected(first + second) <= written(platform), 60, "every hazard")
        write(platform, third[:12])
        _kill_9(app)
    shutil.rmtree(state)  # the instance rebuilds its state from the changelog topics
    with running_app(platform, "hazards") as app:
        write(platform, third[12:])
        want = expected(first + second + third)
        eventually(lambda: want <= written(platform), 60, "every hazard after the lost state")
        assert app.poll() is None
    assert written(platform) == want
    assert len(want) == 24


def test_two_instances_share_the_partitions_and_agree_with_one(platform: AppPlatform) -> None:
    items = reports(range(0, 12), now_ms() - 60_000)
    with running_app(platform, "hazards", 0), running_app(platform, "hazards", 1):
        write(platform, items)
        want = expected(items)
        eventually(lambda: want <= written(platform), 60, "every hazard from two instances")
        wait_assigned(platform, "hazards", instances=2)  # both hold partitions
    assert written(platform) == want
    assert len({record.partition() for record in platform.read(KafkaTopic.EVENTS)}) > 1


def _kill_9(app: subprocess.Popen[bytes]) -> None:
    app.kill()
    app.wait(10)
