"""Slow wear, pure: the traction battery's fade and the service interval.

**Battery.** The state of health a car reports is averaged per day (its estimate moves with
temperature and charge level through a day); a Theil-Sen slope over the daily means, once they
span ``min_days``, faster than ``fade_pct_per_year`` raises a warning. Normal fade: Geotab
measured 2.3 %/yr over 22,700 EVs in 2025 (3.0 %/yr for cars charged mostly on fast DC); the
warning is at about twice that, 5 %/yr, so a healthy car is not flagged.

**Service.** Due every ``interval_km`` or ``interval_days``, whichever comes first, counted from
the last recorded service (or, for a car with none recorded, from its first record): a warning
``warn_km`` / ``warn_days`` before, then due; each once per interval. A recorded service starts
the next interval and resolves the alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec

from fleetlink.apps.maintenance.tires import theil_sen_per_day
from fleetlink.contracts.alerts import Alert, AlertKind, AlertState, Severity, alert_id

_DAY_MS: Final = 86_400_000
_DAYS_PER_YEAR: Final = 365.25


@dataclass(frozen=True)
class WearParams:
    fade_pct_per_year: float = 5.0
    # daily means spanning at least this many days: a BMS's estimate wanders by tenths of a
    # percent from day to day, and over a month that alone reads as +-2 %/yr
    min_days: int = 90
    days_kept: int = 365
    interval_km: float = 15_000.0
    interval_days: float = 365.0
    warn_km: float = 1_000.0
    warn_days: float = 30.0


def battery_step(
    state: dict[str, Any], vin: str, ts: int, soh_pct: float, params: WearParams
) -> list[Alert]:
    """One state-of-health reading into ``state`` (the car's own); the alert it raises."""
    if not 0 < soh_pct <= 110 or ts <= int(state.get("ts", 0)):
        return []
    state["ts"] = ts
    day = ts // _DAY_MS
    days: list[list[float]] = state.setdefault("days", [])  # [day, sum, count]
    if days and int(days[-1][0]) == day:
        days[-1][1] += soh_pct
        days[-1][2] += 1
        return []  # a day is judged once it is over
    closed = [[d * 86_400.0, total / count] for d, total, count in days]
    days.append([day, soh_pct, 1])
    state["days"] = days[-params.days_kept :]
    if (
        state.get("told")
        or len(closed) < 2
        or closed[-1][0] - closed[0][0] < (params.min_days - 1) * 86_400.0
    ):
        return []
    per_year = theil_sen_per_day(closed) * _DAYS_PER_YEAR
    if per_year > -params.fade_pct_per_year:
        return []
    state["told"] = True
    return [
        Alert(
            alert_id=alert_id(vin, AlertKind.BATTERY_FADE, "battery", ts),
            vin=vin,
            kind=AlertKind.BATTERY_FADE,
            subject="battery",
            severity=Severity.WARNING,
            state=AlertState.RAISED,
            ts=ts,
            raised_ts=ts,
            title=f"Traction battery fading at {-per_year:.1f} % a year",
            action="Book a battery health check (cell balance, cooling, charging habits)",
            evidence={
                "pct_per_year": round(per_year, 2),
                "soh_pct": round(closed[-1][1], 2),
                "days": len(closed),
                "normal_pct_per_year": 2.3,
            },
        )
    ]


def service_step(
    state: dict[str, Any], vin: str, ts: int, odometer_km: float, params: WearParams
) -> list[Alert]:
    """An odometer reading into ``state`` (the car's own); the alert it raises or makes due."""
    if ts <= int(state.get("ts", 0)):
        return []
    state["ts"] = ts
    state.setdefault("since_ts", ts)
    state.setdefault("since_km", odometer_km)
    driven = odometer_km - float(state["since_km"])
    days = (ts - int(state["since_ts"])) / _DAY_MS
    left_km, left_days = params.interval_km - driven, params.interval_days - days
    if left_km <= 0 or left_days <= 0:
        level = "due"
    elif left_km <= params.warn_km or left_days <= params.warn_days:
        level = "warning"
    else:
        return []
    if state.get("level") == level:
        return []
    state["level"] = level
    raised = state.get("open")
    evidence = {
        "km_left": round(left_km, 1),
        "days_left": round(left_days, 1),
        "since_km": float(state["since_km"]),
        "since_ts": int(state["since_ts"]),
    }
    severity = Severity.WARNING if level == "due" else Severity.INFO
    if raised is None:
        alert = Alert(
            alert_id=alert_id(vin, AlertKind.SERVICE_DUE, "service", ts),
            vin=vin,
            kind=AlertKind.SERVICE_DUE,
            subject="service",
            severity=severity,
            state=AlertState.RAISED,
            ts=ts,
            raised_ts=ts,
            title="Service due" if level == "due" else "Service due soon",
            action="Book the periodic service",
            evidence=evidence,
        )
    else:  # the same alert, now due: written again with its new severity
        alert = msgspec.structs.replace(
            msgspec.convert(raised, Alert),
            severity=severity,
            ts=ts,
            title="Service due",
            evidence=evidence,
        )
    state["open"] = msgspec.to_builtins(alert)
    return [alert]


def service_recorded(state: dict[str, Any], ts: int, odometer_km: float) -> list[Alert]:
    """A service was done at ``ts`` and ``odometer_km``: the next interval starts there; the
    open alert, if any, is resolved."""
    raised = state.get("open")
    state.update(since_ts=ts, since_km=odometer_km, level=None, open=None)
    if raised is None:
        return []
    alert = msgspec.convert(raised, Alert)
    return [msgspec.structs.replace(alert, state=AlertState.RESOLVED, ts=ts)]
