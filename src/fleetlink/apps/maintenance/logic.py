"""Predictive maintenance, pure: one car's inputs to its alerts (``contracts.alerts``).

Inputs are plain dicts, as the runtime gives them: ``telemetry`` (tire pressures and the air's
temperature, the battery's state of health, the odometer), ``event`` (``dtc`` events),
``service`` (a service recorded through the API) and ``ack`` (a person acknowledged an alert).
Each car keeps, in the store, what each judge needs (``m|{vin}``) and its open alerts by id
(``o|{vin}``): an acknowledged alert stays acknowledged whatever its judge says of it later
(a severity that rises, say), until it is resolved; a restart reads it back from the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import msgspec

from fleetlink.apps.maintenance.dtc import DtcParams, dtc_step
from fleetlink.apps.maintenance.tires import WHEELS, Found, TireFinding, TireParams, tire_step
from fleetlink.apps.maintenance.wear import (
    WearParams,
    battery_step,
    service_recorded,
    service_step,
)
from fleetlink.apps.runtime.watermark import Store
from fleetlink.contracts.alerts import Alert, AlertKind, AlertState, Severity, alert_id
from fleetlink.contracts.models import EventKind

_TIRE_KINDS = {
    TireFinding.LEAK: (AlertKind.TIRE_LEAK, Severity.WARNING, "Slow leak", "Check the tire"),
    TireFinding.CRITICAL: (
        AlertKind.TIRE_CRITICAL,
        Severity.CRITICAL,
        "Tire pressure critically low",
        "Stop when safe; inflate or change the tire before driving on",
    ),
}
_WHEEL_NAMES = dict(
    zip(WHEELS, ("front-left", "front-right", "rear-left", "rear-right"), strict=True)
)


@dataclass(frozen=True)
class MaintenanceParams:
    tires: TireParams = field(default_factory=TireParams)
    dtc: DtcParams = field(default_factory=DtcParams)
    wear: WearParams = field(default_factory=WearParams)


class MaintenanceShard:
    def __init__(self, store: Store, params: MaintenanceParams) -> None:
        self._store = store
        self._params = params

    def handle(self, item: Mapping[str, Any]) -> list[Alert]:
        kind, vin = item.get("t"), str(item.get("vin", ""))
        if not vin:
            return []
        car: dict[str, Any] = self._store.get(f"m|{vin}") or {}
        ts = int(item.get("ts", 0))
        if kind == "telemetry":
            found = self._telemetry(car, vin, ts, item)
        elif kind == "event" and item.get("kind") == EventKind.DTC.value:
            found = dtc_step(car.setdefault("dtc", {}), vin, ts, item.get("data") or {}, self._dtc)
        elif kind == "service" and item.get("odo") is not None:
            found = service_recorded(car.setdefault("service", {}), ts, float(item["odo"]))
        elif kind == "ack":
            return self._ack(vin, str(item.get("alert_id", "")), str(item.get("by", "")), ts)
        else:
            return []
        self._store.set(f"m|{vin}", car)
        return self._index(vin, found)

    @property
    def _dtc(self) -> DtcParams:
        return self._params.dtc

    def _telemetry(
        self, car: dict[str, Any], vin: str, ts: int, item: Mapping[str, Any]
    ) -> list[Alert]:
        found: list[Alert] = []
        tires, air = item.get("tires"), item.get("air_c")
        if isinstance(tires, list) and None not in tires and air is not None:
            pressures = dict(zip(WHEELS, tires, strict=True))
            own = item.get("tire_c")
            air_in = dict(zip(WHEELS, own, strict=True)) if _full(own) else None
            tire_state = car.setdefault("tires", {})
            found += [
                _tire_alert(vin, f)
                for f in tire_step(tire_state, ts, pressures, air, self._params.tires, air_in)
            ]
        if item.get("soh") is not None:
            battery = car.setdefault("battery", {})
            found += battery_step(battery, vin, ts, float(item["soh"]), self._params.wear)
        if item.get("odo") is not None:
            service = car.setdefault("service", {})
            found += service_step(service, vin, ts, float(item["odo"]), self._params.wear)
        return found

    def _index(self, vin: str, alerts: list[Alert]) -> list[Alert]:
        """Keep the car's open alerts; an acknowledged one stays so until it is resolved."""
        if not alerts:
            return []
        opened: dict[str, Any] = self._store.get(f"o|{vin}") or {}
        out = []
        for alert in alerts:
            known = opened.get(alert.alert_id)
            if known is not None and known["state"] == AlertState.ACKNOWLEDGED.value:
                if alert.state is not AlertState.RESOLVED:
                    alert = msgspec.structs.replace(
                        alert,
                        state=AlertState.ACKNOWLEDGED,
                        acknowledged_by=known.get("acknowledged_by"),
                    )
                else:
                    alert = msgspec.structs.replace(
                        alert, acknowledged_by=known.get("acknowledged_by")
                    )
            if alert.state is AlertState.RESOLVED:
                opened.pop(alert.alert_id, None)
            else:
                opened[alert.alert_id] = msgspec.to_builtins(alert)
            out.append(alert)
        self._store.set(f"o|{vin}", opened)
        return out

    def _ack(self, vin: str, alert_id_: str, by: str, ts: int) -> list[Alert]:
        opened: dict[str, Any] = self._store.get(f"o|{vin}") or {}
        known = opened.get(alert_id_)
        if known is None or known["state"] != AlertState.RAISED.value:
            return []  # unknown, resolved, or acknowledged already: nothing changes
        alert = msgspec.structs.replace(
            msgspec.convert(known, Alert),
            state=AlertState.ACKNOWLEDGED,
            ts=max(ts, int(known["ts"])),
            acknowledged_by=by or None,
        )
        opened[alert_id_] = msgspec.to_builtins(alert)
        self._store.set(f"o|{vin}", opened)
        return [alert]

    def open_alerts(self, vin: str) -> list[Alert]:
        opened: dict[str, Any] = self._store.get(f"o|{vin}") or {}
        return [msgspec.convert(value, Alert) for value in opened.values()]


def _full(values: object) -> TypeGuard[list[float]]:
    return isinstance(values, list) and len(values) == len(WHEELS) and None not in values


def _tire_alert(vin: str, found: Found) -> Alert:
    kind, severity, title, action = _TIRE_KINDS[found.finding]
    wheel = _WHEEL_NAMES[found.wheel]
    raised_ts = found.raised_ts if found.resolved else found.ts
    return Alert(
        alert_id=alert_id(vin, kind, wheel, raised_ts),
        vin=vin,
        kind=kind,
        subject=wheel,
        severity=severity,
        state=AlertState.RESOLVED if found.resolved else AlertState.RAISED,
        ts=found.ts,
        raised_ts=raised_ts,
        title=f"{title} ({wheel}){': refilled' if found.resolved else ''}",
        action=action,
        evidence=dict(found.evidence),
    )
