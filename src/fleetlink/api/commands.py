"""Remote commands over HTTP: submit, look up, list, cancel, and follow them live (SSE).

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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
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
    PresenceStatus,
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
_SSE_QUEUE = 10_000  # batches
_SSE_KEEPALIVE_S = 15.0
_encode = msgspec.json.Encoder().encode


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


def _error(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
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


def _state(request: Request) -> CommandsState:
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
    state = _state(request)
    if not is_valid_vin(vin):
        return _error(422, "invalid-vin", f"{vin!r} is not a VIN (17 characters, no I, O, Q)")
    if not state.view.ready.is_set():
        return _error(503, "starting", "the API is still reading the fleet's state")
    grant_record = state.view.grant(body.grant_id) if body.grant_id is not None else None
    if body.grant_id is not None and grant_record is None:
        return await _refuse(state, caller, vin, "key-unknown", f"no key {body.grant_id}")
    refusal = caller.command_refusal(vin, with_grant=grant_record is not None)
    if refusal is not None:
        return await _refuse(state, caller, vin, "forbidden", refusal)
    if not state.view.knows_vehicle(vin):
        return _error(404, "unknown-vehicle", f"vehicle {vin} has never connected")
    try:
        name = CommandName(body.name)
    except ValueError:
        known = sorted(c.value for c in CommandName)
        return _error(422, "unknown-command", f"no command {body.name!r}", known=known)
    if name is CommandName.GRANT_REVOKE:
        return _error(422, "unknown-command", "revoke a key with DELETE /v1/grants/{grant_id}")
    try:
        params = validate_params(name, body.params)
    except InvalidParamsError as error:
        return _error(422, "invalid-params", f"{name.value}: {error}")
    default_ttl, max_ttl = ttl_limits(name)
    ttl_s = body.ttl_s or default_ttl
    if ttl_s > max_ttl:
        return _error(422, "invalid-ttl", f"{name.value}: ttl_s must be at most {max_ttl}")

    if body.idempotency_key is not None:
        command_id = str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{vin}/{body.idempotency_key}"))
        known_command = state.view.command(command_id)
        if known_command is not None:
            latest = known_command.latest
            if (latest.name, latest.params or {}) != (name.value, params):
                return _error(
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
    return _error(403, error, detail)


@router.get(
    "/commands/events",
    summary="Every command transition, live (Server-Sent Events); ?vin= narrows to one vehicle",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def command_events(
    request: Request, caller: Caller, vin: Annotated[str | None, Query(max_length=64)] = None
) -> StreamingResponse:
    """One ``transition`` event per step (``id`` = command id/state, ``data`` = the step)."""
    state = _state(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[list[Transition]] = asyncio.Queue(maxsize=_SSE_QUEUE)

    def deliver(steps: list[Transition]) -> None:
        chosen = [
            s
            for s in steps
            if (vin is None or s.vin == vin) and caller.may_read_command(s.vin, s.actor)
        ]
        if chosen:
            loop.call_soon_threadsafe(_offer, queue, chosen)

    async def stream() -> AsyncIterator[bytes]:
        unlisten = state.view.listen(deliver)
        try:
            yield b"event: ready\ndata: {}\n\n"
            while True:
                try:
                    steps = await asyncio.wait_for(queue.get(), _SSE_KEEPALIVE_S)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                while not queue.empty():  # everything that is waiting goes in one write
                    steps = steps + queue.get_nowait()
                yield b"".join(_sse_frame(step) for step in steps)
        finally:
            unlisten()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse_frame(step: Transition) -> bytes:
    event_id = f"{step.command_id}/{step.state.value}".encode()
    return b"event: transition\nid: " + event_id + b"\ndata: " + _encode(step) + b"\n\n"


def _offer(queue: asyncio.Queue[list[Transition]], steps: list[Transition]) -> None:
    if not queue.full():  # a client this far behind loses live events; GET has the truth
        queue.put_nowait(steps)


@router.get("/commands/summary", summary="How many commands are in each state")
async def command_summary(request: Request, caller: Caller) -> JSONResponse:
    if not caller.sees_everything:
        raise ApiError(403, "forbidden", "the summary covers every car: admins and viewers")
    return JSONResponse({"states": _state(request).view.state_counts()})


@router.get("/commands/{command_id}", summary="One command: state, reason, history")
async def get_command(request: Request, command_id: str, caller: Caller) -> JSONResponse:
    view = _state(request).view.command(command_id)
    if view is None or not caller.may_read_command(view.latest.vin, view.latest.actor):
        return _error(404, "unknown-command-id", f"no command {command_id}")
    return JSONResponse(command_json(view))


@router.get("/vehicles", summary="Vehicles the platform has seen, online ones first")
async def list_vehicles(
    request: Request,
    caller: Caller,
    online: Annotated[bool | None, Query(description="only online (true) or offline")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> JSONResponse:
    presence = dict(_state(request).view.presence)
    rows = [
        {"vin": vin, "online": p.status == PresenceStatus.ONLINE, "since": p.ts}
        for vin, p in presence.items()
        if (online is None or (p.status == PresenceStatus.ONLINE) is online)
        and caller.may_read_vehicle(vin)
    ]
    rows.sort(key=lambda row: (not row["online"], row["vin"]))
    return JSONResponse({"vehicles": rows[:limit], "total": len(rows)})


@router.get("/vehicles/{vin}", summary="A vehicle's presence: online or not, last seen")
async def get_vehicle(request: Request, vin: VinPath, caller: Caller) -> JSONResponse:
    if not caller.may_read_vehicle(vin):
        raise ApiError(403, "forbidden", f"{vin} is not one of your vehicles")
    presence = _state(request).view.presence.get(vin)
    if presence is None:
        return _error(404, "unknown-vehicle", f"vehicle {vin} has never connected")
    return JSONResponse(
        {
            "vin": vin,
            "online": presence.status == PresenceStatus.ONLINE,
            "since": presence.ts,
            "reason": presence.reason,
        }
    )


@router.get("/vehicles/{vin}/commands", summary="The commands of one vehicle, newest first")
async def list_commands(
    request: Request,
    vin: VinPath,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    if not is_valid_vin(vin):
        return _error(422, "invalid-vin", f"{vin!r} is not a VIN (17 characters, no I, O, Q)")
    views = [
        view
        for view in _state(request).view.commands_of(vin)
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
    state = _state(request)
    view = state.view.command(command_id)
    if view is None or not caller.may_read_command(view.latest.vin, view.latest.actor):
        return _error(404, "unknown-command-id", f"no command {command_id}")
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
    return _error(
        409,
        "not-cancellable",
        f"the command is {view.latest.state.value}: the vehicle may already have it",
        command=command_json(view),
    )
