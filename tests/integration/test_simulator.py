"""Simulated vehicles against the real stack and gateway."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from fleetlink.config import Settings
from fleetlink.contracts.models import Presence, PresenceStatus
from fleetlink.kafka.reader import read_topic
from fleetlink.sim.fleet import Faults, FleetSimulation
from fleetlink.stack import LocalStack
from tests.integration.gateway_helpers import gateway_config, supervised_gateway


def latest_presence(bootstrap: str, topic: str) -> dict[str, Presence]:
    latest: dict[str, Presence] = {}
    for record in read_topic(bootstrap, topic):  # per key in offset order: the last one wins
        latest[record.key().decode()] = msgspec.json.decode(record.value(), type=Presence)
    return latest


def test_500_vehicles_for_60_s_with_50_forced_offline(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, topics = gateway_config(tmp_path, stack_config, workers=1)
    bootstrap = settings.kafka_bootstrap_servers()
    simulation = FleetSimulation(
        host="127.0.0.1",
        port=stack_config.stack.mqtt_port,
        vehicles=500,
        interval_s=2.0,
        seed=11,
        faults=Faults(offline_share=0.1, offline_at_s=20, offline_s=300),
        vin_prefix="SMT",
    )
    vins = {agent.vin for agent in simulation.agents}

    async def scenario() -> dict[str, Presence]:
        run = asyncio.create_task(simulation.run(60))
        await asyncio.sleep(45)  # 25 s after the 50 lost their link
        presence = await asyncio.to_thread(latest_presence, bootstrap, topics.presence)
        await run
        return presence

    with supervised_gateway(config, workers=1):
        presence = asyncio.run(scenario())
        telemetry = read_topic(bootstrap, topics.telemetry)

    assert {record.key().decode() for record in telemetry} == vins
    offline = set(simulation.forced_offline)
    assert len(offline) == 50
    assert set(presence) == vins
    assert {vin for vin, p in presence.items() if p.status is PresenceStatus.OFFLINE} == offline
    assert all(presence[vin].reason == "connection-lost" for vin in offline)
    print(f"{len(telemetry)} telemetry records from {len(vins)} vehicles; 50 offline, 450 online")
