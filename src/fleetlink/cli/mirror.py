"""``fleetlink mirror``: replication between the edge and the cloud cluster."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from fleetlink.adapters.runtime.health import serve
from fleetlink.adapters.runtime.watchdog import (
    StopDeadline,
    exit_when_a_thread_dies,
    stop_on_signals,
)
from fleetlink.cli.common import settings_from
from fleetlink.contracts.topics import Site
from fleetlink.logs import configure
from fleetlink.mirror.monitor import ReplicationMonitor

app = typer.Typer(help="Replication between the edge and the cloud cluster.", no_args_is_help=True)


@app.command("monitor")
def monitor(
    ctx: typer.Context,
    site: Annotated[
        Site | None,
        typer.Option("--site", help="The side it watches the flow into (default: site)."),
    ] = None,
) -> None:
    """Watch the flow into this side's cluster: lag, records lost to the source's retention
    (/metrics, alerts on fleet.replication-alerts); Ctrl-C stops."""
    settings = settings_from(ctx)
    if site is not None:
        settings = settings.at_site(site)
    log = configure("mirror-monitor")
    stop = threading.Event()
    stop_on_signals(stop, StopDeadline(settings.runtime.stop_grace_s, log))
    exit_when_a_thread_dies(log)
    watcher = ReplicationMonitor(settings, log)
    if settings.replication.metrics_port:
        serve(
            watcher.registry,
            settings.replication.metrics_port,
            healthy=lambda: (True, "running"),
            ready=lambda: (watcher.lag_s is not None, f"lag {watcher.lag_s} s"),
        )
    watcher.run(stop)
