"""Commands from Kafka to a vehicle over the real broker, and its answer back into Kafka."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import msgspec

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.commands.lifecycle import TERMINAL
from fleetlink.commands.tracker import Tracker
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import (
    Command,
    CommandName,
    CommandResponse,
    CommandState,
    ResponseStatus,
    Transition,
)
from fleetlink.settings import Settings, dump_toml
from fleetlink.sim.truth import stamps_in
from fleetlink.stack import LocalStack
from tests.support.gateway import gateway_config, supervised_gateway
from tests.support.stack import new_agent, platform_signer

VIN = "DWNZZZ1JZXW000001"


def test_command_reaches_the_vehicle_once_and_the_answer_reaches_kafka(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, topics = gateway_config(tmp_path, stack_config)
    bootstrap = settings.kafka_bootstrap_servers()
    agent = new_agent(stack_config, VIN)
    now = time.time_ns() // 1_000_000
    signer = platform_signer(stack_config)
    fresh = signer.sign_command(
        Command(
            command_id="cmd-trunk",
            name=CommandName.TRUNK_OPEN,
            issued_at=now,
            expires_at=now + 60_000,
            vin=VIN,
        )
    )
    stale = signer.sign_command(
        Command(
            command_id="cmd-stale",
            name=CommandName.UNLOCK,
            issued_at=now - 9000,
            expires_at=now - 1,
            vin=VIN,
        )
    )
    producer = KafkaClients.at(bootstrap).producer()
    for command in (stale, fresh, fresh):  # the second copy: a redelivery
        producer.produce(topics.commands, key=VIN, value=encode(command))
    assert producer.flush(10) == 0

    async def drive() -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(agent.run(stop))
        deadline = time.monotonic() + 30
        while agent.stats.commands < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # the answers go out
        stop.set()
        await run

    quick = settings.tracker.model_copy(update={"response_grace_s": 1.0})
    tracker = Tracker(settings.model_copy(update={"tracker": quick}), logging.getLogger("t"))
    stop_tracker = threading.Event()
    tracking = threading.Thread(target=tracker.run, args=(stop_tracker,), daemon=True)
    tracking.start()
    try:
        with supervised_gateway(config, workers=1):
            asyncio.run(drive())
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not all(
                tracker.state_of(c) in TERMINAL for c in ("cmd-trunk", "cmd-stale")
            ):
                time.sleep(0.2)
            responses = read_topic(KafkaClients.at(bootstrap), topics.responses)
    finally:
        stop_tracker.set()
        tracking.join(15)
    status = read_topic(KafkaClients.at(bootstrap), topics.status)

    assert agent.executor.executed == 1  # the trunk opened once; the stale unlock never ran
    assert agent.state.trunk_open is True
    assert agent.state.doors_locked is True
    answers = [msgspec.json.decode(r.value(), type=CommandResponse) for r in responses]
    assert {(r.key(), a.status) for r, a in zip(responses, answers, strict=True)} == {
        (b"cmd-trunk", ResponseStatus.ACCEPTED),
        (b"cmd-trunk", ResponseStatus.SUCCEEDED),
    }
    # the answers are stamped like everything a car sends, and confirmed once in Kafka
    stamps = set(stamps_in(responses))
    assert {(vin, boot) for vin, boot, _seq in stamps} == {(VIN, agent.boot)}
    assert len(stamps) == 2
    assert agent.stats.held_at_exit == 0
    assert agent.outbox.confirmed_count >= 2
    steps = [msgspec.json.decode(r.value(), type=Transition) for r in status]
    lifecycle = {
        command_id: [t.state for t in steps if t.command_id == command_id]
        for command_id in ("cmd-trunk", "cmd-stale")
    }
    # the tracker is the only writer: each state once, in order, the redelivery changed nothing
    assert lifecycle["cmd-trunk"] == ["queued", "sent", "delivered", "succeeded"]
    assert tracker.state_of("cmd-trunk") is CommandState.SUCCEEDED
    assert lifecycle["cmd-stale"] == ["queued", "expired"]
    assert tracker.book.records["cmd-stale"].reason == "ttl"
    last = steps[-1] if steps[-1].command_id == "cmd-trunk" else None
    if last is not None:  # every status record carries the whole command
        assert last.expires_at == fresh.expires_at


def test_without_a_presence_mapping_commands_go_out_at_once(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, topics = gateway_config(tmp_path, stack_config)
    gateway = settings.gateway
    kept = [rule for rule in gateway.mappings if rule.name != "presence"]
    settings = settings.model_copy(
        update={"gateway": gateway.model_copy(update={"mappings": kept})}
    )
    config.write_text(dump_toml(settings))
    vin = "DWNZZZ1JZXW000002"
    agent = new_agent(stack_config, vin)
    now = time.time_ns() // 1_000_000
    command = platform_signer(stack_config).sign_command(
        Command(
            command_id="cmd-flash",
            name=CommandName.FLASH,
            issued_at=now,
            expires_at=now + 60_000,
            vin=vin,
        )
    )

    async def drive() -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(agent.run(stop))
        deadline = time.monotonic() + 20
        while not agent.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        producer = KafkaClients.of(settings).producer()
        producer.produce(topics.commands, key=vin, value=encode(command))
        assert producer.flush(10) == 0
        while agent.executor.executed < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await run

    with supervised_gateway(config, workers=1):  # it starts and gets ready
        asyncio.run(drive())
    assert agent.executor.executed == 1
