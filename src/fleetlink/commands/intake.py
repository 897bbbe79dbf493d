"""The decision behind ``POST /v1/vehicles/{vin}/commands``, pure: who asks, with which key, for
which command, how long it may live, and whether it was asked before.

``decide`` returns an ``Accepted`` command (still unsigned, with its first lifecycle step and audit
line), a ``Replayed`` one, or a ``Refused`` with its HTTP status and error. The route does the
I/O: it signs, writes to Kafka, audits, answers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from fleetlink.commands.lifecycle import CommandRecord
from fleetlink.contracts.catalogue import InvalidParamsError, ttl_limits, validate_params
from fleetlink.contracts.models import AuditEvent, Command, CommandName, GrantRecord, Transition
from fleetlink.contracts.vin import is_valid_vin
from fleetlink.security.access import Principal
from fleetlink.security.grants import grant_refusal

# Command ids derived from idempotency keys live in their own UUID namespace.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c3f0e-4f0b-5b9e-9a53-6c0e2b7d1a42")


class Known(Protocol):
    """What the intake needs to know of the fleet (the API's read model)."""

    def grant(self, grant_id: str) -> GrantRecord | None: ...
    def knows_vehicle(self, vin: str) -> bool: ...
    def latest(self, command_id: str) -> Transition | None: ...
    def key_uses(self, grant_id: str) -> int: ...


@dataclass(frozen=True)
class Request:
    """A command as a client asks for it."""

    vin: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    ttl_s: int | None = None
    idempotency_key: str | None = None
    grant_id: str | None = None


@dataclass(frozen=True)
class Refused:
    """No command: the HTTP status and error to answer; ``audited`` refusals enter the audit
    trail (who was refused what is part of who-did-what)."""

    status: int
    error: str
    detail: str
    audited: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def audit_event(self, vin: str, actor: str, now_ms: int) -> AuditEvent:
        detail = f"{self.error}: {self.detail}"
        return AuditEvent(ts=now_ms, vin=vin, actor=actor, action="command.refused", detail=detail)


@dataclass(frozen=True)
class Replayed:
    """The same idempotency key and the same command again: the first one stands."""

    command_id: str


@dataclass(frozen=True)
class Accepted:
    """A new command to sign and write (with the digital key it travels under, if any)."""

    command: Command
    idempotency_key: str | None = None

    @property
    def audited(self) -> bool:
        """Every use of a digital key is audited."""
        return self.command.grant_id is not None

    def audit_event(self) -> AuditEvent:
        command = self.command
        return AuditEvent(
            ts=command.issued_at,
            vin=command.vin or "",
            actor=command.actor or "",
            action="command.requested",
            grant_id=command.grant_id,
            command_id=command.command_id,
            detail=command.name.value,
        )

    def queued(self) -> Transition:
        """The command's first lifecycle step, as the tracker will write it."""
        command = self.command
        _, step = CommandRecord.new(
            command_id=command.command_id,
            vin=command.vin or "",
            name=command.name.value,
            params=command.params,
            created_at=command.issued_at,
            expires_at=command.expires_at,
            idempotency_key=self.idempotency_key,
            actor=command.actor,
            grant_id=command.grant_id,
        )
        return step


Decision = Accepted | Replayed | Refused


# commands only the platform sends, each as the consequence of something else
PLATFORM_ONLY = {
    CommandName.GRANT_REVOKE: "revoke a key with POST /v1/grants/{grant_id}/revoke",
    CommandName.FEATURE_ACTIVATE: "buy a feature with POST /v1/vehicles/{vin}/purchases",
    CommandName.FEATURE_DEACTIVATE: "a feature ends with its entitlement (refund, expiry)",
    CommandName.SOFTWARE_UPDATE: "roll software out with POST /v1/campaigns",
    CommandName.SOFTWARE_CANCEL: "stop a campaign with POST /v1/campaigns/{id}/abort",
}


def command_id_for(vin: str, idempotency_key: str | None) -> str | None:
    """The command id an idempotency key stands for (per car); None without a key."""
    if idempotency_key is None:
        return None
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{vin}/{idempotency_key}"))


def decide(request: Request, caller: Principal, known: Known, now_ms: int) -> Decision:
    """Every rule of a command request, in the order a client would want to hear them."""
    vin = request.vin
    if not is_valid_vin(vin):
        return Refused(422, "invalid-vin", f"{vin!r} is not a VIN (17 characters, no I, O, Q)")
    record = known.grant(request.grant_id) if request.grant_id is not None else None
    if request.grant_id is not None and record is None:
        return Refused(403, "key-unknown", f"no key {request.grant_id}", audited=True)
    refusal = caller.command_refusal(vin, with_grant=record is not None)
    if refusal is not None:
        return Refused(403, "forbidden", refusal, audited=True)
    if not known.knows_vehicle(vin):
        return Refused(404, "unknown-vehicle", f"vehicle {vin} has never connected")
    chosen = _command_of(request)
    if isinstance(chosen, Refused):
        return chosen
    name, params, ttl_s = chosen
    command_id = command_id_for(vin, request.idempotency_key)
    if command_id is not None and (first := known.latest(command_id)) is not None:
        if (first.name, first.params or {}) != (name.value, params):
            return Refused(
                409,
                "idempotency-conflict",
                "this idempotency key was used for a different command",
                extra={"command_id": command_id},
            )
        return Replayed(command_id)
    expires_at = now_ms + ttl_s * 1000
    token = grant_id = None
    if record is not None:
        grant = record.grant
        if grant.grantee != caller.name:
            return Refused(403, "key-not-yours", "the key is another's", audited=True)
        reason = grant_refusal(
            grant,
            vin=vin,
            command=name,
            now_ms=now_ms,
            uses=known.key_uses(grant.grant_id),
            revoked=record.revoked_at is not None,
            skew_ms=0,  # the platform's clock is the reference; only cars get slack
        )
        if reason is not None:
            return Refused(403, reason, f"key {grant.grant_id}: {reason}", audited=True)
        token, grant_id = record.token, grant.grant_id
        expires_at = min(expires_at, grant.not_after)  # never valid beyond the key's window
    command = Command(
        command_id=command_id or str(uuid.uuid4()),
        name=name,
        issued_at=now_ms,
        expires_at=expires_at,
        params=params,
        vin=vin,
        actor=caller.name,
        grant=token,
        grant_id=grant_id,
    )
    return Accepted(command, request.idempotency_key)


def _command_of(request: Request) -> tuple[CommandName, dict[str, Any], int] | Refused:
    """The catalogue's verdict on name, parameters and lifetime."""
    try:
        name = CommandName(request.name)
    except ValueError:
        known = sorted(c.value for c in CommandName)
        return Refused(
            422, "unknown-command", f"no command {request.name!r}", extra={"known": known}
        )
    platform_only = PLATFORM_ONLY.get(name)
    if platform_only is not None:
        return Refused(422, "unknown-command", platform_only)
    try:
        params = validate_params(name, request.params)
    except InvalidParamsError as error:
        return Refused(422, "invalid-params", f"{name.value}: {error}")
    default_ttl, max_ttl = ttl_limits(name)
    ttl_s = request.ttl_s or default_ttl
    if ttl_s > max_ttl:
        return Refused(422, "invalid-ttl", f"{name.value}: ttl_s must be at most {max_ttl}")
    return name, params, ttl_s
