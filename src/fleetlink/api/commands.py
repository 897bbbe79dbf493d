"""Remote commands over HTTP: submit, look up, list and cancel them (live: ``command_events``).

Every endpoint names its caller (bearer token) and shows or does only what the caller's role
allows (``fleetlink.security.access``). ``POST`` signs the command with the platform key (the
car checks it), attaches the digital key it is sent under, and writes it to ``fleet.commands``
(key VIN); it answers 202 once Kafka has it;
the downlink and the tracker do the rest. Reads come from the ``FleetView`` this API instance
follows. The same idempotency key for the same vehicle always names the same command id, so a
retried POST can never create a second command, not even when two copies race.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from fleetlink.adapters.kafka.delivery import AsyncDeliveries, KafkaUnavailableError
from fleetlink.api.auth import ApiError, Caller
from fleetlink.api.bodies import ApiBody
from fleetlink.commands.view import CommandView, FleetView
from fleetlink.contracts import headers
from fleetlink.contracts.catalogue import InvalidParamsError, ttl_limits, validate_params
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import (
    AuditEvent,
    Command,
    CommandCancel,
    CommandName,
    CommandState,
    GrantRecord,
    Transition,
)
from fleetlink.contracts.vin import is_valid_vin
from fleetlink.security.access import Principal
from fleetlink.security.grants import grant_refusal
from fleetlink.security.signing import Signer
from fleetlink.security.users import UserRole

router = APIRouter(prefix="/v1", tags=["commands"])

# Command ids derived from idempotency keys live in their own UUID namespace.
_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c3f0e-4f0b-5b9e-9a53-6c0e2b7d1a42")


@dataclass
class CommandsState:
    view: FleetView
    signer: Signer
    commands_topic: str
    grants_topic: str
    audit_topic: str
    retry_after_s: int
    cancel_wait_s: float
    deliveries: AsyncDeliveries | None = field(default=None)

    async def audit(self, event: AuditEvent) -> None:
        """Written to the audit log before the request is answered."""
        assert self.deliveries is not None
        await self.deliveries.produce(self.audit_topic, encode(event), event.vin.encode(), [])
        self.view.audited(event)

    async def store_grant(self, record: GrantRecord) -> None:
        """A key (or its revocation) to ``fleet.grants``, then into this instance's view."""
        assert self.deliveries is not None
        key = record.grant.grant_id.encode()
        await self.deliveries.produce(self.grants_topic, encode(record), key, [])
        self.view.granted(record)

    async def send(
        self, command: Command, vin: str, extra_headers: list[tuple[str, bytes]]
    ) -> None:
        assert self.deliveries is not None
        record_headers = [(headers.RECORD_KIND, b"command"), *extra_headers]
        await self.deliveries.produce(
            self.commands_topic, encode(command), vin.encode(), record_headers
        )


class CommandRequest(ApiBody):
    name: str = Field(description="command name, e.g. trunk.open, climate, feature.activate")
    params: dict[str, Any] = Field(default_factory=dict)
    ttl_s: int | None = Field(
        default=None, ge=1, description="lifetime; default and maximum depend on the command"
    )
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)
    grant_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="the digital key to use"
    )


def error_json(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status)


def _unavailable(state: CommandsState, detail: str) -> JSONResponse:
    return JSONResponse(
        {"error": "kafka-unavailable", "detail": detail},
        status_code=503,
        headers={"Retry-After": str(state.retry_after_s)},
    )


def command_json(view: CommandView) -> dict[str, Any]:
    latest = view.latest
    return {
        "command_id": latest.command_id,
        "vin": latest.vin,
        "name": latest.name,
        "params": latest.params or {},
        "state": latest.state.value,
        "reason": latest.reason,
        "created_at": latest.created_at,
        "expires_at": latest.expires_at,
        "updated_at": latest.ts,
        "idempotency_key": latest.idempotency_key,
        "actor": latest.actor,
        "grant_id": latest.grant_id,
        "history": [
            {"state": step.state.value, "ts": step.ts, "reason": step.reason}
            for step in view.history
        ],
    }


def commands_state(request: Request) -> CommandsState:
    state: CommandsState = request.app.state.commands
    return state


VinPath = Annotated[str, Path(description="ISO 3779 VIN", min_length=1, max_length=64)]


@router.post(
    "/vehicles/{vin}/commands",
    status_code=202,
    summary="Send a command to a vehicle",
    responses={200: {}, 404: {}, 409: {}, 422: {}, 503: {}},
)
async def submit_command(
    request: Request, vin: VinPath, body: CommandRequest, caller: Caller
) -> JSONResponse:
    state = commands_state(request)
    if not is_valid_vin(vin):
        return error_json(422, "invalid-vin", f"{vin!r} is not a VIN (17 characters, no I, O, Q)")
    if not state.view.ready.is_set():
        return error_json(503, "starting", "the API is still reading the fleet's state")
    grant_record = state.view.grant(body.grant_id) if body.grant_id is not None else None
    if body.grant_id is not None and grant_record is None:
        return await _refuse(state, caller, vin, "key-unknown", f"no key {body.grant_id}")
    refusal = caller.command_refusal(vin, with_grant=grant_record is not None)
    if refusal is not None:
        return await _refuse(state, caller, vin, "forbidden", refusal)
    if not state.view.knows_vehicle(vin):
        return error_json(404, "unknown-vehicle", f"vehicle {vin} has never connected")
    try:
        name = CommandName(body.name)
    except ValueError:
        known = sorted(c.value for c in CommandName)
        return error_json(422, "unknown-command", f"no command {body.name!r}", known=known)
    if name is CommandName.GRANT_REVOKE:
        return error_json(422, "unknown-command", "revoke a key with DELETE /v1/grants/{grant_id}")
    try:
        params = validate_params(name, body.params)
    except InvalidParamsError as error:
        return error_json(422, "invalid-params", f"{name.value}: {error}")
    default_ttl, max_ttl = ttl_limits(name)
    ttl_s = body.ttl_s or default_ttl
    if ttl_s > max_ttl:
        return error_json(422, "invalid-ttl", f"{name.value}: ttl_s must be at most {max_ttl}")

    if body.idempotency_key is not None:
        command_id = str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{vin}/{body.idempotency_key}"))
        known_command = state.view.command(command_id)
        if known_command is not None:
            latest = known_command.latest
            if (latest.name, latest.params or {}) != (name.value, params):
                return error_json(
                    409,
                    "idempotency-conflict",
                    "this idempotency key was used for a different command",
                    command_id=command_id,
                )
            return JSONResponse(
                command_json(known_command), status_code=200, headers={"Idempotent-Replayed": "1"}
            )
    else:
        command_id = str(uuid.uuid4())
    now = time.time_ns() // 1_000_000
    expires_at = now + ttl_s * 1000
    token = grant_id = None
    if grant_record is not None:
        grant = grant_record.grant
        if grant.grantee != caller.name:
            return await _refuse(state, caller, vin, "key-not-yours", "the key is another's")
        reason = grant_refusal(
            grant,
            vin=vin,
            command=name,
            now_ms=now,
            uses=state.view.key_uses(grant.grant_id),
            revoked=grant_record.revoked_at is not None,
            skew_ms=0,  # the platform's clock is the reference; only cars get slack
        )
        if reason is not None:
            return await _refuse(state, caller, vin, reason, f"key {grant.grant_id}: {reason}")
        token, grant_id = grant_record.token, grant.grant_id
        expires_at = min(expires_at, grant.not_after)  # never valid beyond the key's window
    command = state.signer.sign_command(
        Command(
            command_id=command_id,
            name=name,
            issued_at=now,
            expires_at=expires_at,
            params=params,
            vin=vin,
            actor=caller.name,
            grant=token,
            grant_id=grant_id,
        )
    )
    extra = []
    if body.idempotency_key is not None:
        extra.append((headers.IDEMPOTENCY_KEY, body.idempotency_key.encode()))
    try:
        await state.send(command, vin, extra)
        if grant_id is not None:  # every use of a key is audited
            await state.audit(
                AuditEvent(
                    ts=now,
                    vin=vin,
                    actor=caller.name,
                    action="command.requested",
                    grant_id=grant_id,
                    command_id=command_id,
                    detail=name.value,
                )
            )
    except KafkaUnavailableError as error:
        return _unavailable(state, str(error))
    queued = Transition(
        command_id=command_id,
        vin=vin,
        name=name.value,
        state=CommandState.QUEUED,
        ts=now,
        created_at=now,
        expires_at=command.expires_at,
        params=params,
        idempotency_key=body.idempotency_key,
        actor=caller.name,
        grant_id=grant_id,
    )
    state.view.submitted(queued)
    view = state.view.command(command_id)
    assert view is not None
    return JSONResponse(
        command_json(view), status_code=202, headers={"Location": f"/v1/commands/{command_id}"}
    )


async def _refuse(
    state: CommandsState, caller: Principal, vin: str, error: str, detail: str
) -> JSONResponse:
    """403, and a line in the audit trail: refusals are part of who-did-what."""
    event = AuditEvent(
        ts=time.time_ns() // 1_000_000,
        vin=vin,
        actor=caller.name,
        action="command.refused",
        detail=f"{error}: {detail}",
    )
    try:
        await state.audit(event)
    except KafkaUnavailableError as failure:
        return _unavailable(state, str(failure))
    return error_json(403, error, detail)


@router.get("/commands/summary", summary="How many commands are in each state")
async def command_summary(request: Request, caller: Caller) -> JSONResponse:
    if not caller.sees_everything:
        raise ApiError(403, "forbidden", "the summary covers every car: admins and viewers")
    return JSONResponse({"states": commands_state(request).view.state_counts()})


@router.get("/commands/{command_id}", summary="One command: state, reason, history")
async def get_command(request: Request, command_id: str, caller: Caller) -> JSONResponse:
    view = commands_state(request).view.command(command_id)
    if view is None or not caller.may_read_command(view.latest.vin, view.latest.actor):
        return error_json(404, "unknown-command-id", f"no command {command_id}")
    return JSONResponse(command_json(view))


@router.get("/vehicles/{vin}/commands", summary="The commands of one vehicle, newest first")
async def list_commands(
    request: Request,
    vin: VinPath,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    if not is_valid_vin(vin):
        return error_json(422, "invalid-vin", f"{vin!r} is not a VIN (17 characters, no I, O, Q)")
    views = [
        view
        for view in commands_state(request).view.commands_of(vin)
        if caller.may_read_command(vin, view.latest.actor)
    ]
    if not views and not caller.may_read_vehicle(vin) and caller.role is not UserRole.SERVICE:
        raise ApiError(403, "forbidden", f"{vin} is not one of your vehicles")
    newest = sorted(views, key=lambda v: v.latest.created_at or 0, reverse=True)[:limit]
    return JSONResponse({"vin": vin, "commands": [command_json(v) for v in newest]})


@router.delete(
    "/commands/{command_id}",
    summary="Cancel a command the platform still holds (state queued)",
    responses={202: {}, 404: {}, 409: {}, 503: {}},
)
async def cancel_command(request: Request, command_id: str, caller: Caller) -> JSONResponse:
    state = commands_state(request)
    view = state.view.command(command_id)
    if view is None or not caller.may_read_command(view.latest.vin, view.latest.actor):
        return error_json(404, "unknown-command-id", f"no command {command_id}")
    if not caller.may_cancel(view.latest.vin, view.latest.actor):
        raise ApiError(403, "forbidden", "only an admin, the owner or the sender may cancel")
    if view.latest.state != CommandState.QUEUED:
        return _not_cancellable(view)
    cancel = CommandCancel(command_id=command_id, ts=time.time_ns() // 1_000_000)
    assert state.deliveries is not None
    try:
        await state.deliveries.produce(
            state.commands_topic,
            encode(cancel),
            view.latest.vin.encode(),
            [(headers.RECORD_KIND, b"cancel")],
        )
    except KafkaUnavailableError as error:
        return _unavailable(state, str(error))
    deadline = time.monotonic() + state.cancel_wait_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        now_state = _current_state(view)
        if now_state == CommandState.CANCELLED:
            return JSONResponse(command_json(view))
        if now_state != CommandState.QUEUED:
            return _not_cancellable(view)
    return JSONResponse(
        {**command_json(view), "cancel": "requested"},
        status_code=202,
    )


def _current_state(view: CommandView) -> CommandState:
    """Read afresh: the view's thread moves it on while the request waits."""
    return view.latest.state


def _not_cancellable(view: CommandView) -> JSONResponse:
    return error_json(
        409,
        "not-cancellable",
        f"the command is {view.latest.state.value}: the vehicle may already have it",
        command=command_json(view),
    )
