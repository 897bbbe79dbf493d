"""The attack suite: each attack against the real broker, car agents and API is refused, and
nothing else is affected (the honest traffic beside it still flows)."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from fleetlink.adapters import runner
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.headers import header_value
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.mqtt.client import stop_loop
from fleetlink.contracts import headers as h
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import (
    Command,
    CommandName,
    CommandResponse,
    Grant,
    ResponseStatus,
)
from fleetlink.contracts.topics import KafkaTopic, MqttTopic
from fleetlink.ingest.routing import DlqReason
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import DevPki, Role, SigningPurpose
from fleetlink.security.sessions import CSRF_HEADER, SESSION_COOKIE, issue_login_code
from fleetlink.security.signing import Signer
from fleetlink.security.tokens import issue_token
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings, dump_toml
from fleetlink.sim.flood import FloodPlan, flood
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import free_port_block
from tests.support.commands import Garage, Platform, command_platform, signed_grant
from tests.support.gateway import gateway_config, supervised_gateway
from tests.support.polling import eventually
from tests.support.stack import (
    TEST_GATEWAY,
    flood_brokers,
    mqtt_client,
    mqtt_tls,
    platform_signer,
    run_cli,
    stack_env,
    user_token,
)

CAR_A = "SECZZZ1JZXW000001"
CAR_B = "SECZZZ1JZXW000002"
CAR_C = "SECZZZ1JZXW000003"
CAR_P = "SECZZZ1JZXW000004"  # a car with a password
CAR_D = "SECZZZ1JZXW000005"
NOW_MS = lambda: time.time_ns() // 1_000_000  # noqa: E731


def connects(
    settings: Settings,
    context: ssl.SSLContext | None,
    client_id: str,
    login: tuple[str, str] | None = None,
) -> bool:
    """Whether the broker accepts an MQTT 5 connection with this TLS (None: plain TCP); with a
    (username, password) ``login``, on the password listener."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if context is not None:
        client.tls_set_context(context)
    host, port = settings.mqtt_address()
    if login is not None:
        assert settings.stack.mqtt_password_port is not None
        port = settings.stack.mqtt_password_port
        client.username_pw_set(*login)
    answered = threading.Event()  # a CONNACK either way, or the connection closed
    accepted: list[bool] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, code: ReasonCode, *_: object) -> None:
        accepted.append(not code.is_failure)
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = lambda *_: answered.set()
    try:
        client.connect(host, port, keepalive=10)
    except (OSError, ssl.SSLError):
        return False
    client.loop_start()
    try:
        answered.wait(5)  # a refusal is told at once: no need to wait out the 5 s
        return accepted == [True]
    finally:
        client.disconnect()
        stop_loop(client)


# the broker: identities and topics ---------------------------------------------------------


def test_no_connection_without_a_certificate_of_the_ca(
    local_stack: LocalStack, stack_config: Settings, tmp_path: Path
) -> None:
    pki = DevPki(stack_config.stack.pki_dir)
    assert connects(stack_config, mqtt_tls(stack_config, CAR_A), "honest")  # the control
    anonymous = ssl.create_default_context(cafile=str(pki.ca_file))  # TLS, no client cert
    assert not connects(stack_config, anonymous, "anonymous")
    assert not connects(stack_config, None, "plain-tcp")
    rogue = DevPki(tmp_path / "rogue-ca")  # a CA of the attacker's, issuing our VIN
    rogue.init()
    rogue.issue(CAR_A, Role.VEHICLE)
    rogue_tls = ssl.create_default_context(cafile=str(pki.ca_file))
    identity = rogue.identity(CAR_A)
    rogue_tls.load_cert_chain(str(identity.cert_file), str(identity.key_file))
    assert not connects(stack_config, rogue_tls, CAR_A)


def test_a_car_cannot_speak_for_another_or_listen_to_its_commands(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    with (
        mqtt_client(stack_config, subscribe="vehicles/+/telemetry") as (_m, seen),
        mqtt_client(stack_config, CAR_B, subscribe=MqttTopic.commands_filter(CAR_B)) as (_b, b),
        mqtt_client(stack_config, CAR_A) as (car_a, a),
        mqtt_client(stack_config, TEST_GATEWAY) as (gateway, _g),
    ):
        # publish as B: refused (MQTT 5 PUBACK 0x87 "not authorized"), never delivered
        forged = car_a.publish(MqttTopic.telemetry(CAR_B), b'{"ts":1,"seq":1,"signals":{}}', 1)
        forged.wait_for_publish(10)
        own = car_a.publish(MqttTopic.telemetry(CAR_A), b'{"ts":1,"seq":2,"signals":{}}', 1)
        own.wait_for_publish(10)
        # no car may confirm deliveries, not even to itself: that is the gateway's word
        fake_confirmations = [
            car_a.publish(MqttTopic.delivered(vin), b'{"ts":1,"boot":"b","ranges":[[1,9]]}', 1)
            for vin in (CAR_A, CAR_B)
        ]
        for fake in fake_confirmations:
            fake.wait_for_publish(10)
        eventually(lambda: own.mid in a.puback, 5, "PUBACKs")
        eventually(lambda: all(f.mid in a.puback for f in fake_confirmations), 5, "PUBACKs")
        assert a.puback[forged.mid] == 0x87
        assert a.puback[own.mid] == 0x00
        assert [a.puback[f.mid] for f in fake_confirmations] == [0x87, 0x87]
        # subscribe wide: Mosquitto 2.0 grants it, then delivers only what A may read
        for wide in ("#", "vehicles/+/commands/#", MqttTopic.commands_filter(CAR_B)):
            car_a.subscribe(wide, qos=1)
        time.sleep(0.5)
        gateway.publish(MqttTopic.command(CAR_B, "for-b"), b"{}", qos=1).wait_for_publish(10)
        gateway.publish(MqttTopic.command(CAR_A, "for-a"), b"{}", qos=1).wait_for_publish(10)
        for vin in (CAR_B, CAR_A):
            gateway.publish(MqttTopic.delivered(vin), b"{}", qos=1).wait_for_publish(10)
        b.wait_for(1, 10)
        time.sleep(1)
    topics_seen = [m.topic for m in seen.messages]
    assert MqttTopic.telemetry(CAR_A) in topics_seen
    assert MqttTopic.telemetry(CAR_B) not in topics_seen
    assert {m.topic for m in a.messages} == {
        MqttTopic.command(CAR_A, "for-a"),
        MqttTopic.delivered(CAR_A),  # its own confirmations, no other car's
    }
    assert [m.topic for m in b.messages] == [MqttTopic.command(CAR_B, "for-b")]


def test_no_takeover_of_another_cars_client_id(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    with mqtt_client(stack_config, CAR_B, subscribe=MqttTopic.commands_filter(CAR_B)) as (_, b):
        thief = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=CAR_B, protocol=mqtt.MQTTv5)
        thief.tls_set_context(mqtt_tls(stack_config, CAR_A))  # A's certificate, B's client id
        thief.connect(*stack_config.mqtt_address())
        thief.loop_start()
        time.sleep(1.5)
        thief.disconnect()
        stop_loop(thief)
        with mqtt_client(stack_config, TEST_GATEWAY) as (gateway, _):
            gateway.publish(MqttTopic.command(CAR_B, "still-b"), b"{}", 1).wait_for_publish(10)
        received = b.wait_for(1, 10)
        assert b.disconnects == []  # B was never thrown off
    assert [m.topic for m in received] == [MqttTopic.command(CAR_B, "still-b")]


@pytest.mark.parametrize("wildcard", ["#", "+"])
def test_a_mis_issued_wildcard_identity_reaches_nothing(
    local_stack: LocalStack, stack_config: Settings, wildcard: str
) -> None:
    """Our CA refuses to issue a CN of + or # (unit tests); should one exist anyway, the
    broker substitutes no pattern for it."""
    pki = DevPki(stack_config.stack.pki_dir)
    identity = pki.issue_unchecked(wildcard, Role.VEHICLE)
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.load_cert_chain(str(identity.cert_file), str(identity.key_file))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="x", protocol=mqtt.MQTTv5)
    client.tls_set_context(context)
    received: list[str] = []
    acks: dict[int, int] = {}
    client.on_message = lambda _c, _u, m: received.append(m.topic)
    client.on_publish = lambda _c, _u, mid, code, _p: acks.__setitem__(mid, code.value)
    client.connect(*stack_config.mqtt_address())
    client.loop_start()
    try:
        time.sleep(0.5)
        client.subscribe("#", qos=1)
        info = client.publish(MqttTopic.telemetry(CAR_A), b'{"ts":1,"seq":1,"signals":{}}', 1)
        info.wait_for_publish(10)
        with mqtt_client(stack_config, TEST_GATEWAY) as (gateway, _):
            gateway.publish(MqttTopic.command(CAR_A, "x"), b"{}", 1).wait_for_publish(10)
            gateway.publish("geo/881f1d4a5ffffff/warnings/h1", b"{}", 1).wait_for_publish(10)
        time.sleep(1)
        assert acks[info.mid] == 0x87
        assert received == []
    finally:
        client.disconnect()
        stop_loop(client)


def test_an_oversized_packet_costs_only_its_sender_the_connection(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    limit = stack_config.stack.mqtt_max_packet_bytes
    with (
        mqtt_client(stack_config, subscribe="vehicles/+/telemetry") as (_m, seen),
        mqtt_client(stack_config, CAR_B) as (honest, _),
        mqtt_client(stack_config, CAR_A) as (big, a),
    ):
        big.publish(MqttTopic.telemetry(CAR_A), b"x" * (limit + 1), qos=1)
        eventually(lambda: a.disconnects, 10, "the broker closing the oversized sender")
        honest.publish(MqttTopic.telemetry(CAR_B), b"fine", qos=1).wait_for_publish(10)
        messages = seen.wait_for(1, 10)
    assert [(m.topic, m.payload) for m in messages] == [(MqttTopic.telemetry(CAR_B), b"fine")]


def test_a_revoked_car_is_thrown_off_at_once_and_a_new_unit_gets_back_in(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    """A stolen telematics unit: when the CLI returns, its session is over, its certificate no
    longer connects, the other cars are untouched, and the car's new unit works."""
    stolen = CAR_C
    stolen_tls = mqtt_tls(stack_config, stolen)  # what the thief keeps
    env = {**os.environ, **stack_env(stack_config)}
    with (
        mqtt_client(stack_config, subscribe="vehicles/+/telemetry") as (_m, seen),
        mqtt_client(stack_config, CAR_B, subscribe=MqttTopic.commands_filter(CAR_B)) as (car_b, b),
        mqtt_client(stack_config, stolen, subscribe=MqttTopic.commands_filter(stolen)) as (
            thief,
            t,
        ),
        mqtt_client(stack_config, TEST_GATEWAY) as (gateway, _g),
    ):
        revoked = run_cli("vehicles", "revoke", stolen, env=env)
        assert revoked.returncode == 0, revoked.stderr
        assert f"{stolen}: certificate" in revoked.stdout
        eventually(lambda: t.disconnects, 5, "the revoked car's session to end")

        thief.publish(MqttTopic.telemetry(stolen), b'{"ts":1,"seq":1,"signals":{}}', 1)
        car_b.publish(MqttTopic.telemetry(CAR_B), b'{"ts":1,"seq":1,"signals":{}}', 1)
        gateway.publish(MqttTopic.command(stolen, "after"), b"{}", qos=1).wait_for_publish(10)
        gateway.publish(MqttTopic.command(CAR_B, "for-b"), b"{}", qos=1).wait_for_publish(10)
        b.wait_for(1, 10)
        seen.wait_for(1, 10)
        time.sleep(2)  # paho keeps trying to reconnect with the revoked certificate
        assert b.disconnects == []  # the neighbour kept its session
    assert t.messages == []
    assert [m.topic for m in b.messages] == [MqttTopic.command(CAR_B, "for-b")]
    assert [m.topic for m in seen.messages] == [MqttTopic.telemetry(CAR_B)]
    assert not connects(stack_config, stolen_tls, stolen)  # the CRL refuses the handshake

    listed = run_cli("vehicles", "list", env=env)
    assert f"{stolen} (revoked)" in listed.stdout
    again = run_cli("vehicles", "revoke", stolen, env=env)  # nothing left to revoke
    assert again.returncode != 0
    assert f"no MQTT identity {stolen!r}" in again.stderr
    assert "Traceback" not in again.stderr

    local_stack.access.add_vehicles([stolen])  # the car's new unit
    assert connects(stack_config, mqtt_tls(stack_config, stolen), stolen)
    assert not connects(stack_config, stolen_tls, stolen)  # the old one stays out


def test_a_revoked_session_left_open_may_do_nothing(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    """Where the platform cannot end the session itself (``evict=False``; another broker), the
    generated ACL still denies the revoked name every topic, at once."""
    stolen = CAR_D
    with (
        mqtt_client(stack_config, subscribe="vehicles/+/telemetry") as (_m, seen),
        mqtt_client(stack_config, stolen, subscribe=MqttTopic.commands_filter(stolen)) as (
            thief,
            t,
        ),
        mqtt_client(stack_config, TEST_GATEWAY) as (gateway, _g),
    ):
        local_stack.access.revoke([stolen], evict=False)
        forged = thief.publish(MqttTopic.telemetry(stolen), b'{"ts":1,"seq":1,"signals":{}}', 1)
        forged.wait_for_publish(10)
        gateway.publish(MqttTopic.command(stolen, "after"), b"{}", qos=1).wait_for_publish(10)
        eventually(lambda: forged.mid in t.puback, 5, "the PUBACK to the revoked car")
        time.sleep(1)
        assert t.disconnects == []  # still connected: the ACL alone holds it
    assert t.puback[forged.mid] == 0x87
    assert t.messages == []
    assert seen.messages == []
    local_stack.access.add_vehicles([stolen])


def test_a_car_with_a_password_is_held_to_its_own_topics(
    local_stack: LocalStack, stack_config: Settings
) -> None:
    """The alternative to a certificate: username = VIN, a generated password, server-side TLS."""
    vin = CAR_P
    password = local_stack.access.add_password_vehicles([vin])[vin]
    server_only = ssl.create_default_context(cafile=str(DevPki(stack_config.stack.pki_dir).ca_file))
    assert not connects(stack_config, server_only, vin, login=(vin, password + "x"))
    assert not connects(stack_config, server_only, "a", login=(CAR_A, password))  # not its VIN
    assert not connects(stack_config, None, vin, login=(vin, password))  # no plain TCP
    assert not connects(stack_config, server_only, vin)  # no password on the certificate port
    with (
        mqtt_client(stack_config, subscribe="vehicles/+/telemetry") as (_m, seen),
        mqtt_client(stack_config, CAR_B, subscribe=MqttTopic.commands_filter(CAR_B)) as (_b, b),
        mqtt_client(
            stack_config,
            vin,
            password=password,
            client_id=CAR_B,  # asks for B's session: the broker names it by its username
            subscribe="#",
        ) as (car, mine),
        mqtt_client(stack_config, TEST_GATEWAY) as (gateway, _g),
    ):
        forged = car.publish(MqttTopic.telemetry(CAR_A), b'{"ts":1,"seq":1,"signals":{}}', 1)
        own = car.publish(MqttTopic.telemetry(vin), b'{"ts":1,"seq":2,"signals":{}}', 1)
        own.wait_for_publish(10)
        gateway.publish(MqttTopic.command(CAR_B, "for-b"), b"{}", qos=1).wait_for_publish(10)
        gateway.publish(MqttTopic.command(vin, "for-p"), b"{}", qos=1).wait_for_publish(10)
        eventually(lambda: own.mid in mine.puback, 5, "PUBACKs")
        mine.wait_for(1, 10)
        b.wait_for(1, 10)
        seen.wait_for(1, 10)
        time.sleep(1)
        assert b.disconnects == []  # B kept its session
    assert (mine.puback[forged.mid], mine.puback[own.mid]) == (0x87, 0x00)
    assert [m.topic for m in mine.messages] == [MqttTopic.command(vin, "for-p")]
    assert [m.topic for m in b.messages] == [MqttTopic.command(CAR_B, "for-b")]
    assert [m.topic for m in seen.messages] == [MqttTopic.telemetry(vin)]

    local_stack.access.revoke([vin])
    assert not connects(stack_config, server_only, vin, login=(vin, password))


# the car: signatures, replays, digital keys ------------------------------------------------


@pytest.fixture
def car(local_stack: LocalStack, stack_config: Settings) -> Iterator[Any]:
    """A real agent for CAR_A; the test speaks to it as the bridge and hears its answers."""
    garage = Garage(stack_config)
    agent = garage.start(CAR_A)
    topic = f"vehicles/{CAR_A}/command-responses/+"
    with mqtt_client(stack_config, TEST_GATEWAY, subscribe=topic) as (bridge, inbox):

        def send(command: Command) -> None:
            bridge.publish(MqttTopic.command(CAR_A, command.command_id), encode(command), 1)

        def answer(command_id: str) -> CommandResponse:
            def final() -> CommandResponse | None:
                for message in reversed(list(inbox.messages)):
                    reply = msgspec.json.decode(message.payload, type=CommandResponse)
                    if reply.command_id == command_id and reply.status != "accepted":
                        return reply
                return None

            eventually(lambda: final() is not None, 10, f"an answer to {command_id}")
            result = final()
            assert result is not None
            return result

        yield agent, send, answer
    garage.close()


def order(command_id: str, name: CommandName = CommandName.FLASH, **extra: Any) -> Command:
    now = NOW_MS()
    fields: dict[str, Any] = {"issued_at": now, "expires_at": now + 60_000, "vin": CAR_A}
    fields.update(extra)
    return Command(command_id=command_id, name=name, **fields)


def test_the_car_refuses_unsigned_tampered_replayed_expired_and_misaddressed_commands(
    car: Any, stack_config: Settings
) -> None:
    agent, send, answer = car
    signer = platform_signer(stack_config)
    honest = signer.sign_command(order("honest", CommandName.UNLOCK))
    send(honest)
    assert answer("honest").status is ResponseStatus.SUCCEEDED
    executed = agent.executor.executed

    attacks = {
        "unsigned": order("unsigned", CommandName.UNLOCK),
        "tampered": msgspec.structs.replace(
            signer.sign_command(order("tampered", CommandName.FLASH)), name=CommandName.UNLOCK
        ),
        "forged": Signer(Ed25519PrivateKey.generate()).sign_command(order("forged")),
        "expired": signer.sign_command(order("expired", expires_at=NOW_MS() - 1)),
        "elsewhere": signer.sign_command(order("elsewhere", vin=CAR_B)),
        # the honest command's id again, signed anew (a different counter): a replay
        "honest": signer.sign_command(order("honest", CommandName.UNLOCK)),
    }
    reasons = {
        "unsigned": "unsigned",
        "tampered": "bad-signature",
        "forged": "unknown-key",
        "expired": "expired",
        "elsewhere": "wrong-vehicle",
        "honest": "replayed",
    }
    for command in attacks.values():
        send(command)
    time.sleep(1)
    for name, reason in reasons.items():
        if name == "honest":
            continue
        reply = answer(name)
        assert (reply.status, reply.reason) == (ResponseStatus.REJECTED, reason), name
    assert agent.executor.refused.get("replayed") == 1
    send(honest)  # the very same signed bytes again: answered from memory, not run again
    time.sleep(0.5)
    assert agent.executor.executed == executed
    assert agent.executor.replays >= 1


def key(signer: Signer, **changes: Any) -> tuple[Grant, str]:
    return signed_grant(signer, changes.pop("vin", CAR_A), **changes)


def test_the_car_checks_digital_keys_offline(car: Any, stack_config: Settings) -> None:
    """Commands signed by the platform but carrying bad keys, as a compromised app might send
    them straight to Kafka: the car is the last line and refuses each."""
    agent, send, answer = car
    signer = platform_signer(stack_config)
    rogue = Signer(Ed25519PrivateKey.generate())

    def with_key(command_id: str, grant: Grant, token: str) -> Command:
        return signer.sign_command(
            order(command_id, CommandName.TRUNK_OPEN, grant=token, grant_id=grant.grant_id)
        )

    once, once_token = key(signer, grant_id="once")
    cases = [
        ("forged", *key(rogue, grant_id="forged"), "key-unknown-signer"),
        ("expired", *key(signer, grant_id="old", not_after=NOW_MS() - 3_600_000), "key-expired"),
        ("wrong-car", *key(signer, grant_id="b", vin=CAR_B), "key-wrong-vehicle"),
        (
            "not-allowed",
            *key(signer, grant_id="n", commands=[CommandName.FLASH]),
            "key-command-not-allowed",
        ),
    ]
    for command_id, grant, token, reason in cases:
        send(with_key(command_id, grant, token))
        reply = answer(command_id)
        assert (reply.status, reply.reason) == (ResponseStatus.REJECTED, reason), command_id
    assert agent.state.trunk_open is False

    send(with_key("first-use", once, once_token))
    assert answer("first-use").status is ResponseStatus.SUCCEEDED
    send(with_key("second-use", once, once_token))
    assert answer("second-use").reason == "key-used-up"

    revocable, revocable_token = key(signer, grant_id="revocable", max_uses=5)
    revoke = signer.sign_command(
        order("revoke", CommandName.GRANT_REVOKE, params={"grant_id": "revocable"})
    )
    send(revoke)
    assert answer("revoke").status is ResponseStatus.SUCCEEDED
    send(with_key("after-revoke", revocable, revocable_token))
    assert answer("after-revoke").reason == "key-revoked"
    assert agent.state.grant_uses == {"once": 1}


# the API: tokens, roles, keys, limits ------------------------------------------------------


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, local_stack: LocalStack, stack_config: Settings
) -> Iterator[Platform]:
    with command_platform(tmp_path_factory.mktemp("security"), stack_config) as running:
        running.garage.trunk_relock_s = 2.0
        yield running


OWNER_CAR = "SECZZZ1JZXW000101"
OTHER_CAR = "SECZZZ1JZXW000102"


def test_api_refuses_the_unauthenticated_and_the_unauthorised(platform: Platform) -> None:
    settings = platform.settings
    platform.start_car(OWNER_CAR)
    platform.start_car(OTHER_CAR)
    alice = user_token(settings, "alice", UserRole.OWNER, [OWNER_CAR])
    viewer = user_token(settings, "vera", UserRole.VIEWER)
    courier = user_token(settings, "courier-co", UserRole.SERVICE)
    key_file = DevPki(settings.stack.pki_dir).signing_key(SigningPurpose.API_TOKENS)
    expired = issue_token(key_file, "alice", "owner", ttl_s=-300)
    forged = issue_token(Ed25519PrivateKey.generate(), "alice", "owner", ttl_s=300)
    path = f"/v1/vehicles/{OWNER_CAR}/commands"
    cases: list[tuple[dict[str, str], str, str, int, str]] = [
        ({}, "POST", path, 401, "unauthenticated"),
        ({"Authorization": "Basic YWxpY2U6eA=="}, "POST", path, 401, "unauthenticated"),
        ({"Authorization": f"Bearer {expired}"}, "POST", path, 401, "invalid-token"),
        ({"Authorization": f"Bearer {forged}"}, "POST", path, 401, "invalid-token"),
        (viewer, "POST", path, 403, "forbidden"),
        (courier, "POST", path, 403, "forbidden"),  # a service needs a key
        (alice, "POST", f"/v1/vehicles/{OTHER_CAR}/commands", 403, "forbidden"),
        (alice, "GET", f"/v1/vehicles/{OTHER_CAR}", 403, "forbidden"),
        (alice, "GET", "/v1/commands/summary", 403, "forbidden"),
        (courier, "POST", path, 403, "forbidden"),
    ]
    with httpx.Client(base_url=platform.api_url, timeout=15) as client:
        for headers, method, url, status, error in cases:
            body = {"name": "flash"} if method == "POST" else None
            reply = client.request(method, url, json=body, headers=headers)
            assert reply.status_code == status, (headers, url, reply.text)
            assert reply.json()["error"] == error
            if status == 401:
                assert reply.headers["www-authenticate"].startswith("Bearer")
        oversized = client.post(
            path,
            content=b"{" + b" " * 200_000 + b"}",
            headers={**alice, "content-type": "application/json"},
        )
        assert oversized.status_code == 413
        assert oversized.json()["error"] == "too-large"
        # allowed: the owner's own car, and a viewer reading
        mine = client.post(path, json={"name": "flash"}, headers=alice)
        assert mine.status_code == 202, mine.text
        assert (
            client.get(f"/v1/commands/{mine.json()['command_id']}", headers=viewer).status_code
            == 200
        )
        listed = client.get("/v1/vehicles", headers=alice).json()["vehicles"]
        assert [row["vin"] for row in listed] == [OWNER_CAR]
    done = platform.wait_state(mine.json()["command_id"], {"succeeded"})
    assert done["actor"] == "alice"


def trunk_key(now: int, max_uses: int) -> dict[str, Any]:
    """A grant request: parcelco may open OWNER_CAR's trunk for two hours."""
    return {
        "grantee": "parcelco",
        "vin": OWNER_CAR,
        "commands": ["trunk.open"],
        "not_after": now + 7_200_000,
        "max_uses": max_uses,
    }


def test_the_courier_scenario_end_to_end(platform: Platform) -> None:
    """Owner grants a one-time trunk key for two hours -> the delivery service opens the trunk
    -> the car relocks by itself -> a second use is refused (API and car) -> the audit trail
    says who did what and when; a revoked key is refused too, by the API and by the car."""
    settings = platform.settings
    car = platform.start_car(OWNER_CAR)
    alice = user_token(settings, "alice", UserRole.OWNER, [OWNER_CAR])
    courier = user_token(settings, "parcelco", UserRole.SERVICE)
    now = NOW_MS()
    with httpx.Client(base_url=platform.api_url, timeout=15) as client:
        refused = client.post(
            "/v1/grants",
            headers=courier,
            json=trunk_key(now, max_uses=1),
        )
        assert refused.status_code == 403  # a service cannot grant itself a key
        granted = client.post(
            "/v1/grants",
            headers=alice,
            json=trunk_key(now, max_uses=1),
        )
        assert granted.status_code == 201, granted.text
        grant = granted.json()
        assert grant["token"].count(".") == 2
        held = client.get("/v1/grants", headers=courier).json()["grants"]
        assert [g["grant_id"] for g in held] == [grant["grant_id"]]

        unlock = platform.post(OWNER_CAR, auth=courier, name="unlock", grant_id=grant["grant_id"])
        assert (unlock.status_code, unlock.json()["error"]) == (403, "key-command-not-allowed")
        opened = platform.post(
            OWNER_CAR, auth=courier, name="trunk.open", grant_id=grant["grant_id"]
        )
        assert opened.status_code == 202, opened.text
        done = platform.wait_state(opened.json()["command_id"], {"succeeded", "failed", "rejected"})
        assert done["state"] == "succeeded"
        assert done["actor"] == "parcelco"
        assert car.state.trunk_open is True or car.state.trunk_locked is True
        eventually(lambda: car.state.trunk_open is False and car.state.trunk_locked, 10, "relock")

        again = platform.post(
            OWNER_CAR, auth=courier, name="trunk.open", grant_id=grant["grant_id"]
        )
        assert (again.status_code, again.json()["error"]) == (403, "key-used-up")

        # the car holds the line too: the same key sent past the API, straight into Kafka
        signer = platform_signer(settings)
        sneaky = signer.sign_command(
            Command(
                command_id="sneaky-second-use",
                name=CommandName.TRUNK_OPEN,
                issued_at=NOW_MS(),
                expires_at=NOW_MS() + 60_000,
                vin=OWNER_CAR,
                actor="parcelco",
                grant=grant["token"],
                grant_id=grant["grant_id"],
            )
        )
        producer = KafkaClients.of(settings).producer()
        producer.produce(
            settings.topic_map()[KafkaTopic.COMMANDS],
            encode(sneaky),
            OWNER_CAR.encode(),
            headers=[("fl.kind", b"command")],
        )
        assert producer.flush(10) == 0
        sneaky_done = platform.wait_state("sneaky-second-use", {"rejected", "succeeded"})
        assert (sneaky_done["state"], sneaky_done["reason"]) == ("rejected", "key-used-up")

        # revocation: the API refuses at once, the car learns it
        second = client.post(
            "/v1/grants",
            headers=alice,
            json=trunk_key(now, max_uses=3),
        ).json()
        revoked = client.post(f"/v1/grants/{second['grant_id']}/revoke", headers=alice)
        assert revoked.status_code == 200
        assert revoked.json()["revoked_by"] == "alice"
        late = platform.post(
            OWNER_CAR, auth=courier, name="trunk.open", grant_id=second["grant_id"]
        )
        assert (late.status_code, late.json()["error"]) == (403, "key-revoked")
        eventually(lambda: second["grant_id"] in car.state.revoked_grants, 15, "the car told")

        trail = client.get(f"/v1/vehicles/{OWNER_CAR}/audit", headers=alice).json()["trail"]
        other_owner = user_token(settings, "bob", UserRole.OWNER, [OTHER_CAR])
        assert client.get(f"/v1/vehicles/{OWNER_CAR}/audit", headers=other_owner).status_code == 403
    actions = [(entry["actor"], entry["action"]) for entry in trail]
    assert ("alice", "grant.issued") in actions
    assert ("parcelco", "command.requested") in actions
    assert ("parcelco", "command.succeeded") in actions
    assert ("parcelco", "command.refused") in actions  # the second use, and the unlock
    assert ("alice", "grant.revoked") in actions
    assert all(entry["ts"] > 0 for entry in trail)
    assert [e["ts"] for e in trail] == sorted(e["ts"] for e in trail)


# the gateway: a flooding vehicle -----------------------------------------------------------


def test_a_flooding_vehicle_is_throttled_and_the_fleet_is_not(
    tmp_path: Path, local_stack: LocalStack, stack_config: Settings
) -> None:
    config, settings, topics = gateway_config(tmp_path, stack_config, workers=1)
    gateway = settings.gateway.model_copy(update={"vehicle_rate_per_s": 20, "vehicle_burst": 50})
    settings = settings.model_copy(update={"gateway": gateway})
    config.write_text(dump_toml(settings))
    flooder = "FLDZZZ1JZXW000001"
    fleet = [f"FLTZZZ1JZXW{n:06d}" for n in range(20)]
    brokers = flood_brokers(stack_config, 2, first=10)
    with supervised_gateway(config, workers=1):
        started = time.monotonic()
        results = flood(
            [
                FloodPlan(broker=brokers[0], vins=[flooder], messages_per_vin=3000),
                FloodPlan(broker=brokers[1], vins=fleet, messages_per_vin=30, rate_per_s=200),
            ],
            timeout=120,
        )
        elapsed = time.monotonic() - started
        # every message was acknowledged by the broker, so after Kafka's ack: all there now
        bootstrap = settings.kafka_bootstrap_servers()
        records = read_topic(KafkaClients.at(bootstrap), topics.telemetry)
        letters = read_topic(KafkaClients.at(bootstrap), topics.dlq)
    by_car: dict[str, int] = {}
    for record in records:
        by_car[record.key().decode()] = by_car.get(record.key().decode(), 0) + 1
    assert all(by_car.get(vin) == 30 for vin in fleet), by_car  # the fleet: every message
    limited = DlqReason.RATE_LIMITED.value.encode()
    throttled = [r for r in letters if header_value(r.headers(), h.DLQ_REASON) == limited]
    passed = by_car.get(flooder, 0)
    assert passed + len(throttled) == len(results[0].ids) == 3000  # nothing lost, only parked
    assert 50 <= passed <= 50 + 20 * (elapsed + 5)
    print(f"flooder: {passed} passed, {len(throttled)} dead-lettered in {elapsed:.1f} s")


# several API processes on one port -------------------------------------------------------------


def test_api_processes_on_one_port_redeem_a_code_once_and_survive_one_killed(
    platform: Platform,
) -> None:
    """``fleetlink api --processes 2``: the kernel spreads connections over both; a login code
    opens one session whichever process gets it again, a logout ends it in both, and a process
    killed with kill -9 leaves the port answering while it is restarted."""
    port = free_port_block(1)
    argv = [sys.executable, "-m", "fleetlink", "--config", str(platform.config), "api"]
    supervisor = runner.start([*argv, "--port", str(port), "--processes", "2"])
    base = f"http://127.0.0.1:{port}"

    def fresh(
        method: str, path: str, cookies: dict[str, str] | None = None, **options: Any
    ) -> httpx.Response:
        # a new connection each time: the kernel may hand it to either process
        with httpx.Client(base_url=base, timeout=10, cookies=cookies) as client:
            return client.request(method, path, **options)

    def all_ready() -> bool:
        try:
            return all(fresh("GET", "/readyz").status_code == 200 for _ in range(6))
        except httpx.TransportError:
            return False

    try:
        eventually(lambda: len(runner.child_pids(supervisor.pid)) == 2, 15, "two API processes")
        eventually(all_ready, 45, "both API processes ready")
        user_token(platform.settings, "multi-admin", UserRole.FLEET_ADMIN)
        key = signing_key(platform.settings, SigningPurpose.API_TOKENS)
        code = issue_login_code(key, "multi-admin", ttl_s=300)
        opened = fresh("POST", "/v1/session", json={"code": code})
        assert opened.status_code == 201, opened.text
        again = [fresh("POST", "/v1/session", json={"code": code}) for _ in range(6)]
        assert [(r.status_code, r.json().get("error")) for r in again] == [
            (401, "invalid-login-code")
        ] * 6
        cookie = {SESSION_COOKIE: opened.cookies[SESSION_COOKIE]}
        csrf = {CSRF_HEADER: opened.json()["csrf"]}
        assert fresh("DELETE", "/v1/session", cookies=cookie, headers=csrf).status_code == 204
        after = [fresh("GET", "/v1/session", cookies=cookie).status_code for _ in range(6)]
        assert after == [401] * 6
        victim, survivor = runner.child_pids(supervisor.pid)
        os.kill(victim, signal.SIGKILL)
        time.sleep(0.2)
        assert [fresh("GET", "/readyz").status_code for _ in range(6)] == [200] * 6

        def restarted() -> bool:
            now = runner.child_pids(supervisor.pid)
            return len(now) == 2 and victim not in now

        eventually(restarted, 15, "the killed API process restarted")
        assert survivor in runner.child_pids(supervisor.pid)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(30)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            supervisor.wait(10)
    assert runner.child_pids(supervisor.pid) == []
