"""The vehicles the platform has seen: who is online, since when (``/v1/vehicles``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fleetlink.api.auth import Caller
from fleetlink.api.commands import commands_state
from fleetlink.api.errors import AUTHENTICATED, ApiError, VinPath, documented
from fleetlink.contracts.models import PresenceStatus

router = APIRouter(prefix="/v1", tags=["vehicles"], responses=documented(*AUTHENTICATED))


@router.get("/vehicles", summary="Vehicles the platform has seen, online ones first")
async def list_vehicles(
    request: Request,
    caller: Caller,
    online: Annotated[bool | None, Query(description="only online (true) or offline")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> JSONResponse:
    presence = dict(commands_state(request).view.presence)
    rows = [
        {"vin": vin, "online": p.status == PresenceStatus.ONLINE, "since": p.ts}
        for vin, p in presence.items()
        if (online is None or (p.status == PresenceStatus.ONLINE) is online)
        and caller.may_read_vehicle(vin)
    ]
    rows.sort(key=lambda row: (not row["online"], row["vin"]))
    return JSONResponse({"vehicles": rows[:limit], "total": len(rows)})


@router.get(
    "/vehicles/{vin}",
    summary="A vehicle's presence: online or not, last seen",
    responses=documented(404),
)
async def get_vehicle(request: Request, vin: VinPath, caller: Caller) -> JSONResponse:
    if not caller.may_read_vehicle(vin):
        raise ApiError(403, "forbidden", f"{vin} is not one of your vehicles")
    presence = commands_state(request).view.presence.get(vin)
    if presence is None:
        raise ApiError(404, "unknown-vehicle", f"vehicle {vin} has never connected")
    return JSONResponse(
        {
            "vin": vin,
            "online": presence.status == PresenceStatus.ONLINE,
            "since": presence.ts,
            "reason": presence.reason,
        }
    )
