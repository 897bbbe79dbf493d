"""Delegated digital keys over HTTP: an owner grants, lists and revokes; the audit trail.

A key is signed by the platform (Ed25519) and travels with every command sent under it, so the
car checks it offline. Revoking writes the revocation to ``fleet.grants`` (the API refuses the
key at once) and sends the car a signed ``grant.revoke`` command, held until the car is online
or the key's window has passed.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from fleetlink.api.auth import Caller, require_vehicle
from fleetlink.api.bodies import ApiBody, JsonInt
from fleetlink.api.commands import EXAMPLE_VIN, REQUESTABLE, commands_state
from fleetlink.api.errors import (
    AUTHENTICATED,
    WITH_BODY,
    ApiError,
    GrantIdPath,
    VinPath,
    documented,
)
from fleetlink.commands import keys
from fleetlink.commands.intake import Refused
from fleetlink.contracts.models import Geofence, GrantRecord
from fleetlink.contracts.vin import VIN_PATTERN

# a stateful client (or fuzzer) follows these from a 201 to the key it created
GRANT_LINKS = {
    name: {"operationId": operation, "parameters": {"grant_id": "$response.body#/grant_id"}}
    for name, operation in (("GetGrant", "get_grant"), ("RevokeGrant", "revoke_grant"))
}

router = APIRouter(prefix="/v1", tags=["digital keys"], responses=documented(*AUTHENTICATED))


class GeofenceRequest(ApiBody):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0, le=100_000)


class GrantRequest(ApiBody):
    model_config = ConfigDict(
        json_schema_extra={
            # the window ends at a moment or after a while: one of the two, never both
            "oneOf": [{"required": ["not_after"]}, {"required": ["valid_for_s"]}],
            "examples": [
                {
                    "grantee": "courier",
                    "vin": EXAMPLE_VIN,
                    "commands": ["trunk.open"],
                    "valid_for_s": 7200,
                }
            ],
        }
    )

    grantee: str = Field(min_length=1, max_length=128, description="a user of role service")
    vin: str = Field(
        min_length=1,
        max_length=64,
        json_schema_extra={"pattern": VIN_PATTERN, "examples": [EXAMPLE_VIN]},
    )
    commands: list[str] = Field(
        min_length=1,
        max_length=16,
        description="what the key may send",
        json_schema_extra={"items": {"type": "string", "enum": [c.value for c in REQUESTABLE]}},
    )
    not_before: JsonInt | None = Field(default=None, ge=0, description="epoch ms; default now")
    not_after: JsonInt | None = Field(
        default=None, ge=0, description="epoch ms; at most 30 days after not_before"
    )
    valid_for_s: JsonInt | None = Field(
        default=None, ge=1, le=keys.MAX_WINDOW_MS // 1000, description="or: valid this long"
    )
    max_uses: JsonInt = Field(default=1, ge=1, le=10_000)
    geofence: GeofenceRequest | None = None


def grant_json(record: GrantRecord, *, with_token: bool) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(record.grant)
    data["revoked_at"] = record.revoked_at
    data["revoked_by"] = record.revoked_by
    if with_token:
        data["token"] = record.token
    return data


def _refuse(refused: Refused) -> ApiError:
    return ApiError(refused.status, refused.error, refused.detail, **refused.extra)


@router.post(
    "/grants",
    status_code=201,
    summary="Grant a digital key for one of your cars",
    responses={
        201: {"description": "The key, signed, with its token", "links": GRANT_LINKS},
        **documented(*WITH_BODY, 503),
    },
)
async def create_grant(request: Request, body: GrantRequest, caller: Caller) -> JSONResponse:
    """The rules are ``commands.keys``'; this signs, writes to Kafka, audits and answers."""
    state = commands_state(request)
    fence = body.geofence
    asked = keys.KeyRequest(
        grantee=body.grantee,
        vin=body.vin,
        commands=body.commands,
        not_before=body.not_before,
        not_after=body.not_after,
        valid_for_s=body.valid_for_s,
        max_uses=body.max_uses,
        geofence=Geofence(fence.latitude, fence.longitude, fence.radius_m) if fence else None,
    )
    grantee = request.app.state.guard.users.get(body.grantee)
    decision = keys.issue(
        asked, caller, grantee.role if grantee else None, time.time_ns() // 1_000_000
    )
    if isinstance(decision, Refused):
        raise _refuse(decision)
    record = GrantRecord(grant=decision, token=state.signer.sign_grant(decision))
    await state.store_grant(record)
    await state.audit(keys.issued_event(decision))
    return JSONResponse(
        grant_json(record, with_token=True),
        status_code=201,
        headers={"Location": f"/v1/grants/{decision.grant_id}"},
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


def _visible_grant(request: Request, grant_id: str, caller: Caller) -> GrantRecord:
    """The key, if the caller may see it; 404 otherwise (its existence is not told)."""
    record = commands_state(request).view.grant(grant_id)
    if record is None or not _visible(caller, record):
        raise ApiError(404, "unknown-grant", f"no key {grant_id}")
    return record


@router.get(
    "/grants/{grant_id}",
    summary="One digital key",
    responses=documented(404),
)
async def get_grant(request: Request, grant_id: GrantIdPath, caller: Caller) -> JSONResponse:
    record = _visible_grant(request, grant_id, caller)
    return JSONResponse(grant_json(record, with_token=record.grant.grantee == caller.name))


@router.post(
    "/grants/{grant_id}/revoke",
    summary="Revoke a digital key (the car learns it too); revoking it again answers the same",
    responses=documented(404, 503),
)
async def revoke_grant(request: Request, grant_id: GrantIdPath, caller: Caller) -> JSONResponse:
    state = commands_state(request)
    record = _visible_grant(request, grant_id, caller)
    decision = keys.revoke(record, caller, time.time_ns() // 1_000_000)
    if isinstance(decision, Refused):
        raise _refuse(decision)
    if record.revoked_at is not None:
        return JSONResponse(grant_json(record, with_token=False))
    await state.store_grant(decision.record)
    await state.send(state.signer.sign_command(decision.command), record.grant.vin, [])
    await state.audit(decision.event)
    return JSONResponse(grant_json(decision.record, with_token=False))


@router.get("/vehicles/{vin}/audit", summary="Who did what to this car: keys, commands, refusals")
async def vehicle_audit(request: Request, vin: VinPath, caller: Caller) -> JSONResponse:
    require_vehicle(caller, vin)
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
