"""The vehicles through the API without a broker: their state from ``fleet.vehicle-state``, the
filters and pages of the list, trips and scores from ``fleet.trips``, roles, every refusal, and
the live stream's coalescing."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fleetlink.api.sse import coalesced_stream
from fleetlink.contracts.codec import encode
from fleetlink.contracts.fleet import Motion, Trip, TripEnd, VehicleState
from fleetlink.contracts.topics import KafkaTopic
from tests.support.api import CAR, NEVER_SEEN, OTHER, Api, run, running_api

BERLIN = (52.5200, 13.4050)
MUNICH = (48.1372, 11.5756)
T0 = 1_800_000_000_000


def state(
    vin: str, where: tuple[float, float], soc: float, ts: int = T0, **more: Any
) -> VehicleState:
    return VehicleState(
        vin=vin,
        ts=ts,
        online=True,
        last_seen=ts,
        motion=Motion.PARKED,
        latitude=where[0],
        longitude=where[1],
        speed_kmh=0.0,
        odometer_km=1234.5,
        soc_pct=soc,
        **more,
    )


def write(api: Api, topic: KafkaTopic, *records: VehicleState | Trip) -> None:
    name = api.settings.topic_map()[topic]
    for record in records:
        api.kafka.append(name, encode(record), record.vin.encode())


async def vehicles(api: Api, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    reply = await api.client.get("/v1/vehicles", params=params, headers=headers)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def until_read(api: Api, vin: str, ts: int) -> None:
    for _ in range(300):
        known = api.client._transport.app.state.fleet.state(vin)  # type: ignore[attr-defined]
        if known is not None and known.ts >= ts:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the view never read {vin} at {ts}")


def test_the_list_filters_by_place_charge_and_presence_in_pages(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            write(
                api,
                KafkaTopic.VEHICLE_STATE,
                state(CAR, BERLIN, 15.0),
                state(OTHER, MUNICH, 80.0),
                state(NEVER_SEEN, BERLIN, 50.0, trip_id="t1", trip_start_ts=T0 - 60_000),
            )
            await until_read(api, NEVER_SEEN, T0)
            everyone = await vehicles(api, api.admin)
            # online first (the broker said so of CAR and OTHER), then by VIN
            assert [v["vin"] for v in everyone["vehicles"]] == [CAR, OTHER, NEVER_SEEN]
            assert everyone["total"] == 3
            assert everyone["next"] is None
            car = everyone["vehicles"][0]
            assert (car["online"], car["since"], car["soc_pct"], car["motion"]) == (
                True,
                1,
                15.0,
                "parked",
            )
            assert (car["latitude"], car["longitude"], car["odometer_km"]) == (*BERLIN, 1234.5)
            # NEVER_SEEN: no word from the broker, its state says online
            assert everyone["vehicles"][2]["online"] is True
            assert everyone["vehicles"][2]["trip_id"] == "t1"
            in_berlin = await vehicles(api, api.admin, bbox="52.3,13.0,52.7,13.8")
            assert [v["vin"] for v in in_berlin["vehicles"]] == [CAR, NEVER_SEEN]
            near_munich = await vehicles(
                api, api.admin, lat=MUNICH[0], lon=MUNICH[1], radius_m=5000
            )
            assert [v["vin"] for v in near_munich["vehicles"]] == [OTHER]
            low = await vehicles(api, api.admin, low_battery="true")  # below 20 %
            assert [v["vin"] for v in low["vehicles"]] == [CAR]
            offline = await vehicles(api, api.admin, online="false")
            assert offline["vehicles"] == []
            # pages of one: the cursor walks them all, once each
            seen, after = [], None
            for _ in range(4):
                page = await vehicles(
                    api, api.admin, limit=1, **({"after": after} if after else {})
                )
                assert page["total"] == 3
                seen += [v["vin"] for v in page["vehicles"]]
                after = page["next"]
                if after is None:
                    break
            assert seen == [CAR, OTHER, NEVER_SEEN]

    run(scenario())


def test_an_owner_sees_only_their_cars(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            write(
                api, KafkaTopic.VEHICLE_STATE, state(CAR, BERLIN, 50.0), state(OTHER, BERLIN, 50.0)
            )
            write(api, KafkaTopic.TRIPS, Trip(trip_id="o1", vin=OTHER, start_ts=T0))
            await until_read(api, OTHER, T0)
            mine = await vehicles(api, api.owner)
            assert [v["vin"] for v in mine["vehicles"]] == [CAR]
            assert mine["total"] == 1
            for path in (
                f"/v1/vehicles/{OTHER}",
                f"/v1/vehicles/{OTHER}/trips",
                f"/v1/vehicles/{OTHER}/score",
            ):
                reply = await api.client.get(path, headers=api.owner)
                assert (reply.status_code, reply.json()["error"]) == (403, "forbidden"), path
            reply = await api.client.get(f"/v1/vehicles/{CAR}", headers=api.owner)
            assert reply.status_code == 200
            body = reply.json()
            assert (body["online"], body["since"]) == (True, 1)
            assert body["state"] == msgspec.to_builtins(state(CAR, BERLIN, 50.0))

    run(scenario())


def test_trips_newest_first_and_the_score_over_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            day = 86_400_000
            opened = Trip(trip_id="a", vin=CAR, start_ts=T0)
            closed = Trip(
                trip_id="a",
                vin=CAR,
                start_ts=T0,
                end_ts=T0 + 3_600_000,
                ended_by=TripEnd.STOPPED,
                distance_km=40.0,
                duration_s=3600.0,
                harsh={"harsh-braking": 2},
            )
            later = Trip(
                trip_id="b",
                vin=CAR,
                start_ts=T0 + day,
                end_ts=T0 + day + 600_000,
                ended_by=TripEnd.SILENT,
                distance_km=10.0,
                harsh={"crash": 1},
            )
            open_now = Trip(trip_id="c", vin=CAR, start_ts=T0 + 2 * day)
            # the start of "a" comes again after its end (a replay): the end stands
            write(api, KafkaTopic.TRIPS, opened, closed, later, opened, open_now)
            write(api, KafkaTopic.VEHICLE_STATE, state(CAR, BERLIN, 50.0, ts=T0 + 2 * day))
            await until_read(api, CAR, T0 + 2 * day)
            reply = await api.client.get(f"/v1/vehicles/{CAR}/trips", headers=api.owner)
            assert reply.status_code == 200, reply.text
            trips = reply.json()["trips"]
            assert [t["trip_id"] for t in trips] == ["c", "b", "a"]
            assert trips[2] == msgspec.to_builtins(closed)
            before = await api.client.get(
                f"/v1/vehicles/{CAR}/trips",
                params={"before": T0 + day, "limit": 5},
                headers=api.owner,
            )
            assert [t["trip_id"] for t in before.json()["trips"]] == ["a"]
            score = await api.client.get(
                f"/v1/vehicles/{CAR}/score",
                params={"since": T0, "until": T0 + 3 * day},
                headers=api.admin,
            )
            # (2 x 1 + 1 x 10) weighted events over 50 km: 24 per 100 km, 100 - 240 -> 0
            assert score.json() == {
                "vin": CAR,
                "since": T0,
                "until": T0 + 3 * day,
                "trips": 2,
                "distance_km": 50.0,
                "harsh": {"crash": 1, "harsh-braking": 2},
                "weighted_per_100_km": 24.0,
                "score": 0.0,
            }
            first_only = await api.client.get(
                f"/v1/vehicles/{CAR}/score",
                params={"since": T0, "until": T0 + day},
                headers=api.admin,
            )
            assert (first_only.json()["weighted_per_100_km"], first_only.json()["score"]) == (
                5.0,
                50.0,
            )

    run(scenario())


@pytest.mark.parametrize(
    ("path", "params", "detail"),
    [
        ("/v1/vehicles", {"bbox": "1,2,3"}, "bbox is four numbers"),
        ("/v1/vehicles", {"bbox": "50,13,40,14"}, "south <= north"),
        ("/v1/vehicles", {"lat": 52.5, "lon": 13.4}, "together"),
        ("/v1/vehicles", {"bbox": "1,2,3,4", "lat": 1, "lon": 2, "radius_m": 5}, "not both"),
        ("/v1/vehicles/live", {"radius_m": 5}, "together"),
        (f"/v1/vehicles/{CAR}/score", {"since": 10, "until": 5}, "before"),
    ],
)
def test_bad_questions_get_a_422_with_the_reason(
    tmp_path: Path, path: str, params: dict[str, Any], detail: str
) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            reply = await api.client.get(path, params=params, headers=api.admin)
            assert reply.status_code == 422
            assert reply.json()["error"] == "invalid-request"
            assert detail in reply.json()["detail"]

    run(scenario())


def test_the_live_stream_sends_one_frame_a_second_at_most_the_latest_per_vehicle() -> None:
    async def scenario() -> list[tuple[float, bytes]]:
        deliver: list[Any] = []

        def listen(listener: Any) -> Any:
            deliver.append(listener)
            return lambda: None

        response = coalesced_stream(
            listen,
            lambda item: item[0] != "hidden",
            lambda item: item[0],
            lambda items: repr(sorted(items)).encode(),
            every_s=0.3,
            opening=lambda: [b"opening;"],
        )
        frames: list[tuple[float, bytes]] = []
        body = response.body_iterator

        done = threading.Event()

        def feed() -> None:  # the read model's thread: 2 cars changing every 20 ms
            n = 0
            while not done.is_set():
                deliver[0]([("car-a", n), ("car-b", -n), ("hidden", n)])
                n += 1
                time.sleep(0.02)

        started = time.monotonic()
        async for chunk in body:
            frames.append((time.monotonic() - started, bytes(chunk)))
            if len(frames) == 1:
                threading.Thread(target=feed, daemon=True).start()
            if len(frames) >= 4:
                break
        done.set()
        await body.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)  # the feeder has seen it
        return frames

    frames = asyncio.run(scenario())
    assert frames[0][1] == b"opening;event: ready\ndata: {}\n\n"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(frames[1:])]
    assert all(gap >= 0.29 for gap in gaps), gaps
    for _, chunk in frames[1:]:
        items = eval(chunk.decode())  # noqa: S307 - our own repr of tuples of str and int
        assert [vin for vin, _ in items] == ["car-a", "car-b"]  # one per car, none hidden
    last = eval(frames[-1][1].decode())  # noqa: S307
    assert last[0][1] > 10  # the latest, not the first, of what came in the second
