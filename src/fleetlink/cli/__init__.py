"""The ``fleetlink`` command: each sub-command delegates to its package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from fleetlink import __version__
from fleetlink.cli import (
    apps,
    campaigns,
    config,
    contracts,
    gateway,
    mirror,
    ota,
    payments,
    purchases,
    stack,
    topics,
)
from fleetlink.cli.api import api
from fleetlink.cli.common import console, err_console
from fleetlink.cli.demo import demo
from fleetlink.cli.security import login, pki_app, token, users_app, vehicles_app
from fleetlink.cli.simulate import simulate, street_map
from fleetlink.cli.tracker import tracker
from fleetlink.errors import FleetlinkError

app = typer.Typer(
    name="fleetlink",
    help="Connect vehicle fleets to Apache Kafka over MQTT.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(topics.app, name="topics")
app.add_typer(gateway.app, name="gateway")
app.add_typer(config.app, name="config")
app.add_typer(apps.app, name="app")
app.add_typer(contracts.app, name="contracts")
app.add_typer(mirror.app, name="mirror")
app.add_typer(payments.app, name="payments")
app.add_typer(purchases.app, name="purchases")
app.add_typer(ota.app, name="ota")
app.add_typer(campaigns.app, name="campaigns")
app.command("demo")(demo)
app.command("api")(api)
app.command("simulate")(simulate)
app.command("street-map")(street_map)
app.command("tracker")(tracker)
app.add_typer(pki_app, name="pki")
app.add_typer(vehicles_app, name="vehicles")
app.add_typer(users_app, name="users")
app.command("token")(token)
app.command("login")(login)


def _print_version(value: bool) -> None:
    if value:
        console.print(f"fleetlink {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML settings file (default: $FLEETLINK_CONFIG, else ./fleetlink.toml).",
            dir_okay=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    ctx.obj = config


def main() -> None:
    """Console entry point: user-facing errors become one red line each, never a traceback."""
    try:
        app()
    except FleetlinkError as error:
        for line in str(error).splitlines():
            err_console.print(
                Text.assemble(("error: ", "bold red"), line), highlight=False, soft_wrap=True
            )
        raise SystemExit(1) from None
