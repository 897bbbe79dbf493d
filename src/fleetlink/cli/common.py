"""What every sub-command shares: consoles, common options, settings from the global --config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fleetlink.settings import Settings, load_settings
from fleetlink.settings.stack import Topology

console = Console()
err_console = Console(stderr=True)

BrokersOption = Annotated[
    int | None,
    typer.Option("--brokers", help="Kafka nodes of the local stack: 1, or 3 for replication."),
]
TopologyOption = Annotated[
    Topology | None,
    typer.Option(
        "--topology",
        help="single: one Kafka. edge-cloud: an edge and a cloud Kafka linked by MirrorMaker 2.",
    ),
]
StateDirOption = Annotated[
    Path | None, typer.Option("--state-dir", help="Where the local stack keeps all its state.")
]


def settings_from(ctx: typer.Context, **sections: dict[str, Any]) -> Settings:
    """Settings from the root command's --config, the environment, and flags by section."""
    config_file: Path | None = ctx.find_root().obj
    return load_settings(config_file, **sections)
