"""Free parking through the API without a broker: the read model of ``fleet.parking`` near a
place, the area's summary, and every refusal."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import zlib
from pathlib import Path
from typing import Any

import h3
import pytest

from fleetlink.adapters.polling import wait_until
from fleetlink.api.parking import ParkingAnswer
from fleetlink.apps.parking.read_model import ParkingReadModel
from fleetlink.contracts.codec import encode
from fleetlink.contracts.parking import (
    PARKING_RESOLUTION,
    CurbSide,
    ParkingCell,
    ParkingSpot,
    SpotSource,
    Trend,
)
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.users import UserRole
from fleetlink.settings import load_settings
from fleetlink.testing.memory_kafka import MemoryKafka
from tests.support.api import CAR, Api, run, running_api
from tests.support.stack import user_token

HERE = (52.5200, 13.4050)
LIFETIME_S = 600.0
M_PER_DEGREE_LAT = 111_195.0  # h3's great-circle metres per degree of latitude


def north(metres: float) -> tuple[float, float]:
    return (HERE[0] + metres / M_PER_DEGREE_LAT, HERE[1])


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def cell_of(where: tuple[float, float]) -> str:
    return str(h3.latlng_to_cell(*where, PARKING_RESOLUTION))


def spot(spot_id: str, where: tuple[float, float], age_s: float = 0.0) -> ParkingSpot:
    observed = now_ms() - int(age_s * 1000)
    return ParkingSpot(
        spot_id=spot_id,
        latitude=where[0],
        longitude=where[1],
        heading_deg=270.0,
        side=CurbSide.LEFT,
        length_m=5.5,
        first_ts=observed - 30_000,
        observed_ts=observed,
        reporters=3,
        source=SpotSource.UNPARKED,
        lifetime_s=LIFETIME_S,
    )


def cell_record(
    where: tuple[float, float], *spots: ParkingSpot, ts: int | None = None, **changes: Any
) -> ParkingCell:
    fields: dict[str, Any] = {
        "cell": cell_of(where),
        "ts": now_ms() if ts is None else ts,
        "spots": list(spots),
        "lifetime_s": LIFETIME_S,
        "learned": False,
        "freed": 0,
        "taken": 0,
        "trend": Trend.STABLE,
    }
    return ParkingCell(**(fields | changes))


def write(api: Api, *records: ParkingCell) -> None:
    topic = api.settings.topic_map()[KafkaTopic.PARKING]
    for record in records:
        api.kafka.append(topic, encode(record), record.cell.encode())


def partition_mate(cell: str) -> str:
    """A neighbouring cell whose records share ``cell``'s partition (of the in-memory Kafka's
    three): read after it, a record of it shows that everything before it was read."""
    same = zlib.crc32(cell.encode()) % 3
    around = [c for k in (1, 2, 3) for c in sorted(h3.grid_ring(cell, k))]
    return next(c for c in around if zlib.crc32(c.encode()) % 3 == same)


async def found(api: Api, until: Any, **params: Any) -> dict[str, Any]:
    """The answer to ``params`` once ``until(answer)`` holds (the view reads in a thread)."""
    for _ in range(200):
        reply = await api.client.get("/v1/parking", params=params, headers=api.viewer)
        assert reply.status_code == 200, reply.text
        answer: dict[str, Any] = reply.json()
        if until(answer):
            ParkingAnswer.model_validate(answer)  # the body is what the document says
            return answer
        await asyncio.sleep(0.01)
    raise AssertionError(f"never as expected: {reply.json()}")


def ids(answer: dict[str, Any]) -> list[str]:
    return [row["spot_id"] for row in answer["spots"]]


def test_free_spots_near_a_place_likeliest_free_and_nearest_first(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            write(
                api,
                cell_record(
                    HERE,
                    spot("here-fresh", HERE),
                    spot("here-one-lifetime", north(10), age_s=LIFETIME_S),
                    spot("here-stale", north(5), age_s=4 * LIFETIME_S),  # p = 0.018
                ),
                cell_record(north(300), spot("north-300", north(300))),
                cell_record(north(2000), spot("north-2km", north(2000))),
            )
            near = {"lat": HERE[0], "lon": HERE[1], "radius_m": 1000}
            answer = await found(api, lambda a: len(a["spots"]) == 3, **near)
            # 1 * e^0, 1 * e^-0.6 = 0.549, e^-1 * e^-0.02 = 0.361; 0.018 is below the floor
            assert ids(answer) == ["here-fresh", "north-300", "here-one-lifetime"]
            fresh, north_300, one_lifetime = answer["spots"]
            assert (fresh["distance_m"], fresh["p_free"]) == (0.0, 1.0)
            assert 299 < north_300["distance_m"] < 301
            assert 9.9 < one_lifetime["distance_m"] < 10.1
            age_s = (answer["as_of"] - one_lifetime["observed_ts"]) / 1000
            assert one_lifetime["age_s"] == pytest.approx(age_s, abs=0.05)
            assert one_lifetime["p_free"] == pytest.approx(math.exp(-age_s / LIFETIME_S), abs=5e-4)
            # e^-1 for a spot one lifetime old, give or take the seconds the answer took (the
            # exact check is the one above, at the age the answer states)
            assert one_lifetime["p_free"] == pytest.approx(0.368, abs=5e-3)
            for row in answer["spots"]:
                expected = row["p_free"] * math.exp(-row["distance_m"] / 500)
                assert row["score"] == pytest.approx(expected, abs=1e-3)
            assert one_lifetime["cell"] == cell_of(HERE)
            assert (one_lifetime["side"], one_lifetime["heading_deg"]) == ("left", 270.0)
            assert (one_lifetime["length_m"], one_lifetime["reporters"]) == (5.5, 3)
            assert one_lifetime["source"] == "unparked"
            limited = await found(api, lambda a: True, **near, limit=2)
            assert ids(limited) == ["here-fresh", "north-300"]
            assert limited["summary"]["cells"] == answer["summary"]["cells"] == 2
            wide = near | {"radius_m": 10_000}
            everywhere = await found(api, lambda a: "north-2km" in ids(a), **wide)
            assert ids(everywhere) == [*ids(answer), "north-2km"]  # 1 * e^-4 = 0.018
            assert everywhere["summary"]["cells"] == 3

    run(scenario())


def test_the_area_summary(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            now = now_ms()
            write(
                api,
                cell_record(
                    HERE,
                    spot("a", HERE, age_s=LIFETIME_S),
                    spot("b", north(20), age_s=LIFETIME_S),
                    freed=3,
                    taken=0,
                    no_parking=1,
                    ts=now - 2000,
                    lifetime_s=500.0,
                ),
                cell_record(north(250), freed=1, taken=1, no_parking=2, ts=now, lifetime_s=700.0),
            )
            near = {"lat": HERE[0], "lon": HERE[1], "radius_m": 300}
            summary = (await found(api, lambda a: a["summary"]["cells"] == 2, **near))["summary"]
            p = math.exp(-1)
            assert summary["free_estimate"] == pytest.approx(2 * p, abs=0.01)  # 0.74
            assert summary["p_any"] == pytest.approx(1 - (1 - p) ** 2, abs=2e-3)  # 0.600
            assert summary["level"] == "medium"
            assert summary["trend"] == "emptying"  # 4 freed, 1 taken
            assert summary["no_parking"] == 3
            assert summary["lifetime_s"] == 600.0  # the median of 500 and 700
            assert summary["updated_at"] == now
            # two more spots just seen free: 1 - 0.632^2 * 0^2 = 1
            write(api, cell_record(north(250), spot("c", north(250)), spot("d", north(260))))
            busy = await found(api, lambda a: len(a["spots"]) == 4, **near)
            assert busy["summary"]["level"] == "high"
            assert busy["summary"]["p_any"] == 1.0
            assert busy["summary"]["trend"] == "emptying"  # 3 freed, 0 taken
            alone = await found(api, lambda a: True, lat=HERE[0], lon=HERE[1], radius_m=10)
            assert ids(alone) == ["a"]
            assert alone["summary"]["level"] == "low"  # 0.368
            empty = await found(api, lambda a: True, lat=-33.86, lon=151.21)
            assert empty["spots"] == []
            assert empty["summary"] == {
                "cells": 0,
                "free_estimate": 0.0,
                "p_any": 0.0,
                "level": "low",
                "trend": "stable",
                "no_parking": 0,
                "lifetime_s": None,
                "updated_at": None,
            }

    run(scenario())


def test_a_newer_record_replaces_the_cell_an_older_one_is_ignored(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            now = now_ms()
            near = {"lat": HERE[0], "lon": HERE[1], "radius_m": 100}
            write(api, cell_record(HERE, spot("first", HERE), ts=now - 1000))
            await found(api, lambda a: ids(a) == ["first"], **near)
            write(api, cell_record(HERE, spot("second", HERE), ts=now))
            await found(api, lambda a: ids(a) == ["second"], **near)
            mate = partition_mate(cell_of(HERE))
            mate_spot = spot("mate", h3.cell_to_latlng(mate))
            write(
                api,
                cell_record(HERE, spot("late", HERE), ts=now - 500),  # older: ignored
                cell_record(h3.cell_to_latlng(mate), mate_spot, cell=mate),
            )
            answer = await found(api, lambda a: "mate" in ids(a), **near | {"radius_m": 500})
            assert [i for i in ids(answer) if i != "mate"] == ["second"]

    run(scenario())


def test_every_role_reads_parking_and_bad_requests_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            write(api, cell_record(HERE, spot("here", HERE)))
            where = {"lat": HERE[0], "lon": HERE[1]}
            for role in UserRole:
                name = CAR if role is UserRole.VEHICLE else f"someone-{role.value}"
                auth = user_token(api.settings, name, role)
                reply = await api.client.get("/v1/parking", params=where, headers=auth)
                assert reply.status_code == 200, (role, reply.text)
                assert set(reply.json()) == {"as_of", "spots", "summary"}
            unauthenticated = await api.client.get("/v1/parking", params=where)
            assert unauthenticated.status_code == 401
            assert unauthenticated.json()["error"] == "unauthenticated"
            refusals: list[tuple[dict[str, Any], str]] = [
                ({"lon": HERE[1]}, "lat"),
                ({"lat": HERE[0]}, "lon"),
                ({"lat": 91, "lon": 0}, "lat"),
                ({"lat": 0, "lon": 181}, "lon"),
                ({"lat": "north", "lon": 0}, "lat"),
                (where | {"radius_m": 10_001}, "radius_m"),
                (where | {"radius_m": 0}, "radius_m"),
                (where | {"limit": 0}, "limit"),
                (where | {"limit": 201}, "limit"),
            ]
            for params, wrong in refusals:
                reply = await api.client.get("/v1/parking", params=params, headers=api.viewer)
                assert reply.status_code == 422, params
                body = reply.json()
                assert body["error"] == "invalid-request", params
                assert [problem["loc"] for problem in body["detail"]] == [["query", wrong]]
            widest = where | {"radius_m": 10_000, "limit": 200}
            reply = await api.client.get("/v1/parking", params=widest, headers=api.viewer)
            assert reply.status_code == 200, reply.text

    run(scenario())


def test_garbage_and_tombstones_do_not_stop_the_view(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            topic = api.settings.topic_map()[KafkaTopic.PARKING]
            cell = cell_of(HERE)
            api.kafka.append(topic, b"not json", cell.encode())
            api.kafka.append(topic, encode(cell_record(HERE, cell="not-a-cell")), b"not-a-cell")
            write(api, cell_record(HERE, spot("here", HERE)))
            near = {"lat": HERE[0], "lon": HERE[1]}
            await found(api, lambda a: ids(a) == ["here"], **near)
            api.kafka.append(topic, None, cell.encode())  # compaction's delete
            answer = await found(api, lambda a: a["summary"]["cells"] == 0, **near)
            assert answer["spots"] == []
            ready = await api.client.get("/readyz")
            assert ready.status_code == 200, ready.text

    run(scenario())


def test_the_read_model_answers_at_its_clock_and_counts_what_it_skipped(tmp_path: Path) -> None:
    settings = load_settings(stack={"state_dir": tmp_path})
    kafka = MemoryKafka()
    topic = settings.topic_map()[KafkaTopic.PARKING]
    kafka.create(topic)
    clock = [now_ms()]
    model = ParkingReadModel(
        settings, logging.getLogger("test"), kafka.source(), clock=lambda: clock[0]
    )
    seen = cell_record(HERE, spot("here", HERE), ts=clock[0])
    kafka.append(topic, b"not json", seen.cell.encode())
    kafka.append(topic, b"\xff", seen.cell.encode())
    kafka.append(topic, encode(cell_record(HERE, cell="8a1f1d4894")), b"8a1f1d4894")
    kafka.append(topic, encode(seen), seen.cell.encode())
    model.start()
    try:
        assert wait_until(model.ready.is_set, timeout=5, interval=0.01)
        observed = seen.spots[0].observed_ts
        clock[0] = observed + int(LIFETIME_S * 1000)  # one lifetime later
        answer = model.near(*HERE, 100, 20)
        assert answer.as_of == clock[0]
        assert answer.spots[0].p_free == pytest.approx(math.exp(-1))
        assert answer.spots[0].age_s == LIFETIME_S
        clock[0] = observed + int(3.1 * LIFETIME_S * 1000)  # e^-3.1 = 0.045: below the floor
        assert model.near(*HERE, 100, 20).spots == []
        assert model.near(*HERE, 100, 20).summary.cells == 1
        assert model.alive
        assert dict(model.skipped.counts) == {
            (topic, "not-json"): 1,
            (topic, "invalid-utf8"): 1,
            (topic, "schema"): 1,
        }
    finally:
        model.stop()


def test_the_document_explains_the_ranking_and_the_bounds(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            document = (await api.client.get("/openapi.json")).json()
            operation = document["paths"]["/v1/parking"]["get"]
            assert "exp(-age_s / lifetime_s)" in operation["description"]
            assert "p_free * exp(-distance_m / 500)" in operation["description"]
            assert operation["tags"] == ["parking"]
            parameters = {p["name"]: p for p in operation["parameters"]}
            assert (parameters["lat"]["required"], parameters["lon"]["required"]) == (True, True)
            assert parameters["radius_m"]["schema"]["maximum"] == 10_000
            assert parameters["radius_m"]["schema"]["default"] == 500
            limit = parameters["limit"]["schema"]
            assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 200, 20)
            answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
            assert answer == {"$ref": "#/components/schemas/ParkingAnswer"}

    run(scenario())
