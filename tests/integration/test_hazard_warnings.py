"""Hazards reach the cars and the API: the hazards app, a gateway worker, the tracker and the API
as real processes on the real Kafka and Mosquitto. Each hazard is a retained MQTT 5 message of
its own in the hazard's cell that expires with it and goes when it is cleared; the API answers
what is in force near a place and streams each step live."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fleetlink.contracts.geo import cell_of
from fleetlink.contracts.hazards import Hazard, HazardGroup, HazardState
from fleetlink.contracts.topics import KafkaTopic, MqttTopic
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.apps import app_platform, now_ms, running_app, send_event, wait_assigned
from tests.support.commands import Platform, command_platform
from tests.support.polling import eventually
from tests.support.stack import mqtt_client

SPOT = (52.47, 13.52)
VALIDITY_S = 5.0


@pytest.fixture
def platform(tmp_path: Path, local_stack: LocalStack, stack_config: Settings) -> Iterator[Platform]:
    with command_platform(tmp_path, stack_config) as running:
        yield running


def follow_live(
    platform: Platform, found: list[dict[str, Any]], listening: threading.Event
) -> None:
    """Read /v1/hazards/live near the spot until a cleared step came for each of two hazards."""
    params = {"lat": SPOT[0], "lon": SPOT[1], "radius_m": 500}
    with (
        platform.client(timeout=60) as client,
        client.stream("GET", "/v1/hazards/live", params=params) as stream,
    ):
        for line in stream.iter_lines():
            if line.startswith("event: ready"):
                listening.set()
            elif line.startswith("data: ") and line != "data: {}":
                found.append(json.loads(line[6:]))
                if sum(step["state"] == "cleared" for step in found) == 2:
                    return


def test_hazards_are_retained_warnings_and_api_answers_until_cleared(
    tmp_path: Path, platform: Platform, stack_config: Settings
) -> None:
    apps = app_platform(
        tmp_path,
        platform.settings,
        own_topics=False,
        hazards={
            "rules": {
                "emergency-brake": {"validity_s": VALIDITY_S},
                "post-crash": {"validity_s": VALIDITY_S},
            }
        },
    )
    cell = cell_of(*SPOT)
    warnings = MqttTopic.geo_warnings_filter(cell)
    steps: list[dict[str, Any]] = []
    listening = threading.Event()
    follower = threading.Thread(target=follow_live, args=(platform, steps, listening))
    follower.start()
    assert listening.wait(15)
    with running_app(apps, "hazards") as app:
        wait_assigned(apps, "hazards")
        with mqtt_client(stack_config, subscribe=warnings) as (_, inbox):
            producer = apps.producer()
            events = apps.topic(KafkaTopic.EVENTS)
            for n in range(3):
                send_event(
                    producer, events, f"WRN0000000000000{n}", "harsh-braking", now_ms(), SPOT
                )
            # a second hazard in the same cell: a crash, 60 m away
            send_event(producer, events, "WRN00000000000009", "crash", now_ms(), (52.4705, 13.52))
            producer.flush(10)
            sent = time.monotonic()
            live = inbox.wait_for(2, 30)
            delay = time.monotonic() - sent
        assert len(live) == 2, [m.topic for m in live]
        hazards = [msgspec.json.decode(m.payload, type=Hazard) for m in live]
        assert {h.group for h in hazards} == {HazardGroup.EMERGENCY_BRAKE, HazardGroup.POST_CRASH}
        assert {h.state for h in hazards} == {HazardState.CONFIRMED}
        assert sorted(m.topic for m in live) == sorted(
            MqttTopic.geo_warning(cell, h.hazard_id) for h in hazards
        )
        for message in live:
            assert 1 <= message.properties.MessageExpiryInterval <= VALIDITY_S  # type: ignore[union-attr]
        print(f"report -> warnings: {delay * 1000:.0f} ms, the app's start included")
        # the API answers what is in force near the spot, nearest first
        with platform.client() as client:
            reply = client.get("/v1/hazards", params={"lat": SPOT[0], "lon": SPOT[1]})
            assert reply.status_code == 200, reply.text
            rows = reply.json()["hazards"]
            assert [r["group"] for r in rows] == ["emergency-brake", "post-crash"]
            assert rows[0]["distance_m"] < rows[1]["distance_m"]
            far = client.get("/v1/hazards", params={"lat": 48.1, "lon": 11.6}).json()
            assert far["total"] == 0
        # a car arriving later hears both, retained
        with mqtt_client(stack_config, subscribe=warnings) as (_, late):
            retained = late.wait_for(2, 10)
        assert all(m.retain for m in retained)
        assert {msgspec.json.decode(m.payload, type=Hazard).hazard_id for m in retained} == {
            h.hazard_id for h in hazards
        }
        # ticks expire them; the cleared records remove the retained warnings
        eventually(
            lambda: sum(h.state is HazardState.CLEARED for h in apps.hazards()) == 2,
            30,
            "both hazards cleared",
        )
        eventually(lambda: _retained(stack_config, warnings) == [], 15, "the warnings withdrawn")
        assert app.poll() is None
    follower.join(15)
    assert not follower.is_alive()
    by_hazard = {
        h.hazard_id: [s["state"] for s in steps if s["hazard_id"] == h.hazard_id] for h in hazards
    }
    assert all(states == ["confirmed", "cleared"] for states in by_hazard.values()), by_hazard
    with platform.client() as client:
        assert client.get("/v1/hazards").json()["total"] == 0


def _retained(settings: Settings, topic: str) -> list[bytes]:
    with mqtt_client(settings, subscribe=topic) as (_, inbox):
        return [m.payload for m in inbox.wait_for(1, 1.5)]
