"""HTTP ingest: the same validation and mapping as MQTT; 202 only after Kafka acknowledged."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram

from fleetlink.adapters.kafka.delivery import KafkaUnavailableError
from fleetlink.adapters.kafka.seams import RecordSink
from fleetlink.api.auth import Caller
from fleetlink.api.errors import AUTHENTICATED, WITH_BODY, ApiError, VinPath, documented
from fleetlink.contracts.codec import DlqReason
from fleetlink.contracts.models import Event, EventKind, Telemetry
from fleetlink.contracts.schema import inline_schema
from fleetlink.contracts.topics import MqttTopic
from fleetlink.ingest.routing import Inbound, Router
from fleetlink.security.access import Principal
from fleetlink.security.users import UserRole

router = APIRouter(prefix="/v1", tags=["ingest"], responses=documented(*AUTHENTICATED))


def _body(model: Any, what: str) -> dict[str, Any]:
    """The request body, declared from the contract model the MQTT channel carries."""
    schema = inline_schema(model)
    schema["description"] = f"{what}; its vin, when given, is the path's"
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


# the body cannot be read at all: 400; it reads but breaks the contract: 422
_STATUS_FOR_REASON = {
    DlqReason.NOT_JSON: 400,
    DlqReason.INVALID_UTF8: 400,
    DlqReason.EMPTY: 400,
    DlqReason.TOO_LARGE: 413,
    DlqReason.NO_MAPPING: 404,
}


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "fleetlink_api_ingest_requests",
            "Ingest requests by channel and HTTP status",
            ["channel", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "fleetlink_api_ingest_seconds",
            "From request to Kafka acknowledgement",
            ["channel"],
            registry=registry,
        )


@dataclass
class IngestState:
    router: Router
    retry_after_s: int
    metrics: IngestMetrics
    deliveries: RecordSink | None = field(default=None)


async def _ingest(request: Request, topic: str, channel: str) -> JSONResponse:
    state: IngestState = request.app.state.ingest
    started = time.monotonic()
    body = await request.body()
    inbound = Inbound(
        topic=topic,
        payload=body,
        qos=1,
        received_ms=time.time_ns() // 1_000_000,
        content_type=request.headers.get("content-type"),
        source="http",
    )
    record = state.router.route(inbound)
    if record.dlq_reason is not None:
        status = _STATUS_FOR_REASON.get(record.dlq_reason, 422)
        state.metrics.requests.labels(channel, str(status)).inc()
        raise ApiError(status, record.dlq_reason.value, record.dlq_detail or "")
    assert state.deliveries is not None
    try:
        delivered = await state.deliveries.produce(
            record.topic, record.value, record.key, record.headers
        )
    except KafkaUnavailableError:
        state.metrics.requests.labels(channel, "503").inc()
        raise
    state.metrics.requests.labels(channel, "202").inc()
    state.metrics.seconds.labels(channel).observe(time.monotonic() - started)
    return JSONResponse(
        {
            "status": "accepted",
            "message_id": record.message_id,
            "topic": delivered.topic,
            "partition": delivered.partition,
            "offset": delivered.offset,
            "late": record.late,
        },
        status_code=202,
    )


@router.post(
    "/vehicles/{vin}/telemetry",
    status_code=202,
    summary="Telemetry of one vehicle (the MQTT telemetry payload)",
    responses=documented(*WITH_BODY, 404, 503),
    openapi_extra=_body(Telemetry, "the MQTT telemetry payload"),
)
async def post_telemetry(request: Request, vin: VinPath, caller: Caller) -> JSONResponse:
    _speaks_for(caller, vin)
    return await _ingest(request, MqttTopic.telemetry(vin), "telemetry")


@router.post(
    "/vehicles/{vin}/events/{kind}",
    status_code=202,
    summary="An event of one vehicle (the MQTT event payload)",
    responses=documented(*WITH_BODY, 404, 503),
    openapi_extra=_body(Event, "the MQTT event payload"),
)
async def post_event(
    request: Request, vin: VinPath, kind: EventKind, caller: Caller
) -> JSONResponse:
    _speaks_for(caller, vin)
    return await _ingest(request, MqttTopic.event(vin, kind.value), "events")


def _speaks_for(caller: Principal, vin: str) -> None:
    """A vehicle sends only its own data: the VIN of the path is the token's identity."""
    if caller.role is not UserRole.VEHICLE or caller.name != vin:
        raise ApiError(403, "forbidden", f"only vehicle {vin} itself sends its data")
