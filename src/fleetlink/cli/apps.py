"""``fleetlink app``: the stream apps, one instance per process."""

from __future__ import annotations

import threading
from typing import Annotated

import typer
from confluent_kafka import KafkaException
from rich.table import Table

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.runtime.watchdog import (
    StopDeadline,
    exit_when_a_thread_dies,
    stop_when_orphaned,
)
from fleetlink.cli.common import console, settings_from
from fleetlink.errors import FleetlinkError
from fleetlink.logs import configure

app = typer.Typer(help="The stream apps (Quix Streams), one instance per process.")


@app.command("run")
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The app (see `fleetlink app list`).")],
    instance: Annotated[
        int, typer.Option("--instance", min=0, max=99, help="Instances share the partitions.")
    ] = 0,
) -> None:
    """Run one instance of an app until SIGTERM or Ctrl-C."""
    # Quix Streams takes half a second to import: only the commands that run apps pay for it
    from fleetlink.apps.registry import APPS, metrics_offset
    from fleetlink.apps.runtime.application import AppRuntime

    spec = APPS.get(name)
    if spec is None:
        raise FleetlinkError(f"no app {name!r} (known: {', '.join(sorted(APPS))})")
    settings = settings_from(ctx)
    log = configure(f"app.{name}")
    exit_when_a_thread_dies(log)
    # Quix handles SIGTERM once it runs; an app whose parent died (kill -9 of the demo, Kafka
    # gone with it) must not linger in a start-up or a close that waits for that Kafka
    stop_when_orphaned(threading.Event(), StopDeadline(settings.runtime.stop_grace_s, log))
    runtime = AppRuntime(
        settings,
        name,
        instance,
        log,
        port_offset=metrics_offset(name),
        exactly_once=spec.exactly_once,
    )
    spec.build(runtime)
    runtime.run()


@app.command("list")
def list_apps(ctx: typer.Context) -> None:
    """The apps, their consumer groups, running instances and lag."""
    from fleetlink.apps.registry import APPS
    from fleetlink.apps.runtime.metrics import AppMetrics, LagProbe, app_group

    settings = settings_from(ctx)
    kafka = KafkaClients.of(settings)
    table = Table(title="Stream apps", title_justify="left")
    for column in ("app", "what it does", "group", "instances", "lag"):
        table.add_column(column, overflow="fold")
    admin = kafka.admin()
    for name, spec in sorted(APPS.items()):
        group = app_group(settings, name)
        try:
            described = admin.describe_consumer_groups([group])[group].result(10)
            members = str(len(described.members))
            inputs = settings.topic_map().names(spec.inputs)
            lag = str(LagProbe(kafka, group, inputs, AppMetrics(name)).measure())
        except KafkaException as error:
            members, lag = "?", f"Kafka: {error.args[0]}"
        except TimeoutError:
            members, lag = "?", "Kafka did not answer within 10 s"
        table.add_row(name, spec.description, group, members, lag)
    console.print(table)
