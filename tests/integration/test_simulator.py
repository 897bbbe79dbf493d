"""Simulated vehicles against the real stack and gateway."""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

import msgspec

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.contracts.codec import encode
from fleetlink.contracts.hazards import Hazard, HazardGroup, HazardState
from fleetlink.contracts.models import (
    Command,
    CommandName,
    CommandResponse,
    Presence,
    PresenceStatus,
    ResponseStatus,
    Telemetry,
)
from fleetlink.contracts.topics import MqttTopic
from fleetlink.settings import Settings
from fleetlink.sim.fleet import Faults, FleetSimulation
from fleetlink.stack import LocalStack
from fleetlink.vehicle.geo import cell_of
from tests.support.apps import now_ms
from tests.support.gateway import gateway_config, supervised_gateway
from tests.support.stack import (
    TEST_GATEWAY,
    fleet_tls,
    mqtt_client,
    new_agent,
    platform_signer,
    run_cli,
    vehicle_verifier,
)


def latest_presence(bootstrap: str, topic: str) -> dict[str, Presence]:
    latest: dict[str, Presence] = {}
    for record in read_topic(
        KafkaClients.at(bootstrap), topic
    ):  # per key in offset order: the last one wins
        latest[record.key().decode()] = msgspec.json.decode(record.value(), type=Presence)
    return latest


def test_500_vehicles_with_50_forced_offline(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, topics = gateway_config(tmp_path, stack_config, workers=1)
    bootstrap = settings.kafka_bootstrap_servers()
    simulation = FleetSimulation(
        host="127.0.0.1",
        port=stack_config.stack.mqtt_port,
        tls_for=fleet_tls(stack_config),
        verifier=vehicle_verifier(stack_config),
        vehicles=500,
        interval_s=2.0,
        seed=11,
        faults=Faults(offline_share=0.1, offline_at_s=8, offline_s=300),
        vin_prefix="SMT",
    )
    vins = {agent.vin for agent in simulation.agents}

    async def scenario() -> dict[str, Presence]:
        run = asyncio.create_task(simulation.run(22))
        await asyncio.sleep(18)  # 10 s after the 50 lost their link
        presence = await asyncio.to_thread(latest_presence, bootstrap, topics.presence)
        await run
        return presence

    with supervised_gateway(config, workers=1):
        presence = asyncio.run(scenario())
        telemetry = read_topic(KafkaClients.at(bootstrap), topics.telemetry)

    assert {record.key().decode() for record in telemetry} == vins
    offline = set(simulation.forced_offline)
    assert len(offline) == 50
    # Mosquitto also hands a new subscriber the retained presence of cars from earlier runs
    presence = {vin: state for vin, state in presence.items() if vin in vins}
    assert set(presence) == vins
    assert {vin for vin, p in presence.items() if p.status is PresenceStatus.OFFLINE} == offline
    assert all(presence[vin].reason == "connection-lost" for vin in offline)
    print(f"{len(telemetry)} telemetry records from {len(vins)} vehicles; 50 offline, 450 online")


def test_vehicles_execute_commands_once_and_hear_geo_warnings(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    """Over the real broker: a command executes once even when sent twice; an expired one never;
    a warning published to the cell a car is in reaches it."""
    port = stack_config.stack.mqtt_port
    simulation = FleetSimulation(
        host="127.0.0.1",
        port=port,
        tls_for=fleet_tls(stack_config),
        verifier=vehicle_verifier(stack_config),
        vehicles=5,
        interval_s=1.0,
        seed=5,
        vin_prefix="CMD",
    )
    car = simulation.agents[0]
    now = time.time_ns() // 1_000_000

    signer = platform_signer(stack_config)

    def command(command_id: str, name: CommandName, ttl_ms: int) -> bytes:
        unsigned = Command(
            command_id=command_id, name=name, issued_at=now, expires_at=now + ttl_ms, vin=car.vin
        )
        return encode(signer.sign_command(unsigned))

    async def scenario() -> list[CommandResponse]:
        run = asyncio.create_task(simulation.run(12))
        await asyncio.sleep(3)
        answers: list[CommandResponse] = []
        responses = f"vehicles/{car.vin}/command-responses/+"
        with mqtt_client(stack_config, TEST_GATEWAY, subscribe=responses) as (
            client,
            inbox,
        ):
            flash = command("c-1", CommandName.FLASH, 60_000)
            for payload, command_id in (
                (flash, "c-1"),
                (flash, "c-1"),  # a redelivery: the same signed bytes
                (command("c-2", CommandName.UNLOCK, -1), "c-2"),  # already expired
            ):
                client.publish(MqttTopic.command(car.vin, command_id), payload, qos=1)
            cell = cell_of(car.state.latitude, car.state.longitude)
            await asyncio.sleep(2)  # the car has subscribed to the cells around it
            warning = Hazard(
                hazard_id="h-ice-1",
                state=HazardState.CONFIRMED,
                group=HazardGroup.TRACTION,
                cause=6,
                sub_cause=0,
                cell=cell,
                latitude=car.state.latitude,
                longitude=car.state.longitude,
                reporters=3,
                first_ts=now_ms(),
                confirmed_ts=now_ms(),
                ts=now_ms(),
                expires_at=now_ms() + 600_000,
            )
            client.publish(MqttTopic.geo_warning(cell, "h-ice-1"), encode(warning), qos=1)
            messages = await asyncio.to_thread(inbox.wait_for, 4, 10)
            answers = [msgspec.json.decode(m.payload, type=CommandResponse) for m in messages]
        await run
        return answers

    answers = asyncio.run(scenario())
    statuses = [(a.command_id, a.status) for a in answers]
    assert statuses == [
        ("c-1", ResponseStatus.ACCEPTED),
        ("c-1", ResponseStatus.SUCCEEDED),
        ("c-1", ResponseStatus.SUCCEEDED),  # answered again from memory
        ("c-2", ResponseStatus.REJECTED),
    ]
    assert car.executor.executed == 1
    assert car.executor.replays == 1
    assert car.state.doors_locked is True  # the expired unlock never ran
    assert car.stats.warnings >= 1
    assert [h.cause for h in car.warnings.held.values()] == [6]


def test_backlog_after_a_tunnel_is_flushed_in_order_and_marked_resent(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    # no gateway here to confirm: the PUBACK is the end of the road
    agent = new_agent(stack_config, "TNLZZZ1JZXW000001", confirm=False)
    state = agent.state

    async def drive() -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(agent.run(stop))
        while not agent.connected:
            await asyncio.sleep(0.05)
        for tick in range(40):  # 10 s, one sample every 0.25 s
            if tick == 8:
                agent.drop_connection(3.0)  # into the tunnel for 3 s
            agent.sample_telemetry()
            await asyncio.sleep(0.25)
        await asyncio.sleep(2)
        stop.set()
        await run

    with mqtt_client(stack_config, subscribe=MqttTopic.telemetry(state.vin)) as (_client, inbox):
        asyncio.run(drive())
        messages = inbox.wait_for(40, timeout=10)
    received = [msgspec.json.decode(m.payload, type=Telemetry) for m in messages]
    seqs = [t.seq for t in received]
    assert sorted(set(seqs)) == list(range(1, 41))  # nothing lost
    assert seqs == sorted(seqs)  # in order, the backlog before what came after it
    resent = [t.seq for t in received if t.resent]
    assert 8 <= len(resent) <= 16  # about 3 s of samples were taken offline
    assert resent == list(range(resent[0], resent[0] + len(resent)))  # one contiguous stretch


def test_simulate_check_looks_every_message_up_in_kafka(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    """`fleetlink simulate --check`: 0 missing through a running gateway (exit 0); with the
    gateway gone nothing reaches Kafka and the check says so (exit 1)."""
    config, _settings, _topics = gateway_config(tmp_path, stack_config)
    env = dict(os.environ)

    def simulate(prefix: str) -> tuple[int, dict[str, int]]:
        result = run_cli(
            *("--config", str(config), "simulate", "-n", "5", "--interval", "0.5"),
            *("--duration", "2", "--mode", "kinematic", "--quiet", "--check"),
            *("--vin-prefix", prefix, "--confirm-timeout", "2"),
            env=env,
            timeout=120,
        )
        check = result.stdout[result.stdout.rindex('"expected"') :]  # the last JSON printed
        gaps = {key: int(value) for key, value in re.findall(r'"(\w+)": (\d+)', check)}
        return result.returncode, gaps

    with supervised_gateway(config, workers=1):
        code, gaps = simulate("CLK")
    assert code == 0, gaps
    assert gaps["missing"] == 0
    assert gaps["expected"] >= 5 * 3  # about 4 samples per car in 2 s
    code, gaps = simulate("CLN")  # the gateway is gone: cars keep it all, Kafka has nothing
    assert code == 1
    assert gaps["missing"] == gaps["expected"] > 0
