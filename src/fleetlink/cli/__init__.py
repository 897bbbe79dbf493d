"""The ``fleetlink`` command: each sub-command delegates to its package."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from fleetlink import __version__
from fleetlink.cli.common import console, err_console
from fleetlink.errors import FleetlinkError

# name: (module, attribute: a Typer app or one command's function, the line its help shows)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("demo", "demo", "Run the whole platform on the local stack with a live status view."),
    "api": ("api", "api", "Serve the HTTP API and the dashboard."),
    "simulate": ("simulate", "simulate", "Run simulated vehicles against the MQTT broker."),
    "load-fleet": ("load_fleet", "load_fleet", "Run a light load fleet for benchmarks."),
    "street-map": ("simulate", "street_map", "Write the simulated city's streets as GeoJSON."),
    "tracker": ("tracker", "tracker", "Follow every command through its lifecycle."),
    "token": ("security", "token", "Print a bearer token for an API user."),
    "login": ("security", "login", "Print a dashboard link that logs NAME in once."),
    "stack": ("stack", "app", "The local Kafka + Mosquitto stack."),
    "topics": ("topics", "app", "The platform's Kafka topics."),
    "gateway": (
        "gateway",
        "app",
        "The uplink gateway: vehicle messages from MQTT into Kafka.",
    ),
    "config": ("config", "app", "The effective settings."),
    "app": ("apps", "app", "The stream apps (Quix Streams), one instance per process."),
    "contracts": ("contracts", "app", "The MQTT and Kafka contracts."),
    "mirror": ("mirror", "app", "Replication between the edge and the cloud cluster."),
    "payments": ("payments", "app", "The payment provider."),
    "purchases": ("purchases", "app", "Features on demand: purchases, entitlements, refunds."),
    "ota": ("ota", "app", "OTA images: release, list, make test images."),
    "campaigns": ("campaigns", "app", "OTA campaigns: roll software out in groups."),
    "pki": ("security", "pki_app", "The development PKI: CA, broker and client certificates."),
    "vehicles": ("security", "vehicles_app", "Vehicle identities: one certificate per VIN."),
    "users": ("security", "users_app", "API users and their roles."),
}


class LazyCommands(TyperGroup):
    """Each sub-command's module is imported when that command runs, not before: a process
    imports what it runs (a gateway worker or a stream app starts in a fraction of the time
    that importing every command took); the command list shows the table's lines."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, line = COMMANDS[cmd_name]
        if self._listing:
            return TyperCommand(cmd_name, help=line)
        target = getattr(importlib.import_module(f"fleetlink.cli.{module}"), attribute)
        if isinstance(target, typer.Typer):  # a group, even of one command (`config show`)
            command: Any = typer.main.get_group(target)
        else:
            single = typer.Typer()
            single.command(cmd_name)(target)
            command = typer.main.get_command(single)
        command.name = cmd_name
        return command


app = typer.Typer(
    name="fleetlink",
    cls=LazyCommands,
    help="Connect vehicle fleets to Apache Kafka over MQTT.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
