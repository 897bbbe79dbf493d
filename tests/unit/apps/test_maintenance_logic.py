"""One car's maintenance, pure: alerts from its inputs, acknowledged by people, resolved by the
car, and kept across a restart (the store is all there is)."""

from __future__ import annotations

from typing import Any

from fleetlink.apps.maintenance.logic import MaintenanceParams, MaintenanceShard
from fleetlink.contracts.alerts import AlertState, Severity
from tests.unit.apps.stores import JsonStore

VIN = "WVWZZZ1JZXW000001"
T0 = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000
DAY_MS = 86_400_000


def dtc(ts: int, code: str, status: str) -> dict[str, Any]:
    return {
        "t": "event",
        "vin": VIN,
        "kind": "dtc",
        "ts": ts,
        "data": {"code": code, "status": status},
    }


def telemetry(ts: int, **signals: Any) -> dict[str, Any]:
    return {"t": "telemetry", "vin": VIN, "ts": ts, **signals}


def test_an_acknowledged_alert_stays_acknowledged_after_a_restart_until_resolved() -> None:
    store = JsonStore()
    shard = MaintenanceShard(store, MaintenanceParams())
    [raised] = shard.handle(dtc(T0, "P0300", "raised"))
    [acked] = shard.handle(
        {"t": "ack", "vin": VIN, "ts": T0 + 5, "alert_id": raised.alert_id, "by": "ada"}
    )
    assert (acked.alert_id, acked.state, acked.acknowledged_by) == (
        raised.alert_id,
        AlertState.ACKNOWLEDGED,
        "ada",
    )
    restarted = MaintenanceShard(store, MaintenanceParams())  # the state is the store's
    ack_again = {"t": "ack", "vin": VIN, "ts": T0 + 9, "alert_id": raised.alert_id, "by": "bo"}
    assert restarted.handle(ack_again) == []
    assert [a.state for a in restarted.open_alerts(VIN)] == [AlertState.ACKNOWLEDGED]
    assert restarted.handle(dtc(T0 + 60_000, "P0300", "raised")) == []  # the same code again
    [resolved] = restarted.handle(dtc(T0 + 120_000, "P0300", "cleared"))
    assert (resolved.state, resolved.acknowledged_by) == (AlertState.RESOLVED, "ada")
    assert restarted.open_alerts(VIN) == []
    unknown = {"t": "ack", "vin": VIN, "ts": T0, "alert_id": raised.alert_id, "by": "ada"}
    assert restarted.handle(unknown) == []  # resolved: nothing to acknowledge


def test_a_rising_severity_keeps_the_acknowledgement() -> None:
    shard = MaintenanceShard(JsonStore(), MaintenanceParams())
    soon = []
    for day in range(0, 240):
        soon += shard.handle(telemetry(T0 + day * DAY_MS, odo=1_000.0 + 60.0 * day))
    [warning] = soon
    assert (warning.severity, warning.title) == (Severity.INFO, "Service due soon")
    shard.handle({"t": "ack", "vin": VIN, "ts": T0, "alert_id": warning.alert_id, "by": "ada"})
    due = []
    for day in range(240, 260):
        due += shard.handle(telemetry(T0 + day * DAY_MS, odo=1_000.0 + 60.0 * day))
    [update] = due
    assert (update.alert_id, update.severity, update.state, update.acknowledged_by) == (
        warning.alert_id,
        Severity.WARNING,
        AlertState.ACKNOWLEDGED,
        "ada",
    )
    [resolved] = shard.handle(
        {"t": "service", "vin": VIN, "ts": T0 + 260 * DAY_MS, "odo": 16_700.0}
    )
    assert resolved.state is AlertState.RESOLVED


def test_a_blow_out_in_telemetry_is_a_critical_alert_on_its_wheel() -> None:
    shard = MaintenanceShard(JsonStore(), MaintenanceParams())
    assert shard.handle(telemetry(T0, tires=[240.0, 240.0, 235.0, 235.0], air_c=20.0)) == []
    [critical] = shard.handle(
        telemetry(T0 + 60_000, tires=[240.0, 240.0, 150.0, 235.0], air_c=20.0)
    )
    assert (critical.subject, critical.kind.value, critical.severity) == (
        "rear-left",
        "tire-critical",
        Severity.CRITICAL,
    )
    assert critical.alert_id == f"{VIN}/tire-critical/rear-left/{T0 + 60_000}"
    # a record without every wheel, or without the air's temperature, judges no tire
    assert (
        shard.handle(telemetry(T0 + 120_000, tires=[240.0, None, 150.0, 235.0], air_c=20.0)) == []
    )
    assert shard.handle(telemetry(T0 + 180_000, tires=[240.0, 240.0, 100.0, 235.0])) == []
    # refilled: the alert is resolved, under the id it was raised with
    [refilled] = shard.handle(
        telemetry(T0 + 240_000, tires=[240.0, 240.0, 236.0, 235.0], air_c=20.0)
    )
    assert (refilled.alert_id, refilled.state, refilled.ts) == (
        critical.alert_id,
        AlertState.RESOLVED,
        T0 + 240_000,
    )
    assert shard.open_alerts(VIN) == []
