"""JSON Schema export of the contract models, the single source of truth for every channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from fleetlink.contracts.models import MODELS

_encoder = msgspec.json.Encoder(order="sorted")


def json_schemas() -> dict[str, dict[str, Any]]:
    """One self-contained JSON Schema per contract model, by model name."""
    return {name: msgspec.json.schema(model) for name, model in MODELS.items()}


def render_schema(schema: dict[str, Any]) -> str:
    return msgspec.json.format(_encoder.encode(schema), indent=2).decode() + "\n"


def write_json_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = out_dir / f"{name}.schema.json"
        path.write_text(render_schema(schema), encoding="utf-8")
        written.append(path)
    return written
