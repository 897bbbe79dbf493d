"""Delegated digital keys over HTTP: an owner grants, lists and revokes; the audit trail.

A key is signed by the platform (Ed25519) and travels with every command sent under it, so the
car checks it offline. Revoking writes the revocation to ``fleet.grants`` (the API refuses the
key at once) and sends the car a signed ``grant.revoke`` command, held until the car is online
or the key's window has passed.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from fleetlink.adapters.kafka.delivery import KafkaUnavailableError
from fleetlink.api.auth import ApiError, Caller
from fleetlink.api.bodies import ApiBody
from fleetlink.api.commands import commands_state
from fleetlink.api.errors import (
    AUTHENTICATED,
    WITH_BODY,
    VinPath,
    documented,
    kafka_unavailable,
)
from fleetlink.contracts.models import (
    AuditEvent,
    Command,
    CommandName,
    Geofence,
    Grant,
    GrantRecord,
)
from fleetlink.contracts.vin import is_valid_vin
from fleetlink.security.grants import MAX_CLOCK_SKEW_MS
from fleetlink.security.users import UserRole

router = APIRouter(prefix="/v1", tags=["digital keys"], responses=documented(*AUTHENTICATED))

MAX_WINDOW_MS = 30 * 86_400_000


class GeofenceRequest(ApiBody):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0, le=100_000)


class GrantRequest(ApiBody):
    grantee: str = Field(min_length=1, max_length=128, description="a user of role service")
    vin: str = Field(min_length=1, max_length=64)
    commands: list[str] = Field(min_length=1, max_length=16, description="e.g. trunk.open")
    not_before: int | None = Field(default=None, ge=0, description="epoch ms; default now")
    not_after: int = Field(ge=0, description="epoch ms; at most 30 days after not_before")
    max_uses: int = Field(default=1, ge=1, le=10_000)
    geofence: GeofenceRequest | None = None


def grant_json(record: GrantRecord, *, with_token: bool) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(record.grant)
    data["revoked_at"] = record.revoked_at
    data["revoked_by"] = record.revoked_by
    if with_token:
        data["token"] = record.token
    return data


@router.post(
    "/grants",
    status_code=201,
    summary="Grant a digital key for one of your cars",
    responses=documented(*WITH_BODY, 404, 503),
)
async def create_grant(request: Request, body: GrantRequest, caller: Caller) -> JSONResponse:
    state = commands_state(request)
    if not is_valid_vin(body.vin):
        raise ApiError(422, "invalid-vin", f"{body.vin!r} is not a VIN")
    if not caller.may_grant(body.vin):
        raise ApiError(403, "forbidden", f"{body.vin} is not one of your vehicles")
    grantee = request.app.state.guard.users.get(body.grantee)
    if grantee is None or grantee.role is not UserRole.SERVICE:
        raise ApiError(422, "invalid-grantee", f"{body.grantee!r} is not a registered service")
    try:
        commands = [CommandName(name) for name in body.commands]
    except ValueError as error:
        raise ApiError(422, "unknown-command", str(error)) from None
    if CommandName.GRANT_REVOKE in commands:
        raise ApiError(422, "unknown-command", "grant.revoke cannot be delegated")
    now = time.time_ns() // 1_000_000
    not_before = body.not_before if body.not_before is not None else now
    if not now < body.not_after or not not_before < body.not_after:
        raise ApiError(422, "invalid-window", "not_after must lie after now and not_before")
    if body.not_after - not_before > MAX_WINDOW_MS:
        raise ApiError(422, "invalid-window", "a key is valid for at most 30 days")
    fence = body.geofence
    grant = Grant(
        grant_id=str(uuid.uuid4()),
        vin=body.vin,
        grantee=body.grantee,
        commands=commands,
        not_before=not_before,
        not_after=body.not_after,
        max_uses=body.max_uses,
        issued_by=caller.name,
        issued_at=now,
        geofence=Geofence(fence.latitude, fence.longitude, fence.radius_m) if fence else None,
    )
    record = GrantRecord(grant=grant, token=state.signer.sign_grant(grant))
    try:
        await state.store_grant(record)
        await state.audit(
            AuditEvent(
                ts=now,
                vin=grant.vin,
                actor=caller.name,
                action="grant.issued",
                grant_id=grant.grant_id,
                detail=f"to {grant.grantee}: {', '.join(c.value for c in commands)}, "
                f"{grant.max_uses} use(s)",
            )
        )
    except KafkaUnavailableError as error:
        return kafka_unavailable(error, state.retry_after_s)
    return JSONResponse(
        grant_json(record, with_token=True),
        status_code=201,
        headers={"Location": f"/v1/grants/{grant.grant_id}"},
    )


def _visible(caller: Caller, record: GrantRecord) -> bool:
    grant = record.grant
    return caller.may_read_vehicle(grant.vin) or grant.grantee == caller.name


@router.get("/grants", summary="Digital keys you granted, hold, or (admins) all of them")
async def list_grants(
    request: Request, caller: Caller, vin: str | None = Query(default=None, max_length=64)
) -> JSONResponse:
    records = [
        record
        for record in commands_state(request).view.all_grants()
        if _visible(caller, record) and (vin is None or record.grant.vin == vin)
    ]
    records.sort(key=lambda record: record.grant.issued_at, reverse=True)
    return JSONResponse(
        {"grants": [grant_json(r, with_token=r.grant.grantee == caller.name) for r in records]}
    )


@router.get("/grants/{grant_id}", summary="One digital key", responses=documented(404))
async def get_grant(request: Request, grant_id: str, caller: Caller) -> JSONResponse:
    record = commands_state(request).view.grant(grant_id)
    if record is None or not _visible(caller, record):
        raise ApiError(404, "unknown-grant", f"no key {grant_id}")
    return JSONResponse(grant_json(record, with_token=record.grant.grantee == caller.name))


@router.delete(
    "/grants/{grant_id}",
    summary="Revoke a digital key (the car learns it too)",
    responses=documented(404, 409, 503),
)
async def revoke_grant(request: Request, grant_id: str, caller: Caller) -> JSONResponse:
    state = commands_state(request)
    record = state.view.grant(grant_id)
    if record is None or not _visible(caller, record):
        raise ApiError(404, "unknown-grant", f"no key {grant_id}")
    grant = record.grant
    if not caller.may_grant(grant.vin):
        raise ApiError(403, "forbidden", "only the car's owner or an admin revokes a key")
    if record.revoked_at is not None:
        return JSONResponse(grant_json(record, with_token=False))
    now = time.time_ns() // 1_000_000
    revoked = msgspec.structs.replace(record, revoked_at=now, revoked_by=caller.name)
    # the car must hear it while the key could still work there (its window plus clock slack)
    until = max(now + 60_000, grant.not_after + MAX_CLOCK_SKEW_MS)
    command = state.signer.sign_command(
        Command(
            command_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"fleetlink:revoke:{grant_id}")),
            name=CommandName.GRANT_REVOKE,
            issued_at=now,
            expires_at=min(until, now + MAX_WINDOW_MS),
            params={"grant_id": grant_id},
            vin=grant.vin,
            actor=caller.name,
        )
    )
    try:
        await state.store_grant(revoked)
        await state.send(command, grant.vin, [])
        await state.audit(
            AuditEvent(
                ts=now,
                vin=grant.vin,
                actor=caller.name,
                action="grant.revoked",
                grant_id=grant_id,
                command_id=command.command_id,
            )
        )
    except KafkaUnavailableError as error:
        return kafka_unavailable(error, state.retry_after_s)
    return JSONResponse(grant_json(revoked, with_token=False))


@router.get("/vehicles/{vin}/audit", summary="Who did what to this car: keys, commands, refusals")
async def vehicle_audit(request: Request, vin: VinPath, caller: Caller) -> JSONResponse:
    if not caller.may_read_vehicle(vin):
        raise ApiError(403, "forbidden", f"{vin} is not one of your vehicles")
    view = commands_state(request).view
    trail: list[dict[str, Any]] = [msgspec.to_builtins(e) for e in view.audit_of(vin)]
    for command in view.commands_of(vin):
        for step in command.history:
            trail.append(
                {
                    "ts": step.ts,
                    "vin": vin,
                    "actor": step.actor or "",
                    "action": f"command.{step.state.value}",
                    "grant_id": step.grant_id,
                    "command_id": step.command_id,
                    "detail": step.reason or step.name,
                }
            )
    trail.sort(key=lambda entry: entry["ts"])
    return JSONResponse({"vin": vin, "trail": trail})
