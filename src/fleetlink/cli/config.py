"""``fleetlink config``: the effective settings."""

from __future__ import annotations

import typer
from rich.syntax import Syntax

from fleetlink.cli.common import console, settings_from
from fleetlink.settings import dump_toml

app = typer.Typer(help="The effective settings.", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context) -> None:
    """Print the settings in effect (file, environment, defaults) as TOML; secrets masked."""
    console.print(Syntax(dump_toml(settings_from(ctx)), "toml", theme="ansi_dark"))
