"""Maintenance through the API without a broker: alerts listed and filtered, acknowledged by
whom may, a vehicle's health, services recorded by fleet admins; the read model never goes
back on an alert."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec

from fleetlink.apps.maintenance.read_model import newer
from fleetlink.contracts.alerts import (
    Alert,
    AlertAck,
    AlertKind,
    AlertState,
    ServiceRecord,
    Severity,
    alert_id,
)
from fleetlink.contracts.codec import decode, encode
from fleetlink.contracts.models import AuditEvent
from fleetlink.contracts.topics import KafkaTopic
from tests.support.api import CAR, OTHER, Api, run, running_api

T0 = 1_800_000_000_000


def alert(
    vin: str,
    kind: AlertKind,
    subject: str,
    severity: Severity,
    state: AlertState = AlertState.RAISED,
    raised: int = T0,
    at: int | None = None,
) -> Alert:
    return Alert(
        alert_id=alert_id(vin, kind, subject, raised),
        vin=vin,
        kind=kind,
        subject=subject,
        severity=severity,
        state=state,
        ts=raised if at is None else at,
        raised_ts=raised,
        title=f"{kind.value} {subject}",
        action="look",
        evidence={"why": subject},
    )


LEAK = alert(CAR, AlertKind.TIRE_LEAK, "front-left", Severity.WARNING, raised=T0)
MISFIRE = alert(CAR, AlertKind.DTC, "P0300", Severity.CRITICAL, raised=T0 + 1)
THEIRS = alert(OTHER, AlertKind.BATTERY_FADE, "battery", Severity.WARNING, raised=T0 + 2)
GONE = alert(CAR, AlertKind.DTC, "B1000", Severity.INFO, AlertState.RESOLVED, T0 - 5, T0 + 3)


async def written(api: Api, *alerts: Alert) -> None:
    """The alerts on fleet.alerts as the app writes them, and read by the API's view."""
    topic = api.settings.topic_map()[KafkaTopic.ALERTS]
    for each in alerts:
        api.kafka.append(topic, encode(each), each.vin.encode())
    view = api.client._transport.app.state.maintenance.view  # type: ignore[attr-defined]
    for _ in range(300):
        if all(view.alert(a.alert_id) == a for a in alerts):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the API's view never read the alerts")


async def ids(api: Api, who: dict[str, str], **params: Any) -> list[str]:
    reply = await api.client.get("/v1/alerts", params=params, headers=who)
    assert reply.status_code == 200, reply.text
    return [a["alert_id"] for a in reply.json()["alerts"]]


def test_alerts_are_listed_newest_first_filtered_and_only_of_readable_cars(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            await written(api, LEAK, MISFIRE, THEIRS, GONE)
            everyone = [THEIRS.alert_id, MISFIRE.alert_id, LEAK.alert_id]
            assert await ids(api, api.admin) == everyone  # open ones by default
            assert await ids(api, api.viewer) == everyone
            assert await ids(api, api.owner) == [MISFIRE.alert_id, LEAK.alert_id]
            assert await ids(api, api.service) == []
            assert await ids(api, api.admin, severity="critical") == [MISFIRE.alert_id]
            both = await ids(api, api.admin, severity=["critical", "info"], state="any")
            assert both == [MISFIRE.alert_id, GONE.alert_id]
            assert await ids(api, api.admin, vin=OTHER) == [THEIRS.alert_id]
            assert await ids(api, api.admin, state="resolved") == [GONE.alert_id]
            assert await ids(api, api.admin, before=T0 + 1, limit=1) == [LEAK.alert_id]
            one = await api.client.get(f"/v1/alerts/{LEAK.alert_id}", headers=api.owner)
            assert one.status_code == 200, one.text
            assert one.json()["evidence"] == {"why": "front-left"}
            hidden = await api.client.get(f"/v1/alerts/{THEIRS.alert_id}", headers=api.owner)
            assert (hidden.status_code, hidden.json()["error"]) == (404, "unknown-alert")
            bad = await api.client.get("/v1/alerts", params={"state": "x"}, headers=api.admin)
            assert (bad.status_code, bad.json()["error"]) == (422, "invalid-request")

    run(scenario())


def test_an_acknowledgement_goes_to_its_topic_and_the_audit_by_whom_may(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            await written(api, LEAK, THEIRS, GONE)
            path = f"/v1/alerts/{LEAK.alert_id}/ack"
            refused = await api.client.post(path, headers=api.viewer)
            assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
            foreign = await api.client.post(f"/v1/alerts/{THEIRS.alert_id}/ack", headers=api.owner)
            assert (foreign.status_code, foreign.json()["error"]) == (404, "unknown-alert")
            resolved = await api.client.post(f"/v1/alerts/{GONE.alert_id}/ack", headers=api.admin)
            assert (resolved.status_code, resolved.json()["error"]) == (409, "alert-resolved")
            assert not api.records(KafkaTopic.ALERT_ACKS)
            taken = await api.client.post(path, headers=api.owner)
            assert taken.status_code == 202, taken.text
            acks = [decode(AlertAck, raw) for raw in api.records(KafkaTopic.ALERT_ACKS)]
            assert [(a.alert_id, a.vin, a.by) for a in acks] == [(LEAK.alert_id, CAR, "olga")]
            audit = [decode(AuditEvent, raw) for raw in api.records(KafkaTopic.AUDIT)]
            assert [(e.action, e.actor, e.detail) for e in audit] == [
                ("alert.acknowledged", "olga", LEAK.alert_id)
            ]
            # the app takes it and writes the alert acknowledged: asking again changes nothing
            acked = msgspec.structs.replace(
                LEAK, state=AlertState.ACKNOWLEDGED, ts=T0 + 9, acknowledged_by="olga"
            )
            await written(api, acked)
            again = await api.client.post(path, headers=api.admin)
            assert (again.status_code, again.json()["state"]) == (200, "acknowledged")
            assert len(api.records(KafkaTopic.ALERT_ACKS)) == 1

    run(scenario())


def test_health_is_the_worst_open_alert_and_the_service_interval(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            path = f"/v1/vehicles/{CAR}/health"
            fresh = (await api.client.get(path, headers=api.owner)).json()
            assert (fresh["status"], fresh["open_alerts"], fresh["service"]) == ("ok", [], None)
            await written(api, LEAK, MISFIRE, GONE)
            health = (await api.client.get(path, headers=api.owner)).json()
            assert health["status"] == "critical"
            # the vehicle and the list say it too, as the map colours cars by it
            vehicle = (await api.client.get(f"/v1/vehicles/{CAR}", headers=api.owner)).json()
            assert vehicle["health"] == "critical"
            listed = (await api.client.get("/v1/vehicles", headers=api.admin)).json()
            assert {r["vin"]: r["health"] for r in listed["vehicles"]} == {
                CAR: "critical",
                OTHER: "ok",
            }
            assert [a["subject"] for a in health["open_alerts"]] == ["P0300", "front-left"]
            other = await api.client.get(f"/v1/vehicles/{OTHER}/health", headers=api.owner)
            assert (other.status_code, other.json()["error"]) == (403, "forbidden")
            done = {"odometer_km": 30_000.0, "note": "oil, filters"}
            recorded = await api.client.post(
                f"/v1/vehicles/{CAR}/services", json=done, headers=api.admin
            )
            assert recorded.status_code == 201, recorded.text
            service = (await api.client.get(path, headers=api.owner)).json()["service"]
            assert service["last"]["odometer_km"] == 30_000.0
            assert service["next_due_km"] == 45_000.0
            assert service["next_due_ts"] == service["last"]["ts"] + 365 * 86_400_000

    run(scenario())


def test_a_service_is_recorded_by_fleet_admins_on_its_compacted_topic(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            path = f"/v1/vehicles/{CAR}/services"
            refused = await api.client.post(path, json={"odometer_km": 1.0}, headers=api.owner)
            assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
            missing = await api.client.post(path, json={}, headers=api.admin)
            assert missing.status_code == 422  # the odometer is the service's own word
            typo = await api.client.post(path, json={"odometer": 5}, headers=api.admin)
            assert typo.status_code == 422
            ahead = await api.client.post(
                path, json={"odometer_km": 1.0, "days_ago": -1}, headers=api.admin
            )
            assert (ahead.status_code, ahead.json()["error"]) == (422, "invalid-request")
            assert not api.records(KafkaTopic.SERVICES)
            late = {"odometer_km": 12_345.6, "days_ago": 2}
            before = time.time_ns() // 1_000_000
            taken = await api.client.post(path, json=late, headers=api.admin)
            assert taken.status_code == 201, taken.text
            (record,) = [decode(ServiceRecord, raw) for raw in api.records(KafkaTopic.SERVICES)]
            assert (record.vin, record.odometer_km, record.by) == (CAR, 12_345.6, "ada")
            assert abs(before - 2 * 86_400_000 - record.ts) < 5_000
            keys = [
                r.key() for r in api.kafka.records(api.settings.topic_map()[KafkaTopic.SERVICES])
            ]
            assert keys == [CAR.encode()]  # compacted by VIN: the last one counts

    run(scenario())


def test_the_read_model_never_goes_back_on_an_alert() -> None:
    acked = msgspec.structs.replace(LEAK, state=AlertState.ACKNOWLEDGED, ts=T0 + 5)
    resolved = msgspec.structs.replace(LEAK, state=AlertState.RESOLVED, ts=T0 + 9)
    worse = msgspec.structs.replace(acked, severity=Severity.CRITICAL)
    assert newer(None, LEAK)
    assert newer(LEAK, acked)
    assert newer(acked, resolved)
    assert not newer(resolved, acked)  # a replay's older word
    assert not newer(acked, LEAK)
    assert not newer(acked, acked)  # the same again: no news
    assert newer(acked, worse)  # the same state, more severe
