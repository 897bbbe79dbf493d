"""Hazards through the API without a broker: the read model of ``fleet.hazards`` near a place,
and every refusal."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from fleetlink.contracts.codec import encode
from fleetlink.contracts.geo import cell_of
from fleetlink.contracts.hazards import Hazard, HazardGroup, HazardState
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.users import UserRole
from tests.support.api import CAR, Api, run, running_api
from tests.support.stack import user_token

SPOT = (52.5200, 13.4050)
NEAR = (52.5245, 13.4050)  # 500 m north
FAR = (52.6000, 13.4050)  # 8.9 km north


def hazard(hazard_id: str, where: tuple[float, float], **changes: Any) -> Hazard:
    now = time.time_ns() // 1_000_000
    fields: dict[str, Any] = {
        "hazard_id": hazard_id,
        "state": HazardState.CONFIRMED,
        "group": HazardGroup.EMERGENCY_BRAKE,
        "cause": 99,
        "sub_cause": 1,
        "cell": cell_of(*where),
        "latitude": where[0],
        "longitude": where[1],
        "reporters": 3,
        "first_ts": now - 5000,
        "confirmed_ts": now - 1000,
        "ts": now - 1000,
        "expires_at": now + 300_000,
    }
    return Hazard(**(fields | changes))


def write(api: Api, *hazards: Hazard) -> None:
    topic = api.settings.topic_map()[KafkaTopic.HAZARDS]
    for item in hazards:
        api.kafka.append(topic, encode(item), item.cell.encode())


async def listed(api: Api, expected: int, **params: Any) -> list[dict[str, Any]]:
    for _ in range(200):
        reply = await api.client.get("/v1/hazards", params=params, headers=api.viewer)
        assert reply.status_code == 200, reply.text
        if reply.json()["total"] == expected:
            rows: list[dict[str, Any]] = reply.json()["hazards"]
            return rows
        await asyncio.sleep(0.01)
    raise AssertionError(f"never {expected} hazards: {reply.json()}")


def test_the_hazards_in_force_near_a_place_nearest_first(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            now = time.time_ns() // 1_000_000
            write(
                api,
                hazard("near", NEAR),
                hazard("here", SPOT),
                hazard("far", FAR),
                hazard("expired", SPOT, expires_at=now - 1),
                hazard("gone", SPOT),
                hazard("gone", SPOT, state=HazardState.CLEARED, ts=now),
            )
            rows = await listed(api, 2, lat=SPOT[0], lon=SPOT[1], radius_m=1000)
            assert [r["hazard_id"] for r in rows] == ["here", "near"]
            assert rows[0]["distance_m"] == 0.0
            assert 490 < rows[1]["distance_m"] < 510
            assert rows[0]["cause"] == 99
            assert rows[0]["state"] == "confirmed"
            everywhere = await listed(api, 3)
            assert {r["hazard_id"] for r in everywhere} == {"here", "near", "far"}
            # an update replaces the step held; a clearance is final, whatever comes after it
            write(
                api,
                hazard("here", SPOT, state=HazardState.UPDATED, reporters=4, ts=now),
                hazard("near", NEAR, state=HazardState.CLEARED, ts=now),
                hazard("near", NEAR),
            )
            rows = await listed(api, 1, lat=SPOT[0], lon=SPOT[1], radius_m=1000)
            assert rows[0]["reporters"] == 4
            assert rows[0]["state"] == "updated"

    run(scenario())


def test_every_role_reads_hazards_and_bad_requests_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            write(api, hazard("here", SPOT))
            for role in UserRole:
                name = CAR if role is UserRole.VEHICLE else f"someone-{role.value}"
                auth = user_token(api.settings, name, role)
                reply = await api.client.get("/v1/hazards", headers=auth)
                assert reply.status_code == 200, (role, reply.text)
            refusals: list[tuple[dict[str, Any], dict[str, str] | None, int, str]] = [
                ({}, {}, 401, "unauthenticated"),
                ({"lat": SPOT[0]}, None, 422, "invalid-request"),
                ({"lon": SPOT[1]}, None, 422, "invalid-request"),
                ({"lat": 91, "lon": 0}, None, 422, "invalid-request"),
                ({"lat": 0, "lon": 0, "radius_m": 0}, None, 422, "invalid-request"),
                ({"lat": 0, "lon": 0, "radius_m": 10**6}, None, 422, "invalid-request"),
                ({"lat": "north", "lon": 0}, None, 422, "invalid-request"),
            ]
            for params, auth, status, error in refusals:
                reply = await api.client.get(
                    "/v1/hazards", params=params, headers=api.viewer if auth is None else auth
                )
                assert (reply.status_code, reply.json()["error"]) == (status, error), params
            stream = await api.client.get(
                "/v1/hazards/live", params={"lat": SPOT[0]}, headers=api.viewer
            )
            assert (stream.status_code, stream.json()["error"]) == (422, "invalid-request")

    run(scenario())


def test_a_garbage_record_is_skipped_not_fatal(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            topic = api.settings.topic_map()[KafkaTopic.HAZARDS]
            api.kafka.append(topic, b"\xff not json", b"cell")
            api.kafka.append(topic, None, b"cell")
            write(api, hazard("here", SPOT))
            assert [r["hazard_id"] for r in await listed(api, 1)] == ["here"]
            ready = await api.client.get("/readyz")
            assert ready.status_code == 200, ready.text

    run(scenario())
