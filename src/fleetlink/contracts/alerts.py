"""Maintenance alerts: what the maintenance app finds in a car's data, with the evidence.

``Alert`` on ``fleet.alerts`` (key: VIN), written each time its state changes: ``raised``, then
perhaps ``acknowledged`` (by a person, ``acknowledged_by``), then ``resolved`` (the car says
so: a DTC cleared, a tire refilled, a service recorded). ``alert_id`` is
``{vin}/{kind}/{subject}/{raised_ts}``: the same when a replay writes it again.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import msgspec

from fleetlink.contracts.models import EpochMillis, Vin


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertKind(StrEnum):
    DTC = "dtc"
    TIRE_LEAK = "tire-leak"
    TIRE_CRITICAL = "tire-critical"
    BATTERY_FADE = "battery-fade"
    SERVICE_DUE = "service-due"


class AlertState(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(msgspec.Struct, frozen=True, omit_defaults=True):
    alert_id: str
    vin: Vin
    kind: AlertKind
    subject: str  # what it is about: a DTC, a wheel, "battery", "service"
    severity: Severity
    state: AlertState
    ts: EpochMillis  # when it entered this state
    raised_ts: EpochMillis
    title: str
    action: str  # what to do about it
    evidence: dict[str, Any] = {}
    acknowledged_by: str | None = None


class AlertAck(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A person acknowledged an alert (``fleet.alert-acks``, key: VIN)."""

    alert_id: str
    vin: Vin
    by: str
    ts: EpochMillis


class ServiceRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A service done (compacted ``fleet.services``, key: VIN): the next interval starts."""

    vin: Vin
    ts: EpochMillis
    odometer_km: Annotated[float, msgspec.Meta(ge=0)]
    by: str
    note: str = ""


def alert_id(vin: str, kind: AlertKind, subject: str, raised_ts: int) -> str:
    return f"{vin}/{kind.value}/{subject}/{raised_ts}"
