"""Every command transition, live, as Server-Sent Events (``GET /v1/commands/events``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from fleetlink.api.auth import Caller
from fleetlink.api.commands import commands_state
from fleetlink.api.errors import AUTHENTICATED, documented
from fleetlink.contracts.models import Transition

# before the commands' router: /commands/{command_id} would take "events" for an id
router = APIRouter(prefix="/v1", tags=["commands"], responses=documented(*AUTHENTICATED))

_SSE_QUEUE = 10_000  # batches
_SSE_KEEPALIVE_S = 15.0
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
