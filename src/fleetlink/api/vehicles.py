"""The vehicles: who is online (``fleet.presence``), where each one is and what it does
(``fleet.vehicle-state``), its trips and its driving score (``fleet.trips``), live or asked."""

from __future__ import annotations

import time
from typing import Annotated, Any, Final

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from fleetlink.api.auth import Caller, require_vehicle
from fleetlink.api.commands import commands_state
from fleetlink.api.errors import AUTHENTICATED, ApiError, VinPath, documented, read_when_ready
from fleetlink.api.sse import coalesced_stream, frame
from fleetlink.apps.fleet.read_model import FleetReadModel
from fleetlink.apps.fleet.view import Box, Circle, VehicleFilter, VehicleQuery
from fleetlink.apps.maintenance.read_model import AlertReadModel
from fleetlink.contracts.fleet import VehicleState
from fleetlink.contracts.models import PresenceStatus
from fleetlink.security.access import Principal

router = APIRouter(prefix="/v1", tags=["vehicles"], responses=documented(*AUTHENTICATED))

_MAX_RADIUS_M: Final = 1_000_000.0
_DAY_MS: Final = 86_400_000
_LIVE_EVERY_S: Final = 1.0  # one frame a second at most, per client
_encode = msgspec.json.Encoder().encode

Latitude = Annotated[float | None, Query(ge=-90, le=90, description="WGS 84 degrees")]
Longitude = Annotated[float | None, Query(ge=-180, le=180, description="WGS 84 degrees")]


def fleet_view(request: Request) -> FleetReadModel:
    view: FleetReadModel = request.app.state.fleet
    return view


def _ready(view: FleetReadModel) -> None:
    read_when_ready(view, "the fleet's state")


def _filters(
    request: Request,
    online: Annotated[bool | None, Query(description="only online (true) or offline")] = None,
    bbox: Annotated[
        str | None,
        Query(description="only vehicles in south,west,north,east (WGS 84 degrees)"),
    ] = None,
    lat: Latitude = None,
    lon: Longitude = None,
    radius_m: Annotated[
        float | None, Query(gt=0, le=_MAX_RADIUS_M, description="only within this of lat/lon")
    ] = None,
    low_battery: Annotated[
        bool,
        Query(
            description="only vehicles whose traction battery is below apps.fleet.low_battery_pct"
        ),
    ] = False,
) -> VehicleFilter:
    around = (lat, lon, radius_m)
    if any(v is not None for v in around) and any(v is None for v in around):
        raise ApiError(422, "invalid-request", "give lat, lon and radius_m together")
    if bbox is not None and lat is not None:
        raise ApiError(422, "invalid-request", "give bbox or lat/lon/radius_m, not both")
    within: Box | Circle | None = None
    if bbox is not None:
        within = _box(bbox)
    elif lat is not None and lon is not None and radius_m is not None:
        within = Circle(lat, lon, radius_m)
    below = fleet_view(request).low_battery_pct if low_battery else None
    return VehicleFilter(online, within, below)


def _box(text: str) -> Box:
    try:
        south, west, north, east = (float(part) for part in text.split(","))
    except ValueError:
        raise ApiError(
            422, "invalid-request", "bbox is four numbers: south,west,north,east"
        ) from None
    if not (-90 <= south <= north <= 90 and -180 <= west <= 180 and -180 <= east <= 180):
        raise ApiError(
            422,
            "invalid-request",
            "bbox: -90 <= south <= north <= 90, west and east within -180..180",
        )
    return Box(south, west, north, east)


Asked = Annotated[VehicleFilter, Depends(_filters)]


def _presence(request: Request) -> list[tuple[str, bool, int]]:
    presence = dict(commands_state(request).view.presence)
    return [(vin, p.status == PresenceStatus.ONLINE, p.ts) for vin, p in presence.items()]


def _state_row(state: VehicleState | None) -> dict[str, Any]:
    if state is None:
        return {}
    row: dict[str, Any] = msgspec.to_builtins(state)
    row.pop("vin")
    row.pop("online")  # the presence's, or the state's when the broker said nothing
    return row


@router.get(
    "/vehicles",
    summary="Vehicles the platform has seen, with their state: online ones first, in pages",
    responses=documented(422, 503),
)
async def list_vehicles(
    request: Request,
    caller: Caller,
    asked: Asked,
    after: Annotated[
        str | None, Query(max_length=40, description="the `next` of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> JSONResponse:
    """Each row: ``vin``, ``online`` and ``since`` (the broker's word), ``health`` (its worst
    open maintenance alert, or ``ok``), and the vehicle's latest state where the fleet app has
    written one (position, speed, heading, odometer, charge,
    ``motion``, ``last_seen``, the current trip). ``next``: the cursor of the next page."""
    view = fleet_view(request)
    if asked.reads_states():
        _ready(view)  # these filters read the states: all of them, or none
    query = VehicleQuery(asked, after, limit)
    page = view.page(query, _presence(request), caller.may_read_vehicle)
    health = _health(request, [row.vin for row in page.rows])
    rows = [
        {
            "vin": row.vin,
            "online": row.online,
            "since": row.since,
            "health": health[row.vin],
            **_state_row(row.state),
        }
        for row in page.rows
    ]
    return JSONResponse({"vehicles": rows, "total": page.total, "next": page.next})


@router.get(
    "/vehicles/live",
    summary="The vehicles' states, then their changes, live (SSE, one frame a second at most)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **documented(422)},
)
async def live_vehicles(request: Request, caller: Caller, asked: Asked) -> StreamingResponse:
    """``vehicles`` events, each a JSON array of vehicle states (as ``fleet.vehicle-state``
    holds them): first every state the caller may read, then ``ready``, then each second at
    most the latest state of every vehicle that changed."""
    view = fleet_view(request)

    def chosen(state: VehicleState) -> bool:
        return caller.may_read_vehicle(state.vin) and asked.holds(state.online, state)

    def to_frame(states: list[VehicleState]) -> bytes:
        newest = max((s.ts for s in states), default=0)
        return frame("vehicles", str(newest), _encode(sorted(states, key=lambda s: s.vin)))

    def opening() -> list[bytes]:
        states = [s for s in view.states() if chosen(s)]
        return [to_frame(states)] if states else []

    return coalesced_stream(
        view.listen, chosen, lambda state: state.vin, to_frame, _LIVE_EVERY_S, opening
    )


def _health(request: Request, vins: list[str]) -> dict[str, str]:
    """Each vehicle's worst open maintenance alert (``ok``: none), as ``/health`` says."""
    alerts: AlertReadModel = request.app.state.maintenance.view
    return alerts.health(set(vins))


def _readable_view(request: Request, caller: Principal, vin: str) -> FleetReadModel:
    """The fleet's read model, once the caller may read ``vin`` and it has read everything."""
    require_vehicle(caller, vin)
    view = fleet_view(request)
    _ready(view)
    return view


@router.get(
    "/vehicles/{vin}",
    summary="A vehicle: online or not, last seen, its full state, its health (worst alert)",
    responses=documented(403, 404),
)
async def get_vehicle(request: Request, vin: VinPath, caller: Caller) -> JSONResponse:
    require_vehicle(caller, vin)
    presence = commands_state(request).view.presence.get(vin)
    state = fleet_view(request).state(vin)
    if presence is None and state is None:
        raise ApiError(404, "unknown-vehicle", f"vehicle {vin} has never connected")
    online = presence.status == PresenceStatus.ONLINE if presence else bool(state and state.online)
    return JSONResponse(
        {
            "vin": vin,
            "online": online,
            "since": None if presence is None else presence.ts,
            "reason": None if presence is None else presence.reason,
            "state": None if state is None else msgspec.to_builtins(state),
            "health": _health(request, [vin])[vin],
        }
    )


@router.get(
    "/vehicles/{vin}/trips",
    summary="A vehicle's trips, newest first (open ones have no end)",
    responses=documented(403, 422, 503),
)
async def list_trips(
    request: Request,
    vin: VinPath,
    caller: Caller,
    before: Annotated[
        int | None, Query(ge=0, description="only trips that started before (ms since epoch)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JSONResponse:
    trips = _readable_view(request, caller, vin).trips(vin, limit, before)
    return JSONResponse({"vin": vin, "trips": [msgspec.to_builtins(t) for t in trips]})


@router.get(
    "/vehicles/{vin}/score",
    summary="A vehicle's driving score over the trips that ended in [since, until)",
    responses=documented(403, 422, 503),
)
async def driving_score(
    request: Request,
    vin: VinPath,
    caller: Caller,
    since: Annotated[
        int | None, Query(ge=0, description="ms since epoch; default 30 days ago")
    ] = None,
    until: Annotated[int | None, Query(ge=0, description="ms since epoch; default now")] = None,
) -> JSONResponse:
    """``100 - 10 x weighted harsh events per 100 km`` (braking, acceleration and cornering 1,
    a crash 10), between 0 and 100; none under 10 km (``score`` null). A vehicle's score, not a
    driver's: fleetlink knows no drivers."""
    view = _readable_view(request, caller, vin)
    end = until if until is not None else time.time_ns() // 1_000_000
    start = since if since is not None else end - 30 * _DAY_MS
    if start >= end:
        raise ApiError(422, "invalid-request", "since must be before until")
    return JSONResponse(msgspec.to_builtins(view.score(vin, start, end)))
