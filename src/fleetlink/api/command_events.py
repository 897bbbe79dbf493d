"""Every command transition, live, as Server-Sent Events (``GET /v1/commands/events``)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from fleetlink.api.auth import Caller
from fleetlink.api.commands import commands_state
from fleetlink.api.errors import AUTHENTICATED, documented
from fleetlink.api.sse import frame, live_stream

# before the commands' router: /commands/{command_id} would take "events" for an id
router = APIRouter(prefix="/v1", tags=["commands"], responses=documented(*AUTHENTICATED))

_encode = msgspec.json.Encoder().encode


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
    state = commands_state(request)
    return live_stream(
        state.view.listen,
        lambda s: (vin is None or s.vin == vin) and caller.may_read_command(s.vin, s.actor),
        lambda s: frame("transition", f"{s.command_id}/{s.state.value}", _encode(s)),
    )
