"""Digital keys through the API without a broker: grant, see, use, revoke, and every refusal."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fleetlink.contracts.models import Command, CommandName, GrantRecord
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.users import UserRole
from tests.support.api import CAR, OTHER, Api, run, running_api
from tests.support.stack import user_token


def key_body(**changes: Any) -> dict[str, Any]:
    now = time.time_ns() // 1_000_000
    body = {
        "grantee": "parcelco",
        "vin": CAR,
        "commands": ["trunk.open"],
        "not_after": now + 3_600_000,
        "max_uses": 1,
    }
    return body | changes


def courier(api: Api) -> dict[str, str]:
    return user_token(api.settings, "parcelco", UserRole.SERVICE)


def test_an_owner_grants_a_key_the_courier_sees_and_uses_it_once_then_it_is_revoked(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            parcelco = courier(api)
            granted = await api.client.post("/v1/grants", json=key_body(), headers=api.owner)
            assert granted.status_code == 201, granted.text
            key = granted.json()
            assert granted.headers["location"] == f"/v1/grants/{key['grant_id']}"
            assert key["token"]  # signed: the car checks it offline
            [stored] = api.records(KafkaTopic.GRANTS)
            assert msgspec.json.decode(stored or b"", type=GrantRecord).grant.vin == CAR
            seen = await api.client.get(f"/v1/grants/{key['grant_id']}", headers=parcelco)
            assert seen.status_code == 200
            assert seen.json()["token"] == key["token"]  # the grantee holds the token
            order = {"name": "trunk.open", "grant_id": key["grant_id"]}
            used = await api.client.post(
                f"/v1/vehicles/{CAR}/commands", json=order, headers=parcelco
            )
            assert used.status_code == 202, used.text
            assert used.json()["grant_id"] == key["grant_id"]
            revoked = await api.client.post(
                f"/v1/grants/{key['grant_id']}/revoke", headers=api.owner
            )
            assert revoked.status_code == 200
            assert revoked.json()["revoked_by"] == "olga"
            refused = await api.client.post(
                f"/v1/vehicles/{CAR}/commands", json=order, headers=parcelco
            )
            assert (refused.status_code, refused.json()["error"]) == (403, "key-revoked")
            sent = [
                msgspec.json.decode(v or b"", type=Command)
                for v in api.records(KafkaTopic.COMMANDS)
            ]
            # the trunk once, and the car is told the key is gone
            assert [c.name for c in sent] == [CommandName.TRUNK_OPEN, CommandName.GRANT_REVOKE]
            trail = await api.client.get(f"/v1/vehicles/{CAR}/audit", headers=api.owner)
            actions = [event.get("action") for event in trail.json()["trail"]]
            assert {"grant.issued", "command.requested", "grant.revoked"} <= set(actions)

    run(scenario())


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({"vin": OTHER}, 403, "forbidden"),
        ({"vin": "NOT-A-VIN"}, 422, "invalid-vin"),
        ({"grantee": "nobody"}, 422, "invalid-grantee"),
        ({"commands": ["teleport"]}, 422, "unknown-command"),
        ({"commands": ["grant.revoke"]}, 422, "unknown-command"),
        ({"not_after": 1}, 422, "invalid-window"),
        ({"not_after": 2**42}, 422, "invalid-window"),
    ],
)
def test_a_key_that_breaks_a_rule_is_refused_and_nothing_is_stored(
    tmp_path: Path, changes: dict[str, Any], status: int, error: str
) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            courier(api)
            reply = await api.client.post("/v1/grants", json=key_body(**changes), headers=api.owner)
            assert reply.status_code == status, reply.text
            assert reply.json()["error"] == error
            assert api.records(KafkaTopic.GRANTS) == []

    run(scenario())


def test_another_owner_neither_sees_nor_revokes_a_key(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            courier(api)
            key = (await api.client.post("/v1/grants", json=key_body(), headers=api.owner)).json()
            stranger = user_token(api.settings, "sam", UserRole.OWNER, [OTHER])
            path = f"/v1/grants/{key['grant_id']}"
            assert (await api.client.get(path, headers=stranger)).status_code == 404
            revoke = await api.client.post(f"{path}/revoke", headers=stranger)
            assert revoke.status_code == 404
            listed = await api.client.get("/v1/grants", headers=stranger)
            assert listed.json()["grants"] == []

    run(scenario())
