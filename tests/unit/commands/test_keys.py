"""The rules of issuing and revoking a digital key, without Kafka or HTTP."""

from __future__ import annotations

import pytest

from fleetlink.commands.intake import Refused
from fleetlink.commands.keys import MAX_WINDOW_MS, KeyRequest, issue, revoke
from fleetlink.contracts.models import CommandName, Grant, GrantRecord
from fleetlink.security.access import Principal
from fleetlink.security.grants import MAX_CLOCK_SKEW_MS
from fleetlink.security.users import UserRole

CAR = "FLKZZZ1JZXW000001"
NOW = 1_800_000_000_000
OWNER = Principal("olga", UserRole.OWNER, frozenset({CAR}))
STRANGER = Principal("sam", UserRole.OWNER, frozenset())


def asked(**changes: object) -> KeyRequest:
    fields: dict[str, object] = {
        "grantee": "parcelco",
        "vin": CAR,
        "commands": ["trunk.open"],
        "valid_for_s": 7200,
    }
    fields.update(changes)
    return KeyRequest(**fields)  # type: ignore[arg-type]


def test_a_key_for_two_hours_starts_now_and_ends_two_hours_later() -> None:
    grant = issue(asked(), OWNER, UserRole.SERVICE, NOW)
    assert isinstance(grant, Grant)
    assert (grant.not_before, grant.not_after) == (NOW, NOW + 7_200_000)
    assert (grant.issued_by, grant.issued_at, grant.max_uses) == ("olga", NOW, 1)
    assert grant.commands == [CommandName.TRUNK_OPEN]
    later = issue(asked(not_before=NOW + 60_000), OWNER, UserRole.SERVICE, NOW)
    assert isinstance(later, Grant)
    assert later.not_after == NOW + 60_000 + 7_200_000


@pytest.mark.parametrize(
    ("changes", "caller", "grantee", "status", "error"),
    [
        ({"vin": "NOT-A-VIN"}, OWNER, UserRole.SERVICE, 422, "invalid-vin"),
        ({}, STRANGER, UserRole.SERVICE, 403, "forbidden"),
        ({}, OWNER, None, 422, "invalid-grantee"),
        ({}, OWNER, UserRole.OWNER, 422, "invalid-grantee"),
        ({"commands": ["teleport"]}, OWNER, UserRole.SERVICE, 422, "unknown-command"),
        ({"commands": ["grant.revoke"]}, OWNER, UserRole.SERVICE, 422, "unknown-command"),
        ({"not_after": NOW + 1000}, OWNER, UserRole.SERVICE, 422, "invalid-window"),  # both
        ({"valid_for_s": None}, OWNER, UserRole.SERVICE, 422, "invalid-window"),  # neither
        ({"valid_for_s": None, "not_after": NOW}, OWNER, UserRole.SERVICE, 422, "invalid-window"),
        (
            {"valid_for_s": MAX_WINDOW_MS // 1000 + 1},
            OWNER,
            UserRole.SERVICE,
            422,
            "invalid-window",
        ),
    ],
)
def test_a_key_that_breaks_a_rule_is_refused_with_its_reason(
    changes: dict[str, object],
    caller: Principal,
    grantee: UserRole | None,
    status: int,
    error: str,
) -> None:
    refused = issue(asked(**changes), caller, grantee, NOW)
    assert isinstance(refused, Refused)
    assert (refused.status, refused.error) == (status, error)


def test_revoking_tells_the_car_while_the_key_could_still_work_there() -> None:
    grant = issue(asked(), OWNER, UserRole.SERVICE, NOW)
    assert isinstance(grant, Grant)
    record = GrantRecord(grant=grant, token="t")
    revocation = revoke(record, OWNER, NOW + 1000)
    assert not isinstance(revocation, Refused)
    assert (revocation.record.revoked_at, revocation.record.revoked_by) == (NOW + 1000, "olga")
    command = revocation.command
    assert command.name is CommandName.GRANT_REVOKE
    assert command.params == {"grant_id": grant.grant_id}
    assert command.expires_at == grant.not_after + MAX_CLOCK_SKEW_MS
    again = revoke(record, OWNER, NOW + 5000)
    assert not isinstance(again, Refused)
    assert again.command.command_id == command.command_id  # one revocation command per key
    assert revocation.event.action == "grant.revoked"
    refused = revoke(record, STRANGER, NOW)
    assert isinstance(refused, Refused)
    assert refused.status == 403
