"""Scoring the maintenance app's alerts against the simulator's truth, pure."""

from __future__ import annotations

from fleetlink.contracts.alerts import Alert, AlertKind, AlertState, Severity, alert_id
from fleetlink.sim.health import HOUR_MS, FaultKind, TrueFault
from fleetlink.sim.maintenance_quality import score_alerts

T0 = 1_800_000_000_000
END = T0 + 100 * HOUR_MS
CAR, OTHER, WELL = "QUALITY0000000001", "QUALITY0000000002", "QUALITY0000000003"


def raised(vin: str, kind: AlertKind, subject: str, at_h: float) -> Alert:
    ts = T0 + int(at_h * HOUR_MS)
    return Alert(
        alert_id=alert_id(vin, kind, subject, ts),
        vin=vin,
        kind=kind,
        subject=subject,
        severity=Severity.WARNING,
        state=AlertState.RAISED,
        ts=ts,
        raised_ts=ts,
        title="t",
        action="a",
    )


TRUTH = [
    TrueFault(CAR, FaultKind.SLOW_LEAK, "rear-left", T0, T0 + 50 * HOUR_MS),
    TrueFault(CAR, FaultKind.TIRE_CRITICAL, "rear-left", T0 + 40 * HOUR_MS, T0 + 50 * HOUR_MS),
    TrueFault(OTHER, FaultKind.DTC, "P0300", T0 + 10 * HOUR_MS),
    TrueFault(OTHER, FaultKind.SLOW_LEAK, "front-left", T0 + 20 * HOUR_MS),
]


def by_kind(alerts: list[Alert]) -> dict[str, tuple[int, int, float | None, float | None, list]]:
    quality = score_alerts(TRUTH, alerts, [WELL], END)
    return {k.kind: (k.faults, k.alerts, k.recall, k.precision, k.detect_h) for k in quality.kinds}


def test_an_alert_matches_its_car_subject_and_time_and_delays_are_measured() -> None:
    alerts = [
        raised(CAR, AlertKind.TIRE_LEAK, "rear-left", 8),  # 8 h after the leak began
        raised(CAR, AlertKind.TIRE_LEAK, "rear-left", 60),  # after the fix: a false one
        raised(CAR, AlertKind.TIRE_CRITICAL, "rear-left", 38),  # the sensor's noise: early
        raised(OTHER, AlertKind.DTC, "P0300", 10),
        raised(OTHER, AlertKind.DTC, "P0420", 10),  # not the code it had
    ]
    scores = by_kind(alerts)
    assert scores["tire-leak"] == (2, 2, 0.5, 0.5, [8.0, 8.0])  # the other car's: missed
    assert scores["tire-critical"] == (1, 1, 1.0, 1.0, [-2.0, -2.0])
    assert scores["dtc"] == (1, 2, 1.0, 0.5, [0.0, 0.0])
    assert scores["battery-fade"] == (0, 0, None, None, [])


def test_a_healthy_cars_tire_and_battery_alerts_are_false_alarms() -> None:
    alerts = [
        raised(WELL, AlertKind.TIRE_LEAK, "front-left", 5),
        raised(WELL, AlertKind.BATTERY_FADE, "battery", 5),
        raised(WELL, AlertKind.SERVICE_DUE, "service", 5),  # not wear: counted elsewhere
    ]
    quality = score_alerts(TRUTH, alerts, [WELL], END)
    assert (quality.healthy_cars, quality.healthy_tire_battery_alerts) == (1, 2)
    critical_too_early = [raised(CAR, AlertKind.TIRE_CRITICAL, "rear-left", 36.5)]
    assert by_kind(critical_too_early)["tire-critical"][2] == 0.0
