"""The decisions behind digital keys, pure: whether a key may be issued as asked, and what
revoking one writes (the revoked record and the signed-to-be command that tells the car).

The API routes do the I/O (sign, write to Kafka, audit, answer); the key's own rules, shared
with the car, are ``fleetlink.security.grants``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import msgspec

from fleetlink.commands.intake import Refused
from fleetlink.contracts.models import (
    AuditEvent,
    Command,
    CommandName,
    Geofence,
    Grant,
    GrantRecord,
)
from fleetlink.contracts.vin import is_valid_vin
from fleetlink.security.access import Principal
from fleetlink.security.grants import MAX_CLOCK_SKEW_MS
from fleetlink.security.users import UserRole

MAX_WINDOW_MS = 30 * 86_400_000
# revocation commands are named by the key: sending one twice is the same command
_REVOKE_NAMESPACE = uuid.NAMESPACE_URL


@dataclass(frozen=True)
class KeyRequest:
    """A key as its owner asks for it."""

    grantee: str
    vin: str
    commands: list[str]
    not_after: int | None = None
    not_before: int | None = None
    valid_for_s: int | None = None  # instead of not_after
    max_uses: int = 1
    geofence: Geofence | None = None


def issue(
    asked: KeyRequest, caller: Principal, grantee_role: UserRole | None, now_ms: int
) -> Grant | Refused:
    """The key to sign, or why not (``grantee_role`` None: no such user)."""
    if not is_valid_vin(asked.vin):
        return Refused(422, "invalid-vin", f"{asked.vin!r} is not a VIN")
    if not caller.may_grant(asked.vin):
        return Refused(403, "forbidden", f"{asked.vin} is not one of your vehicles")
    if grantee_role is not UserRole.SERVICE:
        return Refused(422, "invalid-grantee", f"{asked.grantee!r} is not a registered service")
    try:
        commands = [CommandName(name) for name in asked.commands]
    except ValueError as error:
        return Refused(422, "unknown-command", str(error))
    if CommandName.GRANT_REVOKE in commands:
        return Refused(422, "unknown-command", "grant.revoke cannot be delegated")
    not_before = asked.not_before if asked.not_before is not None else now_ms
    if (asked.not_after is None) == (asked.valid_for_s is None):
        return Refused(422, "invalid-window", "give not_after or valid_for_s (one of them)")
    if asked.valid_for_s is not None:
        not_after = not_before + asked.valid_for_s * 1000
    else:
        assert asked.not_after is not None
        not_after = asked.not_after
    if not now_ms < not_after or not not_before < not_after:
        return Refused(422, "invalid-window", "not_after must lie after now and not_before")
    if not_after - not_before > MAX_WINDOW_MS:
        return Refused(422, "invalid-window", "a key is valid for at most 30 days")
    return Grant(
        grant_id=str(uuid.uuid4()),
        vin=asked.vin,
        grantee=asked.grantee,
        commands=commands,
        not_before=not_before,
        not_after=not_after,
        max_uses=asked.max_uses,
        issued_by=caller.name,
        issued_at=now_ms,
        geofence=asked.geofence,
    )


def issued_event(grant: Grant) -> AuditEvent:
    commands = ", ".join(c.value for c in grant.commands)
    return AuditEvent(
        ts=grant.issued_at,
        vin=grant.vin,
        actor=grant.issued_by,
        action="grant.issued",
        grant_id=grant.grant_id,
        detail=f"to {grant.grantee}: {commands}, {grant.max_uses} use(s)",
    )


@dataclass(frozen=True)
class Revocation:
    """What revoking a key writes: the record, the command to the car, the audit line."""

    record: GrantRecord
    command: Command
    event: AuditEvent


def revoke(record: GrantRecord, caller: Principal, now_ms: int) -> Revocation | Refused:
    grant = record.grant
    if not caller.may_grant(grant.vin):
        return Refused(403, "forbidden", "only the car's owner or an admin revokes a key")
    revoked = msgspec.structs.replace(record, revoked_at=now_ms, revoked_by=caller.name)
    # the car must hear it while the key could still work there (its window plus clock slack)
    until = max(now_ms + 60_000, grant.not_after + MAX_CLOCK_SKEW_MS)
    command = Command(
        command_id=str(uuid.uuid5(_REVOKE_NAMESPACE, f"fleetlink:revoke:{grant.grant_id}")),
        name=CommandName.GRANT_REVOKE,
        issued_at=now_ms,
        expires_at=min(until, now_ms + MAX_WINDOW_MS),
        params={"grant_id": grant.grant_id},
        vin=grant.vin,
        actor=caller.name,
    )
    event = AuditEvent(
        ts=now_ms,
        vin=grant.vin,
        actor=caller.name,
        action="grant.revoked",
        grant_id=grant.grant_id,
        command_id=command.command_id,
    )
    return Revocation(revoked, command, event)
