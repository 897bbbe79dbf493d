"""Geofences through the API without a broker: drawn, listed, deleted, their events and who is
inside; who may do what; every bad shape refused with 422 and its reason."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

from starlette.requests import Request

from fleetlink.api.geofences import live_geofence_events
from fleetlink.contracts.codec import decode, encode
from fleetlink.contracts.geofences import FenceEventKind, GeofenceDefinition, fence_event
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.access import Principal
from fleetlink.security.users import UserRole
from tests.support.api import CAR, OTHER, Api, run, running_api

LAT0, LON0 = 52.52, 13.40
T0 = 1_800_000_000_000


def ring(*points: tuple[float, float]) -> list[list[float]]:
    """A ring of (east, north) metres around (LAT0, LON0), as GeoJSON [lon, lat]."""
    per_lon = 111_320 * math.cos(math.radians(LAT0))
    return [[LON0 + e / per_lon, LAT0 + n / 111_320] for e, n in points]


SQUARE = ring((0, 0), (200, 0), (200, 200), (0, 200), (0, 0))


def polygon(*rings: list[list[float]]) -> dict[str, Any]:
    return {"polygon": {"type": "Polygon", "coordinates": list(rings)}}


CIRCLE = {"center": {"latitude": LAT0, "longitude": LON0}, "radius_m": 150}


async def draw(api: Api, who: dict[str, str], **body: Any) -> tuple[int, dict[str, Any]]:
    reply = await api.client.post("/v1/geofences", json=body, headers=who)
    result: dict[str, Any] = reply.json()
    return reply.status_code, result


async def listed(api: Api, who: dict[str, str]) -> list[str]:
    reply = await api.client.get("/v1/geofences", headers=who)
    assert reply.status_code == 200, reply.text
    return [fence["name"] for fence in reply.json()["geofences"]]


def test_an_admin_fences_every_car_and_an_owner_only_their_own(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            status, depot = await draw(api, api.admin, name="depot", **CIRCLE, dwell_s=600)
            assert status == 201, depot
            assert depot["owner"] == "ada"
            assert "vins" not in depot
            status, home = await draw(
                api,
                api.owner,
                name="home",
                **polygon(SQUARE),
                vins=[CAR, CAR],
            )
            assert status == 201, home
            assert home["vins"] == [CAR]
            # both are on the compacted topic, keyed by their ids, as the app reads them
            records = api.kafka.records(api.settings.topic_map()[KafkaTopic.GEOFENCES])
            written = {r.key(): decode(GeofenceDefinition, r.value()) for r in records}
            assert set(written) == {depot["fence_id"].encode(), home["fence_id"].encode()}
            assert written[home["fence_id"].encode()].polygon is not None
            assert await listed(api, api.admin) == ["depot", "home"]
            assert await listed(api, api.viewer) == ["depot", "home"]
            assert await listed(api, api.owner) == ["home"]
            assert await listed(api, api.service) == []
            hidden = await api.client.get(f"/v1/geofences/{depot['fence_id']}", headers=api.owner)
            assert (hidden.status_code, hidden.json()["error"]) == (404, "unknown-geofence")

    run(scenario())


REFUSED_DRAWERS = [
    ("owner", {"vins": [OTHER]}, 403, "forbidden"),
    ("owner", {}, 403, "forbidden"),  # an owner names their cars
    ("viewer", {"vins": [CAR]}, 403, "forbidden"),
    ("service", {"vins": [CAR]}, 403, "forbidden"),
]


def test_who_may_not_draw_a_fence(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            for who, body, status, error in REFUSED_DRAWERS:
                got, reply = await draw(api, getattr(api, who), name="x", **CIRCLE, **body)
                assert (got, reply["error"]) == (status, error), (who, reply)
            assert not api.kafka.records(api.settings.topic_map()[KafkaTopic.GEOFENCES])

    run(scenario())


BOW_TIE = ring((0, 0), (200, 200), (200, 0), (0, 200), (0, 0))


BAD_SHAPES = [
    (polygon(BOW_TIE), "invalid-geometry", "Self-intersection near ["),
    (polygon(SQUARE[:-1]), "invalid-geometry", "not closed"),
    (polygon([[181.0, 0], [1, 1], [0, 1], [181.0, 0]]), "invalid-geometry", "out of range"),
    (polygon(SQUARE * 60, SQUARE * 60), "invalid-geometry", "at most 500 positions"),
    (polygon(SQUARE * 101), "invalid-request", ""),  # one ring over the limit: the schema's
    ({**polygon(SQUARE), **CIRCLE}, "invalid-geometry", "not both"),
    ({"center": CIRCLE["center"]}, "invalid-geometry", "radius_m"),
    ({**CIRCLE, "radius_m": 10}, "invalid-request", ""),  # under the 50 m documented
    ({"center": {"latitude": 91, "longitude": 0}, "radius_m": 100}, "invalid-request", ""),
    ({**CIRCLE, "vins": ["NOT-A-VIN"]}, "invalid-request", ""),
]


def test_a_bad_shape_is_refused_with_422_and_the_reason(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            for shape, error, says in BAD_SHAPES:
                status, reply = await draw(api, api.admin, name="bad", **shape)
                assert (status, reply["error"]) == (422, error), (shape, reply)
                assert says in str(reply["detail"])
            assert not api.kafka.records(api.settings.topic_map()[KafkaTopic.GEOFENCES])

    run(scenario())


def test_delete_writes_a_tombstone_and_only_whoever_may(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            _, depot = await draw(api, api.admin, name="depot", **CIRCLE)
            _, home = await draw(api, api.owner, name="home", **CIRCLE, vins=[CAR])
            path = f"/v1/geofences/{depot['fence_id']}"
            viewer = await api.client.delete(path, headers=api.viewer)
            assert (viewer.status_code, viewer.json()["error"]) == (403, "forbidden")
            owner = await api.client.delete(path, headers=api.owner)
            assert owner.status_code == 404  # not one of theirs: not even told it exists
            mine = await api.client.delete(f"/v1/geofences/{home['fence_id']}", headers=api.owner)
            assert mine.status_code == 204
            records = api.kafka.records(api.settings.topic_map()[KafkaTopic.GEOFENCES])
            theirs = [r.value() for r in records if r.key() == home["fence_id"].encode()]
            assert len(theirs) == 2
            assert theirs[-1] is None  # the tombstone, after the fence
            assert await listed(api, api.admin) == ["depot"]
            bad = await api.client.delete("/v1/geofences/%20bad", headers=api.admin)
            assert (bad.status_code, bad.json()["error"]) == (422, "invalid-fence-id")

    run(scenario())


def test_an_owner_draws_at_most_the_limit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path, apps={"fleet": {"fences_per_owner": 1}}) as api:
            assert (await draw(api, api.owner, name="a", **CIRCLE, vins=[CAR]))[0] == 201
            status, reply = await draw(api, api.owner, name="b", **CIRCLE, vins=[CAR])
            assert (status, reply["error"]) == (409, "too-many-geofences")
            assert (await draw(api, api.admin, name="c", **CIRCLE))[0] == 201

    run(scenario())


def test_events_and_who_is_inside_as_the_caller_may_see_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            _, depot = await draw(api, api.admin, name="depot", **CIRCLE)
            _, home = await draw(api, api.owner, name="home", **CIRCLE, vins=[CAR])
            topic = api.settings.topic_map()[KafkaTopic.GEOFENCE_EVENTS]
            enter, leave = FenceEventKind.ENTER, FenceEventKind.EXIT
            events = [
                fence_event(depot["fence_id"], CAR, enter, T0, T0, (LAT0, LON0)),
                fence_event(depot["fence_id"], OTHER, enter, T0 + 1, T0 + 1),
                fence_event(home["fence_id"], CAR, enter, T0 + 2, T0 + 2),
                fence_event(depot["fence_id"], CAR, leave, T0 + 60_000, T0),
                fence_event(depot["fence_id"], CAR, leave, T0 + 60_000, T0),  # a replay's
            ]
            for event in events:
                api.kafka.append(topic, encode(event), event.vin.encode())
            view = api.client._transport.app.state.geofences.view  # type: ignore[attr-defined]
            for _ in range(300):
                if len(view.events(None, None, None, 100)) == 4:
                    break
                await asyncio.sleep(0.01)
            every = await api.client.get("/v1/geofences/events", headers=api.admin)
            assert [(e["kind"], e["ts"] - T0) for e in every.json()["events"]] == [
                ("exit", 60_000),
                ("enter", 2),
                ("enter", 1),
                ("enter", 0),
            ]
            assert every.json()["events"][0]["dwell_s"] == 60.0
            theirs = await api.client.get("/v1/geofences/events", headers=api.owner)
            assert [e["fence_id"] for e in theirs.json()["events"]] == [home["fence_id"]]
            one_car = await api.client.get(
                "/v1/geofences/events", params={"vin": OTHER}, headers=api.viewer
            )
            assert [e["vin"] for e in one_car.json()["events"]] == [OTHER]
            inside = await api.client.get(f"/v1/geofences/{depot['fence_id']}", headers=api.admin)
            assert inside.json()["inside"] == [{"vin": OTHER, "since": T0 + 1}]
            unknown = await api.client.get(
                "/v1/geofences/events", params={"fence_id": depot["fence_id"]}, headers=api.owner
            )
            assert unknown.status_code == 404

    run(scenario())


def test_a_bad_fence_on_the_topic_is_skipped_not_fatal(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            topic = api.settings.topic_map()[KafkaTopic.GEOFENCES]
            api.kafka.append(topic, b"\xff not json", b"f1")
            raw = {"fence_id": "f2", "name": "b", "owner": "x", "created_at": 1, **polygon(BOW_TIE)}
            api.kafka.append(topic, encode(raw), b"f2")
            await draw(api, api.admin, name="fine", **CIRCLE)
            view = api.client._transport.app.state.geofences.view  # type: ignore[attr-defined]
            for _ in range(300):
                if sum(view.skipped.counts.values()) == 2:
                    break
                await asyncio.sleep(0.01)
            assert sum(view.skipped.counts.values()) == 2
            assert await listed(api, api.admin) == ["fine"]
            ready = await api.client.get("/readyz")
            assert ready.status_code == 200, ready.text

    run(scenario())


def test_the_live_stream_sends_each_event_the_caller_may_see(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            app = api.client._transport.app  # type: ignore[attr-defined]
            _, depot = await draw(api, api.admin, name="depot", **CIRCLE)
            olga = Principal("olga", UserRole.OWNER, frozenset({CAR}))
            request = Request({"type": "http", "app": app, "headers": [], "query_string": b""})
            response = await live_geofence_events(request, olga, fence_id=None, vin=None)
            body = response.body_iterator
            assert await anext(body) == b"event: ready\ndata: {}\n\n"
            # drawn after the stream opened: its events come too
            _, home = await draw(api, api.owner, name="home", **CIRCLE, vins=[CAR])
            topic = api.settings.topic_map()[KafkaTopic.GEOFENCE_EVENTS]
            enter = FenceEventKind.ENTER
            for event in (
                fence_event(depot["fence_id"], CAR, enter, T0, T0),  # not her fence
                fence_event(home["fence_id"], OTHER, enter, T0, T0),  # not her car
                fence_event(home["fence_id"], CAR, enter, T0 + 5, T0 + 5),
            ):
                api.kafka.append(topic, encode(event), event.vin.encode())
            frame = await asyncio.wait_for(anext(body), 5)
            event_id = f"{home['fence_id']}/{CAR}/enter/{T0 + 5}"
            assert frame.startswith(f"event: geofence\nid: {event_id}\ndata: ".encode())
            assert frame.count(b"event: geofence") == 1
            await body.aclose()  # type: ignore[attr-defined]

    run(scenario())
