"""Free curb parking near a place (``/v1/parking``), from the read model of ``fleet.parking``."""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fleetlink.api.auth import Caller
from fleetlink.api.errors import AUTHENTICATED, ApiError, documented, read_when_ready
from fleetlink.apps.parking.read_model import ParkingReadModel
from fleetlink.apps.parking.view import (
    DISTANCE_SCALE_M,
    HIGH_P_ANY,
    MEDIUM_P_ANY,
    P_FLOOR,
    AreaSummary,
    Availability,
    SpotNearby,
)
from fleetlink.contracts.parking import CurbSide, SpotSource, Trend
from fleetlink.security.access import Principal

router = APIRouter(prefix="/v1", tags=["parking"], responses=documented(*AUTHENTICATED))

_DEFAULT_RADIUS_M: Final = 500.0
_MAX_RADIUS_M: Final = 10_000.0
_DEFAULT_LIMIT: Final = 20
_MAX_LIMIT: Final = 200

Latitude = Annotated[float, Query(ge=-90, le=90, description="WGS 84 degrees")]
Longitude = Annotated[float, Query(ge=-180, le=180, description="WGS 84 degrees")]
Radius = Annotated[float, Query(gt=0, le=_MAX_RADIUS_M, description="metres around lat/lon")]
Limit = Annotated[int, Query(ge=1, le=_MAX_LIMIT, description="at most this many spots")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpotAnswer(_Strict):
    """A stretch of curb the fleet saw free, and how likely it is free now."""

    spot_id: str
    cell: str = Field(description="its H3 cell (the key of fleet.parking)")
    latitude: float
    longitude: float
    heading_deg: float = Field(description="the direction of travel along this side")
    side: CurbSide = Field(description="the side of the street, seen in heading_deg")
    length_m: float = Field(description="the gap's length along the curb")
    first_ts: int = Field(description="first seen free this time (epoch ms)")
    observed_ts: int = Field(description="last seen free (epoch ms)")
    reporters: int = Field(description="distinct cars that saw it free (or left it)")
    source: SpotSource = Field(description="gap: seen free in passing; unparked: a car left it")
    lifetime_s: float = Field(description="the mean time a free spot here stays free")
    p_free: float = Field(description="exp(-age_s / lifetime_s)")
    age_s: float = Field(description="since it was last seen free (s)")
    distance_m: float = Field(description="from lat/lon")
    score: float = Field(description=f"p_free * exp(-distance_m / {DISTANCE_SCALE_M:g})")


class SummaryAnswer(_Strict):
    """The cells reaching into the circle, and every spot in it the list could show (whatever
    the limit)."""

    cells: int = Field(description="cells of the area the finder has written")
    free_estimate: float = Field(description="the spots likely free: the sum of their p_free")
    p_any: float = Field(description="the chance that at least one is: 1 - prod(1 - p_free)")
    level: Availability = Field(
        description=f"p_any: high from {HIGH_P_ANY:g}, medium from {MEDIUM_P_ANY:g}, else low"
    )
    trend: Trend = Field(description="spots freed against spots taken in the trailing window")
    no_parking: int = Field(description="stretches learned to be no parking spots (left out)")
    lifetime_s: float | None = Field(description="the cells' median free-spot lifetime")
    updated_at: int | None = Field(description="the latest cell record's event time (epoch ms)")


class ParkingAnswer(_Strict):
    as_of: int = Field(description="the time the probabilities are for (epoch ms)")
    spots: list[SpotAnswer]
    summary: SummaryAnswer


_DESCRIPTION: Final = f"""The stretches of curb the fleet saw free, each with the probability that
it still is: a free spot is taken at a constant rate, so `p_free = exp(-age_s / lifetime_s)`, with
the mean lifetime the finder learned for the area (a spot seen free one lifetime ago: e^-1, 0.37).

Spots less likely free than the finder drops (`apps.parking.drop_below_p`, {P_FLOOR:g} by default)
are left out; the rest are ranked by `score = p_free * exp(-distance_m / {DISTANCE_SCALE_M:g})`,
so a spot twice as likely free ranks level with one about 350 m nearer, and cut to `limit`.
`summary` describes the whole area, whatever the limit."""


def parking_view(request: Request) -> ParkingReadModel:
    view: ParkingReadModel = request.app.state.parking
    return view


def _readable(caller: Principal) -> None:
    if not caller.may_read_parking:
        raise ApiError(403, "forbidden", f"the {caller.role.value} role reads no parking")


def _ready(view: ParkingReadModel) -> None:
    read_when_ready(view, "fleet.parking")


@router.get(
    "/parking",
    summary="Free curb parking within radius_m of lat/lon: the likeliest free and nearest first",
    description=_DESCRIPTION,
    responses={
        200: {"model": ParkingAnswer, "description": "The spots and the area's summary"},
        **documented(403, 422, 503),
    },
)
async def find_parking(
    request: Request,
    caller: Caller,
    lat: Latitude,
    lon: Longitude,
    radius_m: Radius = _DEFAULT_RADIUS_M,
    limit: Limit = _DEFAULT_LIMIT,
) -> JSONResponse:
    _readable(caller)
    view = parking_view(request)
    _ready(view)
    found = view.near(lat, lon, radius_m, limit)
    answer = {
        "as_of": found.as_of,
        "spots": [_spot_row(nearby) for nearby in found.spots],
        "summary": _summary_row(found.summary),
    }
    return JSONResponse(answer)


def _spot_row(nearby: SpotNearby) -> dict[str, object]:
    return {
        **msgspec.to_builtins(nearby.spot),
        "cell": nearby.cell,
        "p_free": round(nearby.p_free, 3),
        "age_s": round(nearby.age_s, 1),
        "distance_m": round(nearby.distance_m, 1),
        "score": round(nearby.score, 6),
    }


def _summary_row(summary: AreaSummary) -> dict[str, object]:
    lifetime_s = summary.lifetime_s
    return {
        "cells": summary.cells,
        "free_estimate": round(summary.free_estimate, 2),
        "p_any": round(summary.p_any, 3),
        "level": summary.level.value,
        "trend": summary.trend.value,
        "no_parking": summary.no_parking,
        "lifetime_s": None if lifetime_s is None else round(lifetime_s, 1),
        "updated_at": summary.updated_at,
    }
