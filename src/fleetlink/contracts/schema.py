"""JSON Schema export of the contract models, the single source of truth for every channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from fleetlink.contracts.asyncapi import asyncapi_document
from fleetlink.contracts.campaigns import (
    Campaign,
    CampaignRequest,
    CampaignVehicle,
    SoftwareReport,
)
from fleetlink.contracts.fleet import Trip, VehicleState
from fleetlink.contracts.geofences import GeofenceDefinition, GeofenceEvent
from fleetlink.contracts.hazards import Hazard
from fleetlink.contracts.models import MODELS
from fleetlink.contracts.parking import ParkingCell
from fleetlink.contracts.purchases import Entitlement, PaymentRecord, Purchase
from fleetlink.contracts.replication import ReplicationAlert

_encoder = msgspec.json.Encoder(order="sorted")


def json_schemas() -> dict[str, dict[str, Any]]:
    """One self-contained JSON Schema per contract model, by model name."""
    records = {
        "parking-cell": ParkingCell,
        "vehicle-state": VehicleState,
        "trip": Trip,
        "geofence": GeofenceDefinition,
        "geofence-event": GeofenceEvent,
        "replication-alert": ReplicationAlert,
        "payment-record": PaymentRecord,
        "purchase": Purchase,
        "entitlement": Entitlement,
        "campaign-request": CampaignRequest,
        "campaign": Campaign,
        "campaign-vehicle": CampaignVehicle,
        "software-report": SoftwareReport,
    }
    models = {**MODELS, "hazard": Hazard, **records}
    return {name: msgspec.json.schema(model) for name, model in models.items()}


def inline_schema(model: Any) -> dict[str, Any]:
    """The JSON Schema of a flat model (no nested structs) without its ``$defs`` indirection,
    to embed in another document (the OpenAPI request bodies)."""
    schema = msgspec.json.schema(model)
    if "$ref" in schema:
        defs = schema["$defs"]
        schema = dict(defs[schema["$ref"].rsplit("/", 1)[-1]])
        if len(defs) > 1:
            raise ValueError(f"{model!r} nests other structs: embed its components instead")
    schema.pop("title", None)
    return schema


def render_schema(schema: dict[str, Any]) -> str:
    return msgspec.json.format(_encoder.encode(schema), indent=2).decode() + "\n"


ASYNCAPI_FILE = "asyncapi.json"


def contract_files() -> dict[str, str]:
    """Every exported contract file by name: one JSON Schema per model and the AsyncAPI document."""
    files = {
        f"{name}.schema.json": render_schema(schema) for name, schema in json_schemas().items()
    }
    files[ASYNCAPI_FILE] = render_schema(asyncapi_document())
    return files


def write_json_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in contract_files().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
