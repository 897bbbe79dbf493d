"""Replication between the edge and the cloud over HTTP: how each flow stands, as its replication
monitor last said (``fleet.replication-alerts``): past its lag bound since when (the other side
unreachable), and records lost to the source's retention."""

from __future__ import annotations

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fleetlink.api.auth import Caller
from fleetlink.api.errors import AUTHENTICATED, ApiError, documented
from fleetlink.mirror.view import ReplicationView

router = APIRouter(prefix="/v1", tags=["replication"], responses=documented(*AUTHENTICATED))

EDGE_TO_CLOUD = "edge->cloud"


def replication_view(request: Request) -> ReplicationView:
    view: ReplicationView = request.app.state.replication
    return view


@router.get(
    "/replication",
    summary="Each replication flow: lagging since when, records lost to retention",
    responses=documented(403),
)
async def replication(request: Request, caller: Caller) -> JSONResponse:
    if not caller.sees_everything:
        raise ApiError(403, "forbidden", "replication covers every car: admins and viewers")
    flows = replication_view(request).flows()
    return JSONResponse({"flows": [msgspec.structs.asdict(flow) for flow in flows]})


def edge_unreachable_since(request: Request) -> int | None:
    """Since when the edge's data has stopped reaching this (cloud) side, if it has."""
    return replication_view(request).unreachable_since(EDGE_TO_CLOUD)
