"""Remote commands over HTTP: submit, look up, list and cancel them (live: ``command_events``).

Every endpoint names its caller (bearer token) and shows or does only what the caller's role
allows (``fleetlink.security.access``). ``POST`` signs the command with the platform key (the
car checks it), attaches the digital key it is sent under, and writes it to ``fleet.commands``
(key VIN); it answers 202 once Kafka has it;
the downlink and the tracker do the rest. Reads come from the ``ReadModel`` this API instance
follows. The same idempotency key for the same vehicle always names the same command id, so a
retried POST can never create a second command, not even when two copies race.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from fleetlink.adapters.kafka.seams import RecordSink
from fleetlink.api.auth import Caller
from fleetlink.api.bodies import ApiBody, JsonInt
from fleetlink.api.errors import (
    AUTHENTICATED,
    WITH_BODY,
    ApiError,
    CommandIdPath,
    VinPath,
    documented,
)
from fleetlink.api.replication import edge_unreachable_since
from fleetlink.commands import intake
from fleetlink.commands.read_model import CommandView, ReadModel
from fleetlink.contracts import headers
from fleetlink.contracts.catalogue import CATALOGUE
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import (
    AuditEvent,
    Command,
    CommandCancel,
    CommandState,
    GrantRecord,
)
from fleetlink.contracts.schema import inline_schema
from fleetlink.security.access import Principal
from fleetlink.security.signing import Signer
from fleetlink.security.users import UserRole

router = APIRouter(prefix="/v1", tags=["commands"], responses=documented(*AUTHENTICATED))


@dataclass
class CommandsState:
    view: ReadModel
    signer: Signer
    commands_topic: str
    grants_topic: str
    audit_topic: str
    retry_after_s: int
    cancel_wait_s: float
    deliveries: RecordSink | None = field(default=None)

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


EXAMPLE_VIN = "WVWZZZ1JZXW000001"
REQUESTABLE = [name for name in CATALOGUE if name not in intake.PLATFORM_ONLY]


def _command_body_schema(schema: dict[str, Any]) -> None:
    """One variant per command of the catalogue: its parameters and its longest lifetime, so a
    generated client (or a fuzzer) knows exactly which bodies the API accepts."""
    schema.clear()
    variants = []
    for name in REQUESTABLE:
        spec = CATALOGUE[name]
        params = inline_schema(spec.params)
        needs_params = bool(params.get("required") or params.get("minProperties"))
        ttl = f"lifetime in seconds; default {spec.default_ttl_s}"
        variants.append(
            {
                "title": name.value,
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "params"] if needs_params else ["name"],
                "properties": {
                    "name": {"const": name.value},
                    "params": params,
                    "ttl_s": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": spec.max_ttl_s,
                        "description": ttl,
                    },
                    "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 128},
                    "grant_id": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 64,
                        "description": "the digital key to send it under",
                    },
                },
            }
        )
    schema.update(
        {
            "title": "CommandRequest",
            "oneOf": variants,
            "examples": [{"name": "honk"}, {"name": "climate", "params": {"target_c": 21}}],
        }
    )


class CommandRequest(ApiBody):
    """Validated by ``commands.intake`` against the catalogue (the document lists it)."""

    model_config = ConfigDict(json_schema_extra=_command_body_schema)

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    ttl_s: JsonInt | None = Field(default=None, ge=1)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)
    grant_id: str | None = Field(default=None, min_length=1, max_length=64)


# a stateful client (or fuzzer) follows these from a 202 to the command it created
COMMAND_LINKS = {
    name: {"operationId": operation, "parameters": {"command_id": "$response.body#/command_id"}}
    for name, operation in (("GetCommand", "get_command"), ("CancelCommand", "cancel_command"))
}


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


def shown(request: Request, view: CommandView) -> dict[str, Any]:
    """``command_json``, and for a command still queued while the edge is unreachable (the
    edge-cloud topology), since when: it waits in the cloud, or at the edge unseen, and never
    runs after ``expires_at``."""
    body = command_json(view)
    since = edge_unreachable_since(request)
    if since is not None and view.latest.state == CommandState.QUEUED:
        body["awaiting_edge"] = True
        body["edge_unreachable_since"] = since
    return body


def commands_state(request: Request) -> CommandsState:
    state: CommandsState = request.app.state.commands
    return state


@router.post(
    "/vehicles/{vin}/commands",
    status_code=202,
    summary="Send a command to a vehicle",
    responses={
        200: {
            "description": "The same idempotency key again: the first command "
            "(Idempotent-Replayed)",
            "links": COMMAND_LINKS,
        },
        202: {"description": "Kafka has the command", "links": COMMAND_LINKS},
        **documented(*WITH_BODY, 404, 409, 503),
    },
)
async def submit_command(
    request: Request, vin: VinPath, body: CommandRequest, caller: Caller
) -> JSONResponse:
    """The rules are ``commands.intake``'s; this signs, writes to Kafka, audits and answers."""
    state = commands_state(request)
    if not state.view.ready.is_set():
        raise ApiError(
            503,
            "starting",
            "the API is still reading the fleet's state",
            {"Retry-After": str(state.retry_after_s)},
        )
    now = time.time_ns() // 1_000_000
    asked = intake.Request(
        vin=vin,
        name=body.name,
        params=body.params,
        ttl_s=body.ttl_s,
        idempotency_key=body.idempotency_key,
        grant_id=body.grant_id,
    )
    decision = intake.decide(asked, caller, state.view, now)
    if isinstance(decision, intake.Refused):
        if decision.audited:
            await state.audit(decision.audit_event(vin, caller.name, now))
        raise ApiError(decision.status, decision.error, decision.detail, **decision.extra)
    if isinstance(decision, intake.Replayed):
        first = state.view.command(decision.command_id)
        assert first is not None
        return JSONResponse(
            command_json(first), status_code=200, headers={"Idempotent-Replayed": "1"}
        )
    command = state.signer.sign_command(decision.command)
    extra = []
    if body.idempotency_key is not None:
        extra.append((headers.IDEMPOTENCY_KEY, body.idempotency_key.encode()))
    await state.send(command, vin, extra)
    if decision.audited:
        await state.audit(decision.audit_event())
    state.view.submitted(decision.queued())
    view = state.view.command(command.command_id)
    assert view is not None
    return JSONResponse(
        shown(request, view),
        status_code=202,
        headers={"Location": f"/v1/commands/{command.command_id}"},
    )


@router.get("/commands/summary", summary="How many commands are in each state")
async def command_summary(request: Request, caller: Caller) -> JSONResponse:
    if not caller.sees_everything:
        raise ApiError(403, "forbidden", "the summary covers every car: admins and viewers")
    return JSONResponse({"states": commands_state(request).view.state_counts()})


@router.get(
    "/commands/{command_id}",
    summary="One command: state, reason, history",
    responses=documented(404),
)
async def get_command(request: Request, command_id: CommandIdPath, caller: Caller) -> JSONResponse:
    return JSONResponse(shown(request, _readable(request, command_id, caller)))


def _readable(request: Request, command_id: str, caller: Principal) -> CommandView:
    """The command, if the caller may see it; 404 otherwise (its existence is not told)."""
    view = commands_state(request).view.command(command_id)
    if view is None or not caller.may_read_command(view.latest.vin, view.latest.actor):
        raise ApiError(404, "unknown-command-id", f"no command {command_id}")
    return view


@router.get(
    "/vehicles/{vin}/commands",
    summary="The commands of one vehicle, newest first",
    responses=documented(404),
)
async def list_commands(
    request: Request,
    vin: VinPath,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    views = [
        view
        for view in commands_state(request).view.commands_of(vin)
        if caller.may_read_command(vin, view.latest.actor)
    ]
    if not views and not caller.may_read_vehicle(vin) and caller.role is not UserRole.SERVICE:
        raise ApiError(403, "forbidden", f"{vin} is not one of your vehicles")
    newest = sorted(views, key=lambda v: v.latest.created_at or 0, reverse=True)[:limit]
    return JSONResponse({"vin": vin, "commands": [shown(request, v) for v in newest]})


@router.post(
    "/commands/{command_id}/cancel",
    summary="Cancel a command the platform still holds (state queued)",
    responses={
        202: {"description": "Cancelled, or the outcome is not known yet"},
        **documented(404, 409, 503),
    },
)
async def cancel_command(
    request: Request, command_id: CommandIdPath, caller: Caller
) -> JSONResponse:
    state = commands_state(request)
    view = _readable(request, command_id, caller)
    if not caller.may_cancel(view.latest.vin, view.latest.actor):
        raise ApiError(403, "forbidden", "only an admin, the owner or the sender may cancel")
    if view.latest.state != CommandState.QUEUED:
        raise _not_cancellable(view)
    cancel = CommandCancel(command_id=command_id, ts=time.time_ns() // 1_000_000)
    assert state.deliveries is not None
    await state.deliveries.produce(
        state.commands_topic,
        encode(cancel),
        view.latest.vin.encode(),
        [(headers.RECORD_KIND, b"cancel")],
    )
    # the tracker that answers a cancel runs at the edge: while it is cut off, say so at once
    wait_s = 0.0 if edge_unreachable_since(request) is not None else state.cancel_wait_s
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        now_state = _current_state(view)
        if now_state == CommandState.CANCELLED:
            return JSONResponse(command_json(view))
        if now_state != CommandState.QUEUED:
            raise _not_cancellable(view)
    return JSONResponse(
        {**shown(request, view), "cancel": "requested"},
        status_code=202,
    )


def _current_state(view: CommandView) -> CommandState:
    """Read afresh: the view's thread moves it on while the request waits."""
    return view.latest.state


def _not_cancellable(view: CommandView) -> ApiError:
    return ApiError(
        409,
        "not-cancellable",
        f"the command is {view.latest.state.value}: the vehicle may already have it",
        command=command_json(view),
    )
