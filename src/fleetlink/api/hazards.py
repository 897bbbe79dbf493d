"""Local hazards in force near a place, and live (``/v1/hazards``), from the read model of
``fleet.hazards``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from fleetlink.api.auth import Caller
from fleetlink.api.errors import AUTHENTICATED, ApiError, documented, read_when_ready
from fleetlink.api.sse import frame, live_stream
from fleetlink.apps.hazards.read_model import HazardReadModel
from fleetlink.contracts.geo import distance_m
from fleetlink.contracts.hazards import Hazard
from fleetlink.security.access import Principal

router = APIRouter(prefix="/v1", tags=["hazards"], responses=documented(*AUTHENTICATED))

_DEFAULT_RADIUS_M: Final = 2000.0
_MAX_RADIUS_M: Final = 100_000.0
_encode = msgspec.json.Encoder().encode

Latitude = Annotated[float | None, Query(ge=-90, le=90, description="WGS 84 degrees")]
Longitude = Annotated[float | None, Query(ge=-180, le=180, description="WGS 84 degrees")]
Radius = Annotated[
    float,
    Query(gt=0, le=_MAX_RADIUS_M, description="metres around lat/lon (with both of them)"),
]


def hazards_view(request: Request) -> HazardReadModel:
    view: HazardReadModel = request.app.state.hazards
    return view


@dataclass(frozen=True)
class Area:
    """Where the caller asks about: around ``center`` within ``radius_m``, or everywhere."""

    center: tuple[float, float] | None
    radius_m: float

    def holds(self, hazard: Hazard) -> bool:
        return self.center is None or (
            distance_m(*self.center, hazard.latitude, hazard.longitude) <= self.radius_m
        )


def _area(
    lat: Latitude = None, lon: Longitude = None, radius_m: Radius = _DEFAULT_RADIUS_M
) -> Area:
    if (lat is None) != (lon is None):
        raise ApiError(422, "invalid-request", "give both lat and lon, or neither")
    return Area(None if lat is None or lon is None else (lat, lon), radius_m)


Asked = Annotated[Area, Depends(_area)]


def _readable(caller: Principal) -> None:
    if not caller.may_read_hazards:
        raise ApiError(403, "forbidden", f"the {caller.role.value} role reads no hazards")


def _ready(view: HazardReadModel) -> None:
    read_when_ready(view, "fleet.hazards")


@router.get(
    "/hazards",
    summary="Hazards in force within radius_m of lat/lon, nearest first (all without lat/lon)",
    responses=documented(403, 422, 503),
)
async def list_hazards(request: Request, caller: Caller, area: Asked) -> JSONResponse:
    """Each hazard as ``fleet.hazards`` holds it (its latest step), with ``distance_m`` from the
    point asked about."""
    _readable(caller)
    view = hazards_view(request)
    _ready(view)
    if area.center is None:
        rows = [msgspec.to_builtins(hazard) for hazard in view.in_force()]
    else:
        rows = [
            {**msgspec.to_builtins(hazard), "distance_m": round(distance, 1)}
            for distance, hazard in view.near(*area.center, area.radius_m)
        ]
    return JSONResponse({"hazards": rows, "total": len(rows)})


@router.get(
    "/hazards/live",
    summary="Hazards in force, then each confirmation, update and clearance, live (SSE)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **documented(403, 422)},
)
async def live_hazards(request: Request, caller: Caller, area: Asked) -> StreamingResponse:
    """One ``hazard`` event per step (``id`` = hazard id/state/event time, ``data`` = the
    record): first those in force, then ``ready``, then each step as the app writes it."""
    _readable(caller)
    view = hazards_view(request)

    def to_frame(hazard: Hazard) -> bytes:
        event_id = f"{hazard.hazard_id}/{hazard.state.value}/{hazard.ts}"
        return frame("hazard", event_id, _encode(hazard))

    return live_stream(
        view.listen,
        area.holds,
        to_frame,
        opening=lambda: [to_frame(h) for h in view.in_force() if area.holds(h)],
    )
