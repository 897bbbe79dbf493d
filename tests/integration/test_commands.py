"""Remote commands end to end: REST -> Kafka -> gateway downlink -> vehicle -> back -> tracker.

One platform (gateway, tracker, API as real processes) for the module; each test uses vehicles
of its own. Vehicles are real MQTT 5 agents on the real Mosquitto.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fleetlink.settings import Settings
from fleetlink.stack import LocalStack
from tests.support.commands import FINAL, Platform, command_platform
from tests.support.load_fleet import load_fleet, state_of, straight_over_mqtt, through_the_platform
from tests.support.polling import eventually


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, local_stack: LocalStack, stack_config: Settings
) -> Iterator[Platform]:
    with command_platform(tmp_path_factory.mktemp("commands"), stack_config) as running:
        yield running


def vin(n: int) -> str:
    return f"CMDZZZ1JZXW{n:06d}"


def states(command: dict[str, Any]) -> list[str]:
    return [step["state"] for step in command["history"]]


def test_success_seen_by_get_and_by_the_live_stream(platform: Platform) -> None:
    car = platform.start_car(vin(1))
    events: list[dict[str, Any]] = []
    listening = threading.Event()

    def follow() -> None:
        with (
            platform.client(timeout=30) as client,
            client.stream("GET", "/v1/commands/events", params={"vin": vin(1)}) as stream,
        ):
            for line in stream.iter_lines():
                if line.startswith("event: ready"):
                    listening.set()
                if line.startswith("data: ") and line != "data: {}":
                    events.append(json.loads(line[6:]))
                    if events[-1]["state"] in FINAL:
                        return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert listening.wait(10)
    reply = platform.post(vin(1), name="trunk.open", idempotency_key="courier-1")
    assert reply.status_code == 202, reply.text
    command_id = reply.json()["command_id"]
    assert reply.headers["location"] == f"/v1/commands/{command_id}"
    done = platform.wait_state(command_id, FINAL)
    assert done["state"] == "succeeded"
    assert states(done) == ["queued", "sent", "delivered", "succeeded"]
    assert done["expires_at"] - done["created_at"] == 60_000  # the actuation default
    follower.join(10)
    assert [e["state"] for e in events] == ["queued", "sent", "delivered", "succeeded"]
    assert car.state.trunk_open is True
    assert car.executor.executed == 1
    listed = platform.client().get(f"/v1/vehicles/{vin(1)}/commands").json()["commands"]
    assert [c["command_id"] for c in listed] == [command_id]


def test_a_failure_reply_is_failed_with_the_vehicles_reason(platform: Platform) -> None:
    car = platform.start_car(vin(2))
    car.state.speed_kmh = 50.0  # the trunk does not open while driving
    command_id = platform.post(vin(2), name="trunk.open").json()["command_id"]
    done = platform.wait_state(command_id, FINAL)
    assert (done["state"], done["reason"]) == ("failed", "vehicle-moving")
    assert car.state.trunk_open is False


def test_offline_vehicle_gets_the_command_when_it_is_back_within_the_ttl(
    platform: Platform,
) -> None:
    platform.start_car(vin(3))
    platform.stop_car(vin(3))  # known to the platform, now offline
    command_id = platform.post(vin(3), name="flash", ttl_s=60).json()["command_id"]
    time.sleep(2)
    assert platform.command(command_id)["state"] == "queued"  # held, not at the broker
    car = platform.start_car(vin(3))
    done = platform.wait_state(command_id, FINAL)
    assert done["state"] == "succeeded"
    assert car.executor.executed == 1


def test_offline_past_the_ttl_expires_and_never_runs_even_when_the_car_returns(
    platform: Platform,
) -> None:
    platform.start_car(vin(4))
    platform.stop_car(vin(4))
    command_id = platform.post(vin(4), name="unlock", ttl_s=2).json()["command_id"]
    done = platform.wait_state(command_id, FINAL, timeout=20)
    # held by the downlink ("ttl"), or, when the downlink had not yet read the car's offline
    # presence, handed to its broker session, where the message expiry dropped it
    assert done["state"] == "expired"
    assert done["reason"] in ("ttl", "vehicle-offline")
    car = platform.start_car(vin(4))
    time.sleep(3)
    assert car.stats.commands == 0
    assert car.executor.executed == 0
    assert car.state.doors_locked is True
    assert platform.command(command_id)["state"] == "expired"


def test_cancel_while_held_and_not_after_the_outcome(platform: Platform) -> None:
    platform.start_car(vin(5))
    platform.stop_car(vin(5))
    command_id = platform.post(vin(5), name="trunk.open").json()["command_id"]
    with platform.client() as client:
        reply = client.post(f"/v1/commands/{command_id}/cancel")
        assert reply.status_code == 200, reply.text
        assert (reply.json()["state"], reply.json()["reason"]) == (
            "cancelled",
            "cancelled-by-client",
        )
        car = platform.start_car(vin(5))
        time.sleep(3)
        assert car.executor.executed == 0
        assert car.state.trunk_open is False
        again = client.post(f"/v1/commands/{command_id}/cancel")
        assert again.status_code == 409
        assert again.json()["error"] == "not-cancellable"
        assert client.post(f"/v1/commands/{uuid.uuid4()}/cancel").status_code == 404


def test_the_same_idempotency_key_makes_one_command_even_when_racing(platform: Platform) -> None:
    car = platform.start_car(vin(6))
    results: list[httpx.Response] = []

    def post() -> None:
        results.append(platform.post(vin(6), name="honk", idempotency_key="retry-me"))

    racers = [threading.Thread(target=post) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(30)
    ids = {reply.json()["command_id"] for reply in results}
    assert len(ids) == 1
    (command_id,) = ids
    assert platform.wait_state(command_id, FINAL)["state"] == "succeeded"
    replay = platform.post(vin(6), name="honk", idempotency_key="retry-me")
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "1"
    assert replay.json()["state"] == "succeeded"
    conflict = platform.post(vin(6), name="flash", idempotency_key="retry-me")
    assert conflict.status_code == 409
    time.sleep(1)
    assert car.executor.executed == 1


def test_a_newer_setting_supersedes_a_queued_older_one(platform: Platform) -> None:
    platform.start_car(vin(7))
    platform.stop_car(vin(7))
    older = platform.post(vin(7), name="climate", params={"target_c": 19}).json()["command_id"]
    newer = platform.post(vin(7), name="climate", params={"target_c": 23.5}).json()["command_id"]
    superseded = platform.wait_state(older, FINAL)
    assert (superseded["state"], superseded["reason"]) == ("cancelled", "superseded")
    car = platform.start_car(vin(7))
    assert platform.wait_state(newer, FINAL)["state"] == "succeeded"
    assert car.executor.executed == 1
    assert car.state.climate_target_c == 23.5


def test_a_lost_answer_is_unknown_then_reconciled_from_telemetry(platform: Platform) -> None:
    car = platform.start_car(vin(8))
    car.lose_answers = True
    trunk = platform.post(vin(8), name="trunk.open", ttl_s=2).json()["command_id"]
    honk = platform.post(vin(8), name="honk", ttl_s=2).json()["command_id"]
    honked = platform.wait_state(honk, FINAL, timeout=20)
    assert (honked["state"], honked["reason"]) == ("unknown", "no-response")  # nothing to see
    opened = platform.wait_state(trunk, {"succeeded"}, timeout=20)
    assert states(opened)[-2:] == ["unknown", "succeeded"]
    assert opened["reason"].startswith("reconciled: telemetry Vehicle.Body.Trunk.Rear.IsOpen")
    assert car.executor.executed == 2  # each ran once; neither was retried
    time.sleep(2)
    assert car.stats.commands == 2


def test_kill_9_gateway_and_tracker_mid_flow_loses_nothing_runs_nothing_twice(
    platform: Platform,
) -> None:
    cars = [platform.start_car(vin(100 + n)) for n in range(10)]
    sent: list[str] = []
    stop = threading.Event()

    def keep_sending() -> None:
        n = 0
        while not stop.is_set():
            reply = platform.post(vin(100 + n % 10), name="honk", idempotency_key=f"k9-{n}")
            if reply.status_code == 202:
                sent.append(reply.json()["command_id"])
            n += 1
            time.sleep(0.02)

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        for _ in range(2):
            time.sleep(2)
            victim = platform.supervisor.handles[0]
            pid = victim.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            eventually(lambda v=victim, p=pid: v.pid != p and v.running, 15, "gateway restart")
        tracker = platform.service("tracker")
        pid = tracker.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        eventually(lambda: tracker.pid != pid and tracker.running, 15, "tracker restart")
        time.sleep(2)  # commands keep coming while the tracker restores its state
    finally:
        stop.set()
        sender.join(60)
    assert len(sent) >= 50
    outcome = {c: platform.wait_state(c, FINAL, timeout=90) for c in sent}
    bad = [c for c in outcome.values() if c["state"] != "succeeded"]
    assert bad == [], f"{len(bad)} of {len(sent)} did not succeed: {bad[:3]}"
    executed = sum(car.executor.executed for car in cars)
    assert executed == len(sent)  # every command ran exactly once


def test_a_load_fleet_car_answers_every_command_as_the_agent_does(
    platform: Platform, stack_config: Settings
) -> None:
    """The load fleet (``sim/load_fleet.py``, what the benchmarks drive) is faithful: one of its
    cars and one full agent get the same commands, through the platform and straight over MQTT
    (forged, tampered, replayed, expired, malformed, digital keys), and end the same way."""
    agent_car, load_car = vin(200), vin(201)
    agent = platform.start_car(agent_car)
    with load_fleet(stack_config, [load_car]) as fleet:
        platform.wait_presence(load_car, online=True)
        car = fleet.cars[load_car]
        for state in (agent.state, car.state):
            state.speed_kmh = 50.0  # on the road: the trunk stays shut
            state.battery_soc = 60.0
        via_platform = {v: through_the_platform(platform, v) for v in (agent_car, load_car)}
        for state in (agent.state, car.state):
            state.speed_kmh = 0.0  # parked for the courier
        via_mqtt = {v: straight_over_mqtt(stack_config, v, vin(299)) for v in (agent_car, load_car)}
        load_state, load_executed = state_of(car.state), car.executor.executed
        assert fleet.stats["malformed"] == 2
    assert via_platform[load_car] == via_platform[agent_car]
    assert via_platform[load_car] == [
        ("succeeded", None),
        ("succeeded", None),
        ("failed", "vehicle-moving"),
        ("succeeded", None),
        ("succeeded", None),
        ("succeeded", None),
        ("succeeded", None),
    ]
    assert via_mqtt[load_car] == via_mqtt[agent_car]
    answers = via_mqtt[load_car]
    assert answers["honest"] == answers["key-first"] == ("succeeded", None)
    reasons = {command_id: reason for command_id, (_status, reason) in answers.items()}
    assert (reasons["unsigned"], reasons["tampered"], reasons["forged"]) == (
        "unsigned",
        "bad-signature",
        "unknown-key",
    )
    assert (reasons["expired"], reasons["elsewhere"]) == ("expired", "wrong-vehicle")
    assert str(reasons["malformed"]).startswith("malformed: ")
    assert (reasons["key-again"], reasons["key-stale"], reasons["key-forged"]) == (
        "key-used-up",
        "key-expired",
        "key-unknown-signer",
    )
    assert load_state == state_of(agent.state)
    assert load_executed == agent.executor.executed == 9  # 7 via the platform, 2 over MQTT
