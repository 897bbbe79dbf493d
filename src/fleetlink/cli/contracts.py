"""``fleetlink contracts``: export the MQTT and Kafka contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetlink.cli.common import console
from fleetlink.contracts.schema import write_json_schemas

app = typer.Typer(help="The MQTT and Kafka contracts.", no_args_is_help=True)


@app.command("schema")
def schema(
    out: Annotated[Path, typer.Option("--out", help="Where to write.")] = Path("schemas"),
) -> None:
    """Write a JSON Schema for every contract model."""
    for path in write_json_schemas(out):
        console.print(f"wrote {path}")
