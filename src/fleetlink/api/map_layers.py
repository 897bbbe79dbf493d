"""What the dashboard's map draws over the streets, as GeoJSON made here (H3 cell outlines
included, so the page needs no H3 library): hazards in force with their warning cells, the
chance of a free spot per parking cell, and the geofences the caller may see."""

from __future__ import annotations

import math
from typing import Annotated, Any

import h3
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fleetlink.api.auth import Caller
from fleetlink.api.errors import AUTHENTICATED, documented, read_when_ready
from fleetlink.apps.fleet.fence_model import FenceReadModel
from fleetlink.apps.hazards.read_model import HazardReadModel
from fleetlink.apps.parking.read_model import ParkingReadModel
from fleetlink.contracts.geofences import GeofenceDefinition
from fleetlink.contracts.hazards import Hazard

router = APIRouter(prefix="/v1", tags=["dashboard"])

EARTH_RADIUS_M = 6_371_000.0
MAX_RADIUS_M = 20_000.0
CIRCLE_SIDES = 48

Feature = dict[str, Any]


def collection(features: list[Feature]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def cell_outline(cell: str) -> dict[str, Any]:
    """An H3 cell as a GeoJSON Polygon (``cells_to_geo`` gives ``[lon, lat]`` already;
    ``cell_to_boundary`` would give ``(lat, lon)``)."""
    shape: dict[str, Any] = h3.cells_to_geo([cell])
    return shape


def circle(lat: float, lon: float, radius_m: float) -> dict[str, Any]:
    """A circle on the map as a closed polygon of ``CIRCLE_SIDES`` sides."""
    ring = []
    for side in range(CIRCLE_SIDES + 1):
        angle = 2 * math.pi * (side % CIRCLE_SIDES) / CIRCLE_SIDES
        dlat = math.degrees(radius_m * math.cos(angle) / EARTH_RADIUS_M)
        dlon = math.degrees(
            radius_m * math.sin(angle) / (EARTH_RADIUS_M * math.cos(math.radians(lat)))
        )
        ring.append([round(lon + dlon, 7), round(lat + dlat, 7)])
    return {"type": "Polygon", "coordinates": [ring]}


def hazard_features(hazards: list[Hazard]) -> list[Feature]:
    return [
        {
            "type": "Feature",
            "geometry": cell_outline(hazard.cell),
            "properties": {
                "hazard_id": hazard.hazard_id,
                "cause": hazard.cause,
                "group": hazard.group.value,
                "state": hazard.state.value,
                "reporters": hazard.reporters,
                "latitude": hazard.latitude,
                "longitude": hazard.longitude,
            },
        }
        for hazard in hazards
    ]


def parking_features(p_free_by_cell: dict[str, list[float]]) -> list[Feature]:
    """Each cell with the chance that at least one of its known spots is free."""
    features = []
    for cell, chances in sorted(p_free_by_cell.items()):
        p_none = math.prod(1.0 - p for p in chances)
        features.append(
            {
                "type": "Feature",
                "geometry": cell_outline(cell),
                "properties": {
                    "cell": cell,
                    "p_any": round(1.0 - p_none, 3),
                    "spots": len(chances),
                },
            }
        )
    return features


def fence_features(fences: list[GeofenceDefinition]) -> list[Feature]:
    features = []
    for fence in fences:
        if fence.polygon is not None:
            geometry: dict[str, Any] = {"type": "Polygon", "coordinates": fence.polygon.coordinates}
        elif fence.circle is not None:
            geometry = circle(fence.circle.latitude, fence.circle.longitude, fence.circle.radius_m)
        else:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {"fence_id": fence.fence_id, "name": fence.name},
            }
        )
    return features


@router.get(
    "/map/layers",
    summary="Hazards, parking cells and geofences around a place, as GeoJSON for the map",
    responses=documented(*AUTHENTICATED, 503),
)
async def map_layers(
    request: Request,
    caller: Caller,
    lat: Annotated[float, Query(ge=-90, le=90)],
    lon: Annotated[float, Query(ge=-180, le=180)],
    radius_m: Annotated[float, Query(gt=0, le=MAX_RADIUS_M)] = 3000.0,
) -> JSONResponse:
    """``hazards``: the warning cell of each hazard in force; ``parking``: each cell with known
    spots, ``p_any`` the chance at least one is free now; ``geofences``: those the caller may
    see (admins and viewers: all; owners: theirs)."""
    hazards: HazardReadModel = read_when_ready(request.app.state.hazards, "fleet.hazards")
    parking: ParkingReadModel = read_when_ready(request.app.state.parking, "fleet.parking")
    fences: FenceReadModel = read_when_ready(request.app.state.geofences.view, "the geofences")
    near = parking.near(lat, lon, radius_m, limit=100_000)
    by_cell: dict[str, list[float]] = {}
    for found in near.spots:
        by_cell.setdefault(found.cell, []).append(found.p_free)
    visible = [f for f in fences.definitions() if caller.sees_everything or f.owner == caller.name]
    return JSONResponse(
        {
            "hazards": collection(
                hazard_features([h for _, h in hazards.near(lat, lon, radius_m)])
            ),
            "parking": collection(parking_features(by_cell)),
            "geofences": collection(fence_features(visible)),
        }
    )
