"""The dashboard as the API serves it: the built page (missing is a failure: the bootstrap
builds it), every asset it names, its content policy, and the street map with its ETag."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fleetlink.api.dashboard import BUILT
from fleetlink.sim.streets import write_street_map
from tests.support.api import run, running_api


def test_the_built_page_and_every_asset_it_names_are_served(tmp_path: Path) -> None:
    assert (BUILT / "index.html").is_file(), "no dashboard: run scripts/bootstrap.sh (npm build)"

    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            page = await api.client.get("/ui/")  # no credential: the page itself holds no data
            assert page.status_code == 200
            policy = page.headers["content-security-policy"]
            assert "default-src 'self'" in policy
            assert "connect-src 'self'" in policy
            named = re.findall(r'(?:src|href)="(/ui/assets/[^"?]+)', page.text)
            assert sorted(named) == [
                "/ui/assets/main.js",
                "/ui/assets/maplibre-gl.css",
                "/ui/assets/style.css",
            ]
            for asset in named:
                assert (await api.client.get(asset)).status_code == 200, asset
            bundle = (await api.client.get("/ui/assets/main.js")).text
            # MapLibre loads its worker from beside the bundle
            assert "maplibre-gl-worker.mjs" in bundle
            worker = await api.client.get("/ui/assets/maplibre-gl-worker.mjs")
            assert worker.status_code == 200
            assert (await api.client.get("/ui")).headers["location"] == "/ui/"

    run(scenario())


def test_the_street_map_is_served_to_callers_with_an_etag(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            missing = await api.client.get("/v1/map/streets", headers=api.viewer)
            assert (missing.status_code, missing.json()["error"]) == (404, "no-street-map")
            streets = write_street_map(api.settings.street_map_file())
            assert streets > 200  # a 12 x 12 grid: 264 streets, each drawn once
            assert (await api.client.get("/v1/map/streets")).status_code == 401
            reply = await api.client.get("/v1/map/streets", headers=api.owner)
            assert reply.status_code == 200
            assert reply.headers["content-type"] == "application/geo+json"
            collection = json.loads(reply.content)
            assert len(collection["features"]) == streets
            lon, lat = collection["features"][0]["geometry"]["coordinates"][0]
            assert 52.5 < lat < 52.54
            assert 13.37 < lon < 13.43
            again = await api.client.get(
                "/v1/map/streets",
                headers={**api.owner, "If-None-Match": reply.headers["etag"]},
            )
            assert again.status_code == 304

    run(scenario())
