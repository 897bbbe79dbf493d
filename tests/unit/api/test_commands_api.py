"""The commands API without a broker: the real app on in-memory Kafka, through ASGI."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetlink.contracts import headers as h
from fleetlink.contracts.models import AuditEvent, Command
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.tokens import issue_token
from fleetlink.security.users import UserRole
from tests.support.api import CAR, NEVER_SEEN, OTHER, run, running_api
from tests.support.stack import user_token


def test_an_admins_command_is_written_signed_and_answered_202(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            reply = await api.client.post(
                f"/v1/vehicles/{CAR}/commands", json={"name": "flash"}, headers=api.admin
            )
            assert reply.status_code == 202, reply.text
            body = reply.json()
            assert body["state"] == "queued"
            assert reply.headers["location"] == f"/v1/commands/{body['command_id']}"
            topic = api.settings.topic_map()[KafkaTopic.COMMANDS]
            [record] = api.kafka.records(topic)
            assert record.key() == CAR.encode()
            assert (h.RECORD_KIND, b"command") in record.headers()
            command = msgspec.json.decode(record.value() or b"", type=Command)
            assert command.command_id == body["command_id"]
            assert command.sig  # signed with the platform key
            looked_up = await api.client.get(
                f"/v1/commands/{body['command_id']}", headers=api.owner
            )
            assert looked_up.status_code == 200
            assert looked_up.json()["actor"] == "ada"

    run(scenario())


def test_an_idempotency_key_replays_the_first_command_and_refuses_another(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            path = f"/v1/vehicles/{CAR}/commands"
            first = await api.client.post(
                path, json={"name": "flash", "idempotency_key": "k1"}, headers=api.owner
            )
            again = await api.client.post(
                path, json={"name": "flash", "idempotency_key": "k1"}, headers=api.owner
            )
            other = await api.client.post(
                path, json={"name": "honk", "idempotency_key": "k1"}, headers=api.owner
            )
            assert first.status_code == 202
            assert again.status_code == 200
            assert again.headers["idempotent-replayed"] == "1"
            assert again.json()["command_id"] == first.json()["command_id"]
            assert other.status_code == 409
            assert other.json()["error"] == "idempotency-conflict"
            assert len(api.records(KafkaTopic.COMMANDS)) == 1  # one command, however often asked

    run(scenario())


@pytest.mark.parametrize(
    ("who", "vin", "body", "status", "error"),
    [
        ("viewer", CAR, {"name": "flash"}, 403, "forbidden"),
        ("owner", OTHER, {"name": "flash"}, 403, "forbidden"),
        ("admin", NEVER_SEEN, {"name": "flash"}, 404, "unknown-vehicle"),
        ("admin", "NOT-A-VIN", {"name": "flash"}, 422, "invalid-vin"),
        ("admin", CAR, {"name": "teleport"}, 422, "unknown-command"),
        ("admin", CAR, {"name": "flash", "ttl_s": 10**7}, 422, "invalid-ttl"),
        ("admin", CAR, {"name": "flash", "ttl_s": "soon"}, 422, "invalid-request"),
        ("admin", CAR, {"name": "flash", "ttl": 60}, 422, "invalid-request"),  # a typo
        ("admin", CAR, {"name": "climate", "params": {"target_c": 80}}, 422, "invalid-params"),
        ("admin", CAR, {"name": "honk", "params": {"loud": True}}, 422, "invalid-params"),
        ("admin", CAR, {"name": "grant.revoke"}, 422, "unknown-command"),
        ("admin", CAR, {"name": "flash", "grant_id": "no-such-key"}, 403, "key-unknown"),
        ("service", CAR, {"name": "flash"}, 403, "forbidden"),  # a service needs a key
        (None, CAR, {"name": "flash"}, 401, "unauthenticated"),
    ],
)
def test_every_refusal_has_its_status_and_writes_no_command(
    tmp_path: Path, who: str | None, vin: str, body: dict[str, object], status: int, error: str
) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            if who == "service":
                auth = user_token(api.settings, "courier-co", UserRole.SERVICE)
            else:
                auth = {} if who is None else getattr(api, who)
            reply = await api.client.post(f"/v1/vehicles/{vin}/commands", json=body, headers=auth)
            assert reply.status_code == status, reply.text
            assert reply.json()["error"] == error
            assert api.records(KafkaTopic.COMMANDS) == []
            audited = [
                msgspec.json.decode(v or b"", type=AuditEvent)
                for v in api.records(KafkaTopic.AUDIT)
            ]
            # who was refused what is part of who-did-what
            assert bool(audited) == (status == 403)

    run(scenario())


SURROGATE = b'{"name": "honk", "idempotency_key": "\xed\xa0\x80"}'


@pytest.mark.parametrize(
    ("raw", "status", "error"),
    [
        (b"{", 400, "not-json"),
        (b"\xff\xfe{", 400, "invalid-utf8"),
        (SURROGATE, 400, "invalid-utf8"),  # it would fail only later, in Kafka
        (b"{" + b" " * 200_000 + b"}", 413, "too-large"),
    ],
)
def test_a_body_that_cannot_be_read_is_answered_and_never_written(
    tmp_path: Path, raw: bytes, status: int, error: str
) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            reply = await api.client.post(
                f"/v1/vehicles/{CAR}/commands",
                content=raw,
                headers={**api.admin, "content-type": "application/json"},
            )
            assert reply.status_code == status, reply.text
            assert reply.json()["error"] == error
            assert api.records(KafkaTopic.COMMANDS) == []

    run(scenario())


def test_only_a_valid_token_of_an_enabled_user_gets_in(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            key = signing_key(api.settings, SigningPurpose.API_TOKENS)
            expired = issue_token(key, "olga", "owner", ttl_s=-300)
            forged = issue_token(Ed25519PrivateKey.generate(), "olga", "owner", ttl_s=300)
            unknown = issue_token(key, "nobody", "fleet-admin", ttl_s=300)
            cases = [
                ({"Authorization": "Basic YWxpY2U6eA=="}, "unauthenticated"),
                ({"Authorization": f"Bearer {expired}"}, "invalid-token"),
                ({"Authorization": f"Bearer {forged}"}, "invalid-token"),
                ({"Authorization": f"Bearer {unknown}"}, "unknown-user"),
            ]
            for auth, error in cases:
                reply = await api.client.get("/v1/vehicles", headers=auth)
                assert (reply.status_code, reply.json()["error"]) == (401, error), auth
            challenged = await api.client.get("/v1/vehicles")
            assert challenged.headers["www-authenticate"] == "Bearer"

    run(scenario())


def test_a_flooding_client_is_limited_alone(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path, client_rate_per_s=1, client_burst=20) as api:
            statuses = [
                (await api.client.get("/v1/vehicles", headers=api.viewer)).status_code
                for _ in range(25)
            ]
            assert statuses == [200] * 20 + [429] * 5
            limited = await api.client.get("/v1/vehicles", headers=api.viewer)
            assert limited.json()["error"] == "rate-limited"
            assert int(limited.headers["retry-after"]) >= 1
            other = await api.client.get("/v1/vehicles", headers=api.admin)
            assert other.status_code == 200  # another client is served meanwhile

    run(scenario())


def test_kafka_away_means_503_with_retry_after(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            api.kafka.available = False
            reply = await api.client.post(
                f"/v1/vehicles/{CAR}/commands", json={"name": "flash"}, headers=api.admin
            )
            assert reply.status_code == 503
            assert reply.json()["error"] == "kafka-unavailable"
            assert reply.headers["retry-after"] == "1"
            ready = await api.client.get("/readyz")
            assert ready.status_code == 503

    run(scenario())


def test_reads_show_each_role_what_it_may_see(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            mine = await api.client.get("/v1/vehicles", headers=api.owner)
            everyone = await api.client.get("/v1/vehicles", headers=api.viewer)
            assert [v["vin"] for v in mine.json()["vehicles"]] == [CAR]
            assert [v["vin"] for v in everyone.json()["vehicles"]] == [CAR, OTHER]
            foreign = await api.client.get(f"/v1/vehicles/{OTHER}", headers=api.owner)
            assert foreign.status_code == 403
            summary = await api.client.get("/v1/commands/summary", headers=api.owner)
            assert summary.status_code == 403
            summary = await api.client.get("/v1/commands/summary", headers=api.viewer)
            assert summary.status_code == 200
            unknown = await api.client.get(f"/v1/commands/{uuid.uuid4()}", headers=api.admin)
            assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown-command-id")
            malformed = await api.client.get("/v1/commands/-nope", headers=api.admin)
            assert (malformed.status_code, malformed.json()["error"]) == (
                422,
                "invalid-command-id",
            )
            bad_key = await api.client.post("/v1/grants/no%20such/revoke", headers=api.owner)
            assert (bad_key.status_code, bad_key.json()["error"]) == (422, "invalid-grant-id")

    run(scenario())
