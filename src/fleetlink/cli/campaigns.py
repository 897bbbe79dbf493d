"""``fleetlink campaigns run``: the OTA campaign orchestrator (the director), in the cloud."""

from __future__ import annotations

import threading

import typer

from fleetlink.adapters.runtime.watchdog import (
    StopDeadline,
    exit_when_a_thread_dies,
    stop_on_signals,
    stop_when_orphaned,
)
from fleetlink.campaigns.orchestrator import Orchestrator
from fleetlink.cli.common import settings_from
from fleetlink.logs import configure

app = typer.Typer(help="OTA campaigns: roll software out in groups, pause, resume, abort.")


@app.command("run")
def run(ctx: typer.Context) -> None:
    """Run the campaigns: start groups, send signed orders, follow the cars' reports;
    Ctrl-C stops."""
    settings = settings_from(ctx)
    log = configure("campaigns")
    stop = threading.Event()
    deadline = StopDeadline(settings.runtime.stop_grace_s, log)
    stop_on_signals(stop, deadline)
    stop_when_orphaned(stop, deadline)
    exit_when_a_thread_dies(log)
    Orchestrator(settings, log).run(stop)
