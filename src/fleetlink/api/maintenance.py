"""Maintenance over HTTP: the alerts (asked, live, acknowledged), a vehicle's health, and the
services a fleet admin records.

The maintenance app owns the alerts' lifecycle: an acknowledgement goes to
``fleet.alert-acks``, the app takes it and writes the alert ``acknowledged`` (202 here: it turns
so within a checkpoint); a recorded service goes to compacted ``fleet.services`` and starts the
car's next interval. Both are audited under the caller's name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

import msgspec
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field

from fleetlink.adapters.kafka.seams import RecordSink
from fleetlink.api.auth import Caller, require_vehicle
from fleetlink.api.bodies import ApiBody
from fleetlink.api.commands import commands_state
from fleetlink.api.errors import (
    AUTHENTICATED,
    WITH_BODY,
    ApiError,
    VinPath,
    documented,
    read_when_ready,
)
from fleetlink.api.sse import frame, live_stream
from fleetlink.apps.maintenance.read_model import SEVERITY_RANK, AlertQuery, AlertReadModel
from fleetlink.contracts.alerts import Alert, AlertAck, AlertState, ServiceRecord, Severity
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import AuditEvent
from fleetlink.security.access import Principal
from fleetlink.security.users import UserRole

router = APIRouter(prefix="/v1", tags=["maintenance"], responses=documented(*AUTHENTICATED))

_encode = msgspec.json.Encoder().encode
_DAY_MS: Final = 86_400_000
_OPEN: Final = (AlertState.RAISED, AlertState.ACKNOWLEDGED)

AlertIdPath = Annotated[
    str,
    Path(
        min_length=20,
        max_length=200,
        description="an alert's id, `{vin}/{kind}/{subject}/{raised_ts}`, as the alert has it",
    ),
]


class ServiceRequest(ApiBody):
    odometer_km: float = Field(ge=0, le=10_000_000, description="the odometer at the service")
    days_ago: float = Field(
        default=0,
        ge=0,
        le=3650,
        description="done this many days ago (a service entered late); default today",
    )
    note: str = Field(default="", max_length=500)


@dataclass
class MaintenanceState:
    view: AlertReadModel
    acks_topic: str  # fleet.alert-acks
    services_topic: str  # fleet.services
    interval_km: float  # apps.maintenance.service_interval_km
    interval_days: float
    deliveries: RecordSink | None = field(default=None)

    async def write(self, topic: str, vin: str, record: AlertAck | ServiceRecord) -> None:
        assert self.deliveries is not None
        await self.deliveries.produce(topic, encode(record), vin.encode(), [])


def maintenance_state(request: Request) -> MaintenanceState:
    state: MaintenanceState = request.app.state.maintenance
    return state


def _ready(request: Request) -> AlertReadModel:
    return read_when_ready(maintenance_state(request).view, "the alerts")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _states(asked: str) -> tuple[AlertState, ...] | None:
    if asked == "open":
        return _OPEN
    if asked == "any":
        return None
    return (AlertState(asked),)


StateQuery = Annotated[
    str,
    Query(
        pattern="^(open|any|raised|acknowledged|resolved)$",
        description="open (raised or acknowledged), any, or one state",
    ),
]


@router.get(
    "/alerts",
    summary="Maintenance alerts, newest raised first: open ones unless asked otherwise",
    responses=documented(503),
)
async def list_alerts(
    request: Request,
    caller: Caller,
    severity: Annotated[list[Severity] | None, Query(description="only these (repeat)")] = None,
    vin: Annotated[str | None, Query(max_length=17)] = None,
    state: StateQuery = "open",
    before: Annotated[int | None, Query(ge=0, description="raised before (ms)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """Of the vehicles the caller may read. Every open alert is here; of the resolved ones the
    newest 10,000 of the platform (``fleet.alerts`` holds them all)."""
    query = AlertQuery(_states(state), severity, vin, before, limit)
    alerts = _ready(request).alerts(query, caller.may_read_vehicle)
    return JSONResponse({"alerts": [msgspec.to_builtins(a) for a in alerts]})


@router.get(
    "/alerts/live",
    summary="Alerts as their state changes: raised, acknowledged, resolved (SSE)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **documented(503)},
)
async def live_alerts(
    request: Request,
    caller: Caller,
    severity: Annotated[list[Severity] | None, Query(description="only these (repeat)")] = None,
    vin: Annotated[str | None, Query(max_length=17)] = None,
) -> StreamingResponse:
    """``alert`` events, each an alert as ``fleet.alerts`` holds it; a ``ready`` event first."""
    view = _ready(request)

    def chosen(alert: Alert) -> bool:
        return (
            caller.may_read_vehicle(alert.vin)
            and (vin is None or alert.vin == vin)
            and (severity is None or alert.severity in severity)
        )

    def to_frame(alert: Alert) -> bytes:
        return frame("alert", f"{alert.alert_id}@{alert.state.value}", _encode(alert))

    return live_stream(view.listen, chosen, to_frame)


def _readable_alert(request: Request, alert_id: str, caller: Principal) -> Alert:
    """The alert, if the caller may read its vehicle; 404 otherwise (its existence is not told)."""
    alert = _ready(request).alert(alert_id)
    if alert is None or not caller.may_read_vehicle(alert.vin):
        raise ApiError(404, "unknown-alert", f"no alert {alert_id}")
    return alert


@router.post(
    "/alerts/{alert_id:path}/ack",
    status_code=202,
    summary="Acknowledge an alert: someone is on it (fleet admins, the car's owner)",
    responses=documented(404, 409, 503),
)
async def acknowledge_alert(
    request: Request, alert_id: AlertIdPath, caller: Caller
) -> JSONResponse:
    """202: the acknowledgement is in Kafka; the maintenance app writes the alert
    ``acknowledged`` when it takes it. 200: it was acknowledged already. 409: it is resolved.
    An acknowledged alert stays so until the car resolves it, whatever its severity does."""
    alert = _readable_alert(request, alert_id, caller)
    if not (caller.role is UserRole.FLEET_ADMIN or caller.owns(alert.vin)):
        raise ApiError(403, "forbidden", f"the {caller.role.value} role acknowledges no alerts")
    if alert.state is AlertState.RESOLVED:
        raise ApiError(409, "alert-resolved", f"alert {alert_id} is resolved already")
    if alert.state is AlertState.ACKNOWLEDGED:
        return JSONResponse(msgspec.to_builtins(alert))
    state = maintenance_state(request)
    now = _now_ms()
    ack = AlertAck(alert_id=alert.alert_id, vin=alert.vin, by=caller.name, ts=now)
    await state.write(state.acks_topic, alert.vin, ack)
    await commands_state(request).audit(
        AuditEvent(now, alert.vin, caller.name, "alert.acknowledged", detail=alert.alert_id)
    )
    return JSONResponse(
        msgspec.to_builtins(ack), status_code=202, headers={"Location": f"/v1/alerts/{alert_id}"}
    )


@router.get(
    "/alerts/{alert_id:path}",
    summary="An alert in its latest state, with its evidence",
    responses=documented(404, 503),
)
async def get_alert(request: Request, alert_id: AlertIdPath, caller: Caller) -> JSONResponse:
    return JSONResponse(msgspec.to_builtins(_readable_alert(request, alert_id, caller)))


@router.get(
    "/vehicles/{vin}/health",
    summary="A vehicle's health: its open alerts, the worst first, and its service interval",
    responses=documented(403, 503),
)
async def vehicle_health(request: Request, vin: VinPath, caller: Caller) -> JSONResponse:
    """``status``: ``ok``, or the worst open alert's severity. ``service``: the last recorded
    service and when the next is due (by km or date, whichever comes first)."""
    require_vehicle(caller, vin)
    view = _ready(request)
    opened = view.alerts(AlertQuery(_OPEN, vin=vin, limit=1000), lambda _vin: True)
    opened.sort(key=lambda a: (-SEVERITY_RANK[a.severity], -a.raised_ts))
    state = maintenance_state(request)
    last = view.last_service(vin)
    service: dict[str, Any] | None = None
    if last is not None:
        service = {
            "last": msgspec.to_builtins(last),
            "next_due_km": last.odometer_km + state.interval_km,
            "next_due_ts": last.ts + round(state.interval_days * _DAY_MS),
        }
    return JSONResponse(
        {
            "vin": vin,
            "status": opened[0].severity.value if opened else "ok",
            "open_alerts": [msgspec.to_builtins(a) for a in opened],
            "service": service,
        }
    )


@router.post(
    "/vehicles/{vin}/services",
    status_code=201,
    summary="Record a service done (fleet admins): the next interval starts from it",
    responses=documented(*WITH_BODY, 503),
)
async def record_service(
    request: Request, vin: VinPath, body: ServiceRequest, caller: Caller
) -> JSONResponse:
    """Resolves the car's service-due alert, and the next interval counts from it."""
    if caller.role is not UserRole.FLEET_ADMIN:
        raise ApiError(403, "forbidden", f"the {caller.role.value} role records no services")
    now = _now_ms()
    done_at = now - round(body.days_ago * _DAY_MS)
    odometer = body.odometer_km
    state = maintenance_state(request)
    view = _ready(request)
    record = ServiceRecord(
        vin=vin, ts=done_at, odometer_km=odometer, by=caller.name, note=body.note
    )
    await state.write(state.services_topic, vin, record)
    view.put_service(record)
    await commands_state(request).audit(
        AuditEvent(now, vin, caller.name, "service.recorded", detail=f"{odometer:.0f} km")
    )
    return JSONResponse(
        msgspec.to_builtins(record),
        status_code=201,
        headers={"Location": f"/v1/vehicles/{vin}/health"},
    )
