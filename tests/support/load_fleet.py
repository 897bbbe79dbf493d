"""A load fleet beside the full agent: the commands that prove its cars answer as the agent does.

The platform's commands and the ones it would never send (forged, tampered, replayed, expired,
malformed, digital keys), each car's outcomes and the state they leave.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import Command, CommandName, CommandResponse
from fleetlink.contracts.topics import MqttTopic
from fleetlink.security.signing import Signer
from fleetlink.settings import Settings
from fleetlink.sim.load_fleet import LoadFleet
from fleetlink.vehicle.state import VehicleState
from tests.support.commands import FINAL, Platform, signed_grant
from tests.support.polling import eventually
from tests.support.stack import (
    TEST_GATEWAY,
    fleet_tls,
    mqtt_client,
    platform_signer,
    vehicle_verifier,
)


@contextmanager
def load_fleet(settings: Settings, vins: list[str]) -> Iterator[LoadFleet]:
    """A load fleet running on a loop of its own thread until the block ends."""
    host, port = settings.mqtt_address()
    fleet = LoadFleet(
        host=host,
        port=port,
        vins=vins,
        tls_for=fleet_tls(settings),
        verifier=vehicle_verifier(settings),
        interval_s=30.0,
    )
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    runner = threading.Thread(target=loop.run_until_complete, args=(fleet.run(stop),))
    runner.start()
    try:
        yield fleet
    finally:
        loop.call_soon_threadsafe(stop.set)
        runner.join(15)
        assert not runner.is_alive(), "the load fleet did not stop"
        loop.close()


def outcome(platform: Platform, command_id: str) -> tuple[str, str | None]:
    done = platform.wait_state(command_id, FINAL)
    return done["state"], done["reason"]


def through_the_platform(platform: Platform, vin: str) -> list[tuple[str, str | None]]:
    orders: list[dict[str, Any]] = [
        {"name": "flash"},
        {"name": "unlock"},
        {"name": "trunk.open"},  # the car is driving: it refuses
        {"name": "climate", "params": {"target_c": 23.5}},
        {"name": "charging.start"},
        {"name": "config.change", "params": {"units": "metric"}},
        {"name": "lock"},
    ]
    ids = []
    for body in orders:
        reply = platform.post(vin, **body)
        assert reply.status_code == 202, reply.text
        ids.append(reply.json()["command_id"])
    return [outcome(platform, command_id) for command_id in ids]


def order(
    vin: str, command_id: str, name: CommandName = CommandName.FLASH, **extra: Any
) -> Command:
    now = time.time_ns() // 1_000_000
    fields: dict[str, Any] = {"issued_at": now, "expires_at": now + 60_000, "vin": vin}
    return Command(command_id=command_id, name=name, **fields | extra)


def key(vin: str, signer: Signer, grant_id: str, **changes: Any) -> tuple[str, str]:
    grant, token = signed_grant(signer, vin, grant_id=grant_id, **changes)
    return grant.grant_id, token


def straight_over_mqtt(
    settings: Settings, vin: str, elsewhere: str
) -> dict[str, tuple[str, str | None]]:
    """Commands the platform would never send, as a compromised bridge might: each car's final
    answer per command id (``accepted`` is not final)."""
    signer = platform_signer(settings)
    rogue = platform_signer.__annotations__ and None  # placeholder, replaced below

    rogue = Signer(Ed25519PrivateKey.generate())
    honest = signer.sign_command(order(vin, "honest", CommandName.UNLOCK))
    once_id, once = key(vin, signer, "once")
    stale_id, stale = key(vin, signer, "stale", not_after=time.time_ns() // 1_000_000 - 60_000)
    forged_id, forged_key = key(vin, rogue, "forged-key")

    def with_key(command_id: str, grant_id: str, token: str) -> Command:
        trunk = order(vin, command_id, CommandName.TRUNK_OPEN, grant=token, grant_id=grant_id)
        return signer.sign_command(trunk)

    sends: list[tuple[str, bytes]] = [
        ("honest", encode(honest)),
        ("unsigned", encode(order(vin, "unsigned", CommandName.UNLOCK))),
        (
            "tampered",
            encode(
                msgspec.structs.replace(
                    signer.sign_command(order(vin, "tampered")), name=CommandName.UNLOCK
                )
            ),
        ),
        ("forged", encode(rogue.sign_command(order(vin, "forged")))),
        ("expired", encode(signer.sign_command(order(vin, "expired", expires_at=1)))),
        ("elsewhere", encode(signer.sign_command(order(elsewhere, "elsewhere")))),
        ("malformed", b'{"command_id": "malformed", "name": '),
        ("unknown-name", b'{"command_id":"unknown-name","name":"self-destruct"}'),
        ("key-first", encode(with_key("key-first", once_id, once))),
        ("key-again", encode(with_key("key-again", once_id, once))),
        ("key-stale", encode(with_key("key-stale", stale_id, stale))),
        ("key-forged", encode(with_key("key-forged", forged_id, forged_key))),
        ("honest", encode(honest)),  # the same signed bytes again: answered from memory
    ]
    topic = f"vehicles/{vin}/command-responses/+"
    with mqtt_client(settings, TEST_GATEWAY, subscribe=topic) as (bridge, inbox):
        for command_id, payload in sends:
            bridge.publish(MqttTopic.command(vin, command_id), payload, qos=1).wait_for_publish(5)
        answers: dict[str, tuple[str, str | None]] = {}
        final: list[tuple[str, str | None]] = []

        def all_answered() -> bool:
            answers.clear()
            final.clear()
            for message in list(inbox.messages):
                reply = msgspec.json.decode(message.payload, type=CommandResponse)
                if reply.status != "accepted":
                    answers[reply.command_id] = (reply.status.value, reply.reason)
                    final.append(answers[reply.command_id])
            return len(final) == len(sends)

        eventually(all_answered, 20, f"{len(sends)} final answers from {vin}")
    return answers


def state_of(state: VehicleState) -> dict[str, Any]:
    seen = ("doors_locked", "trunk_open", "trunk_locked", "climate_target_c", "charging")
    return {name: getattr(state, name) for name in seen} | {
        "config": dict(state.config),
        "grant_uses": dict(state.grant_uses),
    }
