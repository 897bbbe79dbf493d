"""The map's overlays as the API makes them: hazards as their warning cells, parking cells with
the chance one of their spots is free, geofences as the caller may see them; H3 outlines in
GeoJSON's (lon, lat) order."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import h3
import pytest

from fleetlink.api.map_layers import circle, parking_features
from fleetlink.contracts.codec import encode
from fleetlink.contracts.geofences import FenceCircle, GeofenceDefinition
from fleetlink.contracts.topics import KafkaTopic
from tests.support.api import Api, run, running_api
from tests.unit.api.test_hazards_api import hazard
from tests.unit.api.test_hazards_api import write as write_hazards
from tests.unit.api.test_parking_api import HERE, cell_record, spot
from tests.unit.api.test_parking_api import write as write_parking


def test_a_circle_is_a_closed_polygon_at_its_radius() -> None:
    [ring] = circle(52.52, 13.40, 500.0)["coordinates"]
    assert ring[0] == ring[-1]
    for lon, lat in ring:
        dlat = math.radians(lat - 52.52) * 6_371_000
        dlon = math.radians(lon - 13.40) * 6_371_000 * math.cos(math.radians(52.52))
        assert math.hypot(dlat, dlon) == pytest.approx(500.0, rel=0.01)


def test_a_cells_chance_is_that_one_of_its_spots_is_free() -> None:
    cell = str(h3.latlng_to_cell(52.52, 13.40, 12))
    [feature] = parking_features({cell: [0.5, 0.5]})
    assert feature["properties"] == {"cell": cell, "p_any": 0.75, "spots": 2}
    lon, lat = feature["geometry"]["coordinates"][0][0]
    assert (52.5 < lat < 52.54, 13.38 < lon < 13.42) == (True, True)  # (lon, lat), not swapped


def test_hazards_parking_and_the_callers_geofences_around_a_place(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            write_hazards(api, hazard("h-1", HERE), hazard("far", (48.13, 11.57)))
            write_parking(api, cell_record(HERE, spot("a", HERE), spot("b", HERE)))
            fences = api.settings.topic_map()[KafkaTopic.GEOFENCES]
            for owner in ("ada", "someone-else"):
                fence = GeofenceDefinition(
                    fence_id=f"f-{owner}",
                    name=f"depot of {owner}",
                    owner=owner,
                    created_at=1,
                    circle=FenceCircle(latitude=HERE[0], longitude=HERE[1], radius_m=300.0),
                )
                api.kafka.append(fences, encode(fence), fence.fence_id.encode())
            place = {"lat": HERE[0], "lon": HERE[1], "radius_m": 2000}
            # each layer has its own read model: wait until all three have read what was written
            layers = await until(
                api,
                lambda got: (
                    len(got["geofences"]["features"]) == 2
                    and len(got["parking"]["features"]) == 1
                    and len(got["hazards"]["features"]) == 1
                ),
                place,
            )
            [shown] = layers["hazards"]["features"]
            assert shown["properties"]["hazard_id"] == "h-1"  # Munich is not around
            assert shown["geometry"]["type"] == "Polygon"
            [cell] = layers["parking"]["features"]
            assert cell["properties"]["spots"] == 2
            assert 0 < cell["properties"]["p_any"] <= 1
            owner = await api.client.get("/v1/map/layers", params=place, headers=api.owner)
            assert owner.json()["geofences"]["features"] == []  # olga drew none
            assert (await api.client.get("/v1/map/layers", params=place)).status_code == 401
            bad = await api.client.get(
                "/v1/map/layers", params={"lat": 91, "lon": 0}, headers=api.admin
            )
            assert bad.status_code == 422

    run(scenario())


async def until(api: Api, done: Any, place: dict[str, float]) -> dict[str, Any]:
    for _ in range(200):
        reply = await api.client.get("/v1/map/layers", params=place, headers=api.admin)
        if reply.status_code == 200 and done(reply.json()):
            result: dict[str, Any] = reply.json()
            return result
        await asyncio.sleep(0.02)
    raise AssertionError(f"the layers never showed it: {reply.text[:300]}")
