"""OTA campaigns through the API without a broker: only fleet admins ask and steer, viewers
follow; a campaign names a released image and groups that fit; its creator cannot approve it;
an action that does not fit the campaign's state is refused at once; every request that passes
is in ``fleet.campaign-requests`` before the answer."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import msgspec

from fleetlink.api.campaigns import CampaignsState
from fleetlink.campaigns.images import ImageRepository
from fleetlink.contracts.campaigns import (
    Campaign,
    CampaignAction,
    CampaignRequest,
    CampaignSpec,
    CampaignState,
    CampaignVehicle,
    ControlCampaign,
    CreateCampaign,
    GroupProgress,
    RolloutState,
)
from fleetlink.contracts.codec import decode, encode
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.keys import image_signer
from fleetlink.security.users import UserRole
from tests.support.api import CAR, OTHER, Api, run, running_api
from tests.support.stack import user_token

IMAGE = {"name": "spring-update", "image": "infotainment", "version": "2026.41"}


def release(api: Api, target: str = "fl-sedan") -> None:
    ImageRepository(api.settings.image_dir()).publish(
        b"new firmware" * 100,
        name="infotainment",
        version="2026.41",
        target=target,
        signer=image_signer(api.settings),
    )


def ota(api: Api) -> CampaignsState:
    state: CampaignsState = api.client._transport.app.state.campaigns  # type: ignore[attr-defined]
    return state


async def ready(api: Api) -> None:
    for _ in range(300):
        if ota(api).view.ready.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the campaigns view never got ready")


def requests(api: Api) -> list[CampaignRequest]:
    return [decode(CampaignRequest, raw) for raw in api.records(KafkaTopic.CAMPAIGN_REQUESTS)]  # type: ignore[arg-type]


def campaign(campaign_id: str, state: CampaignState, **changes: Any) -> Campaign:
    spec = CampaignSpec(name="spring", image="infotainment", version="2026.41")
    fields: dict[str, Any] = {"created_by": "ada", "created_at": 1_000, "ts": 2_000} | changes
    return Campaign(campaign_id=campaign_id, spec=spec, state=state, **fields)


async def known(api: Api, record: Campaign) -> None:
    topic = api.settings.topic_map()[KafkaTopic.CAMPAIGNS]
    api.kafka.append(topic, encode(record), record.campaign_id.encode())
    for _ in range(300):
        if ota(api).view.campaign(record.campaign_id) == record:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the API's view never read the campaign")


def test_only_admins_ask_and_steer_and_viewers_follow(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            await ready(api)
            release(api)
            await known(api, campaign("c-running", CampaignState.RUNNING))
            anonymous = await api.client.get("/v1/campaigns")
            assert anonymous.status_code == 401
            assert anonymous.json()["error"] == "unauthenticated"
            assert (await api.client.post("/v1/campaigns", json=IMAGE)).status_code == 401
            assert (await api.client.post("/v1/campaigns/c-running/pause")).status_code == 401
            car = user_token(api.settings, CAR, UserRole.VEHICLE)
            for who in (api.owner, api.service, car):
                for url in ("/v1/campaigns", "/v1/campaigns/c-running", "/v1/images"):
                    reply = await api.client.get(url, headers=who)
                    assert reply.status_code == 403, (url, reply.text)
                    assert reply.json()["error"] == "forbidden"
            for who in (api.admin, api.viewer):
                assert (await api.client.get("/v1/campaigns", headers=who)).status_code == 200
                one = await api.client.get("/v1/campaigns/c-running/vehicles", headers=who)
                assert one.status_code == 200
            for who in (api.viewer, api.owner, api.service):
                create = await api.client.post("/v1/campaigns", json=IMAGE, headers=who)
                assert create.status_code == 403
                pause = await api.client.post("/v1/campaigns/c-running/pause", headers=who)
                assert pause.status_code == 403
            assert requests(api) == []

    run(scenario())


def test_a_campaign_that_cannot_run_is_refused_with_the_field_named(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            await ready(api)

            async def create(body: object) -> tuple[int, dict[str, Any]]:
                reply = await api.client.post("/v1/campaigns", json=body, headers=api.admin)
                return reply.status_code, reply.json()

            status, body = await create(IMAGE)
            assert (status, body["error"], body["field"]) == (422, "unknown-image", "image")
            release(api)
            status, body = await create({**IMAGE, "image": "Infotainment"})
            assert (status, body["error"], body["field"]) == (422, "invalid-campaign", "image")
            status, body = await create({"name": "x", "image": "infotainment"})
            assert (status, body["field"]) == (422, "version")
            status, body = await create({**IMAGE, "groups": [10, 0]})
            assert (status, body["field"]) == (422, "groups[1]")
            status, body = await create({**IMAGE, "segment": {"models": ["fl-sedan"], "x": 1}})
            assert (status, body["error"]) == (422, "invalid-campaign")
            assert "x" in body["detail"]
            status, body = await create({**IMAGE, "min_executed": "5"})
            assert (status, body["field"]) == (422, "min_executed")
            status, body = await create({**IMAGE, "groups": [50, 40, 20]})
            assert (status, body["error"], body["field"]) == (422, "groups-over-100", "groups")
            status, body = await create({**IMAGE, "groups": [33.3, 33.3, 33.4]})
            assert status == 202, body  # floats that add up to 100 are 100
            status, body = await create({**IMAGE, "segment": {"models": ["fl-suv"]}})
            assert (status, body["error"]) == (422, "segment-excludes-target")
            assert "fl-sedan" in body["detail"]
            region = {"south": 50, "west": 10, "north": 40, "east": 12}
            status, body = await create({**IMAGE, "segment": {"region": region}})
            assert (status, body["error"]) == (422, "empty-region")
            status, body = await create({**IMAGE, "segment": {"models": ["fl-suv", "fl-sedan"]}})
            assert status == 202
            raw = await api.client.post(
                "/v1/campaigns",
                content=b"{not json",
                headers={**api.admin, "content-type": "application/json"},
            )
            assert (raw.status_code, raw.json()["error"]) == (400, "not-json")
            assert len(requests(api)) == 2  # only the two that passed

    run(scenario())


def test_a_campaign_is_asked_for_once_whatever_is_retried(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            await ready(api)
            release(api)
            keyed = {**api.admin, "Idempotency-Key": "spring-1"}
            first = await api.client.post("/v1/campaigns", json=IMAGE, headers=keyed)
            assert first.status_code == 202, first.text
            body = first.json()
            campaign_id = body["campaign_id"]
            assert re.fullmatch(r"c[0-9a-f]{20}", campaign_id)
            assert body["state"] == "awaiting-approval"
            assert body["links"]["approve"] == f"/v1/campaigns/{campaign_id}/approve"
            assert first.headers["location"] == f"/v1/campaigns/{campaign_id}"
            (asked,) = requests(api)
            assert isinstance(asked, CreateCampaign)
            assert (asked.campaign_id, asked.by, asked.spec.image) == (
                campaign_id,
                "ada",
                "infotainment",
            )
            (record,) = api.kafka.records(api.settings.topic_map()[KafkaTopic.CAMPAIGN_REQUESTS])
            assert record.key() == campaign_id.encode()
            again = await api.client.post("/v1/campaigns", json=IMAGE, headers=keyed)
            assert (again.status_code, again.json()["campaign_id"]) == (200, campaign_id)
            assert len(requests(api)) == 1
            other_spec = {**IMAGE, "name": "autumn-update"}
            conflict = await api.client.post("/v1/campaigns", json=other_spec, headers=keyed)
            assert (conflict.status_code, conflict.json()["error"]) == (409, "idempotency-conflict")
            # the key is the user's: another admin's same key names another campaign
            grace = user_token(api.settings, "grace", UserRole.FLEET_ADMIN)
            theirs = await api.client.post(
                "/v1/campaigns", json=IMAGE, headers={**grace, "Idempotency-Key": "spring-1"}
            )
            assert theirs.status_code == 202
            assert theirs.json()["campaign_id"] != campaign_id
            unkeyed = [
                (await api.client.post("/v1/campaigns", json=IMAGE, headers=api.admin)).json()
                for _ in range(2)
            ]
            assert unkeyed[0]["campaign_id"] != unkeyed[1]["campaign_id"]
            # read back at once, before the orchestrator recorded it
            shown = await api.client.get(f"/v1/campaigns/{campaign_id}", headers=api.viewer)
            assert shown.status_code == 200
            assert (shown.json()["state"], shown.json()["created_by"]) == (
                "awaiting-approval",
                "ada",
            )

    run(scenario())


def test_kafka_away_is_a_503_and_nothing_is_promised(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            await ready(api)
            release(api)
            api.kafka.available = False
            keyed = {**api.admin, "Idempotency-Key": "k"}
            reply = await api.client.post("/v1/campaigns", json=IMAGE, headers=keyed)
            assert reply.status_code == 503
            assert reply.json()["error"] == "kafka-unavailable"
            assert reply.headers["retry-after"]
            api.kafka.available = True
            # the retry is not taken for a replay of a campaign that never got in
            retry = await api.client.post("/v1/campaigns", json=IMAGE, headers=keyed)
            assert retry.status_code == 202
            assert len(requests(api)) == 1

    run(scenario())


def test_a_second_admin_approves_and_never_the_creator(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            await ready(api)
            release(api)
            created = await api.client.post("/v1/campaigns", json=IMAGE, headers=api.admin)
            campaign_id = created.json()["campaign_id"]
            url = f"/v1/campaigns/{campaign_id}/approve"
            own = await api.client.post(url, headers=api.admin)
            assert own.status_code == 409
            assert own.json()["error"] == "second-admin-required"
            assert own.json()["created_by"] == "ada"
            grace = user_token(api.settings, "grace", UserRole.FLEET_ADMIN)
            approved = await api.client.post(
                url, json={"note": "tested on the bench"}, headers=grace
            )
            assert approved.status_code == 202, approved.text
            assert approved.json()["action"] == "approve"
            _, control = requests(api)
            assert isinstance(control, ControlCampaign)
            assert (control.campaign_id, control.action, control.by) == (
                campaign_id, CampaignAction.APPROVE, "grace",
            )  # fmt: skip
            assert control.note == "tested on the bench"
            missing = await api.client.post("/v1/campaigns/c-nothing/approve", headers=grace)
            assert (missing.status_code, missing.json()["error"]) == (404, "unknown-campaign")
            bad_id = await api.client.post("/v1/campaigns/Not_An_Id/approve", headers=grace)
            assert (bad_id.status_code, bad_id.json()["error"]) == (422, "invalid-campaign-id")
            long_note = await api.client.post(url, json={"note": "x" * 300}, headers=grace)
            assert long_note.status_code == 422
            assert len(requests(api)) == 2

    run(scenario())


def test_an_action_that_does_not_fit_the_state_is_refused_at_once(tmp_path: Path) -> None:
    cases = [  # state, action, answered
        (CampaignState.RUNNING, "approve", 409),
        (CampaignState.RUNNING, "resume", 409),
        (CampaignState.RUNNING, "pause", 202),
        (CampaignState.SCHEDULED, "pause", 202),
        (CampaignState.SCHEDULED, "next-group", 409),
        (CampaignState.PAUSED, "pause", 409),
        (CampaignState.PAUSED, "resume", 202),
        (CampaignState.PAUSED, "next-group", 202),
        (CampaignState.AWAITING_APPROVAL, "pause", 409),
        (CampaignState.AWAITING_APPROVAL, "next-group", 409),
        (CampaignState.AWAITING_APPROVAL, "abort", 202),
        (CampaignState.FINISHED, "abort", 409),
        (CampaignState.ABORTED, "abort", 409),
        (CampaignState.ABORTED, "resume", 409),
    ]
    groups = [GroupProgress(0, 1, started_at=3_000), GroupProgress(1, 10)]

    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            await ready(api)
            grace = user_token(api.settings, "grace", UserRole.FLEET_ADMIN)
            for n, (state, action, answered) in enumerate(cases):
                started = {} if state is CampaignState.AWAITING_APPROVAL else {"started_at": 3_000}
                record = campaign(f"c-{n}", state, group=0, groups=groups, **started)
                await known(api, record)
                reply = await api.client.post(f"/v1/campaigns/c-{n}/{action}", headers=grace)
                assert reply.status_code == answered, (state, action, reply.text)
                if answered == 409:
                    assert reply.json()["error"] == "invalid-state"
                    assert reply.json()["state"] == state.value
            written = [r for r in requests(api) if isinstance(r, ControlCampaign)]
            assert len(written) == sum(1 for *_, answered in cases if answered == 202)
            # the last group started: there is no next one
            last = campaign(
                "c-last", CampaignState.RUNNING, started_at=3_000, group=1, groups=groups
            )
            await known(api, last)
            reply = await api.client.post("/v1/campaigns/c-last/next-group", headers=grace)
            assert (reply.status_code, reply.json()["error"]) == (409, "no-next-group")

    run(scenario())


def _car(vin: str, group: int, state: RolloutState, **changes: Any) -> CampaignVehicle:
    return CampaignVehicle("c-read", vin, group, state, "2026.41", ts=5_000, **changes)


def test_admins_and_viewers_follow_a_campaign_car_by_car(tmp_path: Path) -> None:
    cars = [
        _car(CAR, 0, RolloutState.SUCCEEDED, notified_at=1_000, finished_at=4_000),
        _car(OTHER, 1, RolloutState.FAILED, reason="flash-error: slot b unwritable"),
        _car("APXZZZ1JZXW000003", 1, RolloutState.REJECTED, reason="rollback: 2026.41 < 2026.50"),
        _car("APXZZZ1JZXW000004", 1, RolloutState.DOWNLOADING, progress_pct=40),
        _car("APXZZZ1JZXW000005", 1, RolloutState.TIMED_OUT),
    ]
    record = campaign(
        "c-read", CampaignState.RUNNING, started_at=1_000, group=1,
        groups=[GroupProgress(0, 1), GroupProgress(1, 4), GroupProgress(2, 10)],
    )  # fmt: skip

    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            await ready(api)
            topic = api.settings.topic_map()[KafkaTopic.CAMPAIGN_VEHICLES]
            for car in cars:
                api.kafka.append(topic, encode(car), car.key.encode())
            await known(api, record)
            await known(api, campaign("c-old", CampaignState.FINISHED, created_at=10))
            listed = (await api.client.get("/v1/campaigns", headers=api.viewer)).json()
            assert [c["campaign_id"] for c in listed["campaigns"]] == ["c-read", "c-old"]
            assert "history" not in listed["campaigns"][0]
            finished = await api.client.get("/v1/campaigns?state=finished", headers=api.viewer)
            assert [c["campaign_id"] for c in finished.json()["campaigns"]] == ["c-old"]
            body = (await api.client.get("/v1/campaigns/c-read", headers=api.viewer)).json()
            assert body["state"] == "running"
            assert body["spec"]["groups"] == [1.0, 10.0, 50.0]  # defaults are shown
            summary = body["summary"]
            assert summary["vehicles"] == 5
            groups = {g["index"]: g for g in summary["groups"]}
            assert sorted(groups) == [0, 1, 2]  # group 2 has no cars yet
            assert groups[1]["counts"]["failed"] == 1
            assert groups[1]["counts"]["downloading"] == 1
            assert groups[0]["counts"]["succeeded"] == 1
            assert groups[2]["vehicles"] == 0
            assert summary["apply_time"] == {
                "cars": 1,
                "p50_ms": 3000,
                "p95_ms": 3000,
                "max_ms": 3000,
            }
            assert summary["failures"] == {"flash-error": 1, "rollback": 1, "timed-out": 1}
            url = "/v1/campaigns/c-read/vehicles"
            every = (await api.client.get(url, headers=api.admin)).json()
            assert every["total"] == 5
            assert [v["vin"] for v in every["vehicles"]][:2] == [CAR, OTHER]
            assert every["vehicles"][0]["apply_ms"] == 3000
            failed = (await api.client.get(f"{url}?state=failed", headers=api.admin)).json()
            assert [v["vin"] for v in failed["vehicles"]] == [OTHER]
            some = (await api.client.get(f"{url}?group=1&limit=2", headers=api.admin)).json()
            assert (some["total"], len(some["vehicles"])) == (4, 2)
            assert all(v["group"] == 1 for v in some["vehicles"])
            api.kafka.append(topic, None, cars[1].key.encode())  # a tombstone: the car is gone
            for _ in range(300):
                if len(ota(api).view.vehicles_of("c-read")) == 4:
                    break
                await asyncio.sleep(0.01)
            after = (await api.client.get(url, headers=api.admin)).json()
            assert OTHER not in {v["vin"] for v in after["vehicles"]}
            missing = await api.client.get("/v1/campaigns/c-none/vehicles", headers=api.admin)
            assert missing.status_code == 404

    run(scenario())


def test_the_document_shows_the_campaign_body_from_the_contract(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            document = (await api.client.get("/openapi.json")).json()
            operation = document["paths"]["/v1/campaigns"]["post"]
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert schema["required"] == ["name", "image", "version"]
            assert schema["properties"]["segment"]["properties"]["region"]["anyOf"][0]["required"]
            assert "$ref" not in msgspec.json.encode(schema).decode()
            header = next(p for p in operation["parameters"] if p["in"] == "header")
            assert header["name"] == "Idempotency-Key"

    run(scenario())
