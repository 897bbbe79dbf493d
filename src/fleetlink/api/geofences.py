"""Geofences over HTTP: draw, list, delete; the enter, dwell and exit events, asked or live.

A fence is a circle (``center`` and ``radius_m``, at least 50 m) or a GeoJSON polygon (valid,
closed, at most 500 positions, at least 2,500 m², within 100 km). Fleet admins fence any car or
every car; an owner fences only their own cars, always named, and sees only the fences they
drew; a viewer sees every fence and draws none. A fence goes to compacted ``fleet.geofences``,
and the fleet app judges fixes against it from the moment it reads it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ConfigDict, Field

from fleetlink.adapters.kafka.seams import RecordSink
from fleetlink.api.auth import Caller
from fleetlink.api.bodies import ApiBody
from fleetlink.api.errors import (
    AUTHENTICATED,
    WITH_BODY,
    ApiError,
    FenceIdPath,
    documented,
    read_when_ready,
)
from fleetlink.api.sse import frame, live_stream
from fleetlink.apps.fleet.fence_model import FenceReadModel
from fleetlink.apps.fleet.fences import GeometryError, check_fence
from fleetlink.contracts.codec import encode
from fleetlink.contracts.geofences import (
    MAX_DWELL_S,
    MAX_RADIUS_M,
    MAX_VERTICES,
    MAX_VINS,
    MIN_RADIUS_M,
    FenceCircle,
    GeofenceDefinition,
    GeofenceEvent,
    GeoJsonPolygon,
)
from fleetlink.contracts.vin import VIN_PATTERN
from fleetlink.security.access import Principal
from fleetlink.security.users import UserRole

router = APIRouter(prefix="/v1", tags=["geofences"], responses=documented(*AUTHENTICATED))

_encode = msgspec.json.Encoder().encode
_EXAMPLE_VIN: Final = "WVWZZZ1JZXW000001"
FENCE_LINKS = {
    name: {"operationId": operation, "parameters": {"fence_id": "$response.body#/fence_id"}}
    for name, operation in (("GetGeofence", "get_geofence"), ("DeleteGeofence", "delete_geofence"))
}

Coordinate = Annotated[float, Field(allow_inf_nan=False)]


class Center(ApiBody):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Polygon(ApiBody):
    type: Literal["Polygon"]
    coordinates: list[
        Annotated[list[Annotated[list[Coordinate], Field(max_length=3)]], Field(max_length=500)]
    ] = Field(min_length=1, max_length=50, description="outer ring, then holes; [lon, lat]")


class GeofenceRequest(ApiBody):
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["polygon"]}, {"required": ["center", "radius_m"]}],
            "examples": [
                {
                    "name": "depot",
                    "center": {"latitude": 52.52, "longitude": 13.40},
                    "radius_m": 200,
                    "vins": [_EXAMPLE_VIN],
                    "dwell_s": 600,
                }
            ],
        }
    )

    name: str = Field(min_length=1, max_length=100)
    center: Center | None = None
    radius_m: float | None = Field(default=None, ge=MIN_RADIUS_M, le=MAX_RADIUS_M)
    polygon: Polygon | None = Field(
        default=None,
        description=f"GeoJSON (RFC 7946), valid, closed, at most {MAX_VERTICES} positions",
    )
    vins: list[Annotated[str, Field(pattern=VIN_PATTERN)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_VINS,
        description="the cars it watches; none: every car (fleet admins only)",
    )
    dwell_s: float | None = Field(
        default=None, ge=1, le=MAX_DWELL_S, description="tell when a car stays inside this long"
    )


@dataclass
class GeofencesState:
    view: FenceReadModel
    topic: str  # fleet.geofences
    per_owner: int  # apps.fleet.fences_per_owner
    deliveries: RecordSink | None = field(default=None)

    async def write(self, fence_id: str, definition: GeofenceDefinition | None) -> None:
        """A fence (None: its deletion) to Kafka, then into this instance's view."""
        assert self.deliveries is not None
        value = None if definition is None else encode(definition)
        await self.deliveries.produce(self.topic, value, fence_id.encode(), [])
        if definition is None:
            self.view.remove(fence_id)
        else:
            self.view.put(definition)


def geofences_state(request: Request) -> GeofencesState:
    state: GeofencesState = request.app.state.geofences
    return state


def fences_view(request: Request) -> FenceReadModel:
    return geofences_state(request).view


def _visible(caller: Principal, definition: GeofenceDefinition) -> bool:
    return caller.sees_everything or definition.owner == caller.name


def _ready(view: FenceReadModel) -> FenceReadModel:
    return read_when_ready(view, "the geofences")


def _definition(body: GeofenceRequest, caller: Principal) -> GeofenceDefinition:
    if caller.role not in (UserRole.FLEET_ADMIN, UserRole.OWNER):
        raise ApiError(403, "forbidden", f"the {caller.role.value} role draws no geofences")
    if body.polygon is None and (body.center is None or body.radius_m is None):
        raise ApiError(422, "invalid-geometry", "give a polygon, or a center and radius_m")
    if body.polygon is not None and (body.center is not None or body.radius_m is not None):
        raise ApiError(422, "invalid-geometry", "give a polygon or a circle, not both")
    vins = None if body.vins is None else sorted(set(body.vins))
    if caller.role is UserRole.OWNER:
        if vins is None:
            raise ApiError(403, "forbidden", "an owner fences their own cars: name them in vins")
        foreign = [vin for vin in vins if not caller.owns(vin)]
        if foreign:
            raise ApiError(403, "forbidden", f"{foreign[0]} is not one of your vehicles")
    circle = None
    if body.center is not None and body.radius_m is not None:
        circle = FenceCircle(body.center.latitude, body.center.longitude, body.radius_m)
    polygon = None
    if body.polygon is not None:
        polygon = GeoJsonPolygon("Polygon", body.polygon.coordinates)
    definition = GeofenceDefinition(
        fence_id=f"gf-{uuid.uuid4().hex[:16]}",
        name=body.name,
        owner=caller.name,
        created_at=time.time_ns() // 1_000_000,
        circle=circle,
        polygon=polygon,
        vins=vins,
        dwell_s=body.dwell_s,
    )
    try:
        check_fence(definition)
    except GeometryError as bad:
        raise ApiError(422, "invalid-geometry", str(bad)) from None
    return definition


@router.post(
    "/geofences",
    status_code=201,
    summary="Draw a geofence: a circle or a GeoJSON polygon, for some cars or (admins) all",
    responses={
        201: {"description": "The fence, in force", "links": FENCE_LINKS},
        **documented(*WITH_BODY, 409, 503),
    },
)
async def create_geofence(request: Request, body: GeofenceRequest, caller: Caller) -> JSONResponse:
    """A polygon must be valid (closed rings, no self-intersection), have at most 500
    positions, cover 2,500 m² at least and fit in 100 km; a circle's radius is 50 m to 50 km.
    Hysteresis: a car enters after ``apps.fleet.fence_fixes`` (2) fixes in a row inside, and
    exits after as many more than ``apps.fleet.fence_band_m`` (25 m) outside."""
    state = geofences_state(request)
    view = _ready(state.view)
    definition = _definition(body, caller)
    drawn = sum(1 for d in view.definitions() if d.owner == caller.name)
    if caller.role is UserRole.OWNER and drawn >= state.per_owner:
        detail = f"an owner draws at most {state.per_owner} geofences"
        raise ApiError(409, "too-many-geofences", detail)
    await state.write(definition.fence_id, definition)
    return JSONResponse(
        msgspec.to_builtins(definition),
        status_code=201,
        headers={"Location": f"/v1/geofences/{definition.fence_id}"},
    )


@router.get(
    "/geofences",
    summary="The geofences you drew, or (admins, viewers) all of them",
    responses=documented(503),
)
async def list_geofences(request: Request, caller: Caller) -> JSONResponse:
    view = _ready(fences_view(request))
    fences = [msgspec.to_builtins(d) for d in view.definitions() if _visible(caller, d)]
    return JSONResponse({"geofences": fences})


def _chosen_events(request: Request, caller: Principal, fence_id: str | None) -> set[str]:
    """The fences whose events the caller asks for and may see (an unknown one: 404)."""
    view = _ready(fences_view(request))
    if fence_id is not None:
        return {_visible_fence(request, fence_id, caller).fence_id}
    return {d.fence_id for d in view.definitions() if _visible(caller, d)}


@router.get(
    "/geofences/events",
    summary="Enter, dwell and exit events, newest first",
    responses=documented(404, 503),
)
async def list_geofence_events(
    request: Request,
    caller: Caller,
    fence_id: Annotated[str | None, Query(max_length=64)] = None,
    vin: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[int | None, Query(ge=0, description="only events before (ms)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """Of the fences the caller may see and the vehicles they may read; the newest 10,000 of
    the platform are kept here (``fleet.geofence-events`` holds them all)."""
    fences = _chosen_events(request, caller, fence_id)
    events = fences_view(request).events(fences, vin, before, limit, caller.may_read_vehicle)
    rows = [msgspec.to_builtins(e) for e in events]
    return JSONResponse({"events": rows})


@router.get(
    "/geofences/events/live",
    summary="Enter, dwell and exit events as they happen (SSE)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **documented(404, 503)},
)
async def live_geofence_events(
    request: Request,
    caller: Caller,
    fence_id: Annotated[str | None, Query(max_length=64)] = None,
    vin: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse:
    """``geofence`` events, each one enter, dwell or exit as ``fleet.geofence-events`` holds
    it, with its ``event_id`` as the SSE id; a ``ready`` event first."""
    fences = _chosen_events(request, caller, fence_id)
    view = fences_view(request)
    drawn_by_caller = fence_id is None

    def chosen(event: GeofenceEvent) -> bool:
        known = event.fence_id in fences
        if drawn_by_caller and not known:  # a fence drawn after the stream opened
            definition = view.definition(event.fence_id)
            known = definition is not None and _visible(caller, definition)
        return known and (vin is None or event.vin == vin) and caller.may_read_vehicle(event.vin)

    def to_frame(event: GeofenceEvent) -> bytes:
        return frame("geofence", event.event_id, _encode(event))

    return live_stream(view.listen, chosen, to_frame)


def _visible_fence(request: Request, fence_id: str, caller: Principal) -> GeofenceDefinition:
    """The fence, if the caller may see it; 404 otherwise (its existence is not told)."""
    definition = _ready(fences_view(request)).definition(fence_id)
    if definition is None or not _visible(caller, definition):
        raise ApiError(404, "unknown-geofence", f"no geofence {fence_id}")
    return definition


@router.get(
    "/geofences/{fence_id}",
    summary="A geofence and the vehicles inside it now",
    responses=documented(404, 503),
)
async def get_geofence(request: Request, fence_id: FenceIdPath, caller: Caller) -> JSONResponse:
    definition = _visible_fence(request, fence_id, caller)
    inside = fences_view(request).inside(fence_id)
    body: dict[str, Any] = msgspec.to_builtins(definition)
    body["inside"] = [
        {"vin": vin, "since": since}
        for vin, since in inside.items()
        if caller.may_read_vehicle(vin)
    ]
    return JSONResponse(body)


@router.delete(
    "/geofences/{fence_id}",
    status_code=204,
    summary="Delete a geofence (its events stay; a car inside leaves without an exit event)",
    responses=documented(404, 503),
)
async def delete_geofence(request: Request, fence_id: FenceIdPath, caller: Caller) -> Response:
    definition = _visible_fence(request, fence_id, caller)
    if not (caller.role is UserRole.FLEET_ADMIN or definition.owner == caller.name):
        raise ApiError(403, "forbidden", f"the {caller.role.value} role deletes no geofences")
    await geofences_state(request).write(fence_id, None)
    return Response(status_code=204)
