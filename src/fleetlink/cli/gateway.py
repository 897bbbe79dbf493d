"""``fleetlink gateway``: uplink workers under a supervisor, with a live status view."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fleetlink.adapters.runtime.watchdog import (
    StopDeadline,
    exit_when_a_thread_dies,
    stop_when_orphaned,
)
from fleetlink.adapters.supervisor import Supervisor
from fleetlink.cli.common import console, settings_from
from fleetlink.cli.stack import live_view
from fleetlink.gateway.monitor import scrape
from fleetlink.gateway.worker import UplinkWorker, worker_client_id
from fleetlink.logs import configure
from fleetlink.security.pki import Role
from fleetlink.settings import Settings
from fleetlink.stack.local import LocalStack

app = typer.Typer(help="The uplink gateway: every vehicle message from MQTT into Kafka.")

WorkersOption = Annotated[
    int | None, typer.Option("--workers", "-w", help="Worker processes (gateway.workers).")
]
DrainOption = Annotated[
    bool,
    typer.Option(
        "--drain-on-exit",
        help="On stop, leave the shared subscription and end the sessions (removing workers for "
        "good). Without it the broker keeps queueing for the stopped workers.",
    ),
]


def worker_argv(config_file: Path | None, index: int, drain_on_exit: bool) -> list[str]:
    argv = [sys.executable, "-m", "fleetlink"]
    if config_file is not None:
        argv += ["--config", str(config_file)]
    argv += ["gateway", "worker", "--index", str(index)]
    return argv + (["--drain-on-exit"] if drain_on_exit else [])


def ensure_worker_identities(settings: Settings, indexes: Iterable[int]) -> None:
    """Against the local stack each worker connects with a certificate of its own (its CN is
    its client id); issue the missing ones and let the broker know their rights."""
    if settings.uses_local_mqtt:
        names = [worker_client_id(settings, index) for index in indexes]
        LocalStack(settings.stack).access.ensure_services(names, Role.GATEWAY)


def new_supervisor(
    ctx: typer.Context, settings: Settings, *, drain_on_exit: bool = False
) -> Supervisor:
    config_file: Path | None = ctx.find_root().obj
    ensure_worker_identities(settings, range(settings.gateway.workers))
    return Supervisor.of_workers(
        lambda index: worker_argv(config_file, index, drain_on_exit),
        settings.gateway.workers,
        backoff_s=settings.gateway.restart_backoff_s,
        stop_timeout_s=settings.gateway.drain_timeout_s + 10,
        log=configure("gateway.supervisor"),
    )


def gateway_table(supervisor: Supervisor, settings: Settings) -> Table:
    prefix = settings.gateway.client_id_prefix
    table = Table(title=f"fleetlink gateway (workers {prefix}-N)", title_justify="left")
    columns = ("N", "pid", "state", "restarts", "received", "to Kafka", "DLQ")
    for column in (*columns, "in flight", "MQTT", "Kafka"):
        table.add_column(column, overflow="fold")
    port = settings.gateway.metrics_port
    for handle in supervisor.handles:
        stats = scrape(port + handle.index) if port and handle.running else None
        state = "[green]running[/]" if handle.running else "[yellow]restarting[/]"
        if stats is None:
            numbers = ["-"] * 6
        else:
            numbers = [
                *(f"{v:,.0f}" for v in (stats.received, stats.produced, stats.dlq, stats.inflight)),
                "[green]up[/]" if stats.connected else "[red]down[/]",
                "[green]up[/]" if stats.kafka_up else "[red]down[/]",
            ]
        table.add_row(
            str(handle.index),
            str(handle.pid or "-"),
            state,
            str(handle.restarts),
            *numbers,
        )
    return table


@app.callback(invoke_without_command=True)
def gateway(
    ctx: typer.Context,
    workers: WorkersOption = None,
    drain_on_exit: DrainOption = False,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
) -> None:
    """Run the uplink workers under a supervisor that restarts crashed ones (Ctrl-C stops)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_from(ctx, gateway={"workers": workers})
    supervisor = new_supervisor(ctx, settings, drain_on_exit=drain_on_exit)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    supervisor.start()
    try:
        live_view(
            lambda: gateway_table(supervisor, settings),
            duration=duration,
            tick=supervisor.check,
            stop=stop,
        )
    finally:
        supervisor.stop(drain=drain_on_exit)
        console.print("Gateway stopped.")


@app.command("worker", hidden=True)
def worker(
    ctx: typer.Context,
    index: Annotated[int, typer.Option("--index", help="Worker number: its client id.")],
    drain_on_exit: DrainOption = False,
) -> None:
    """One worker process (the supervisor starts these)."""
    log = configure("gateway")
    exit_when_a_thread_dies(log)
    settings = settings_from(ctx)
    stop, drain = threading.Event(), threading.Event()
    on_stop = drain if drain_on_exit else stop
    grace_s = settings.gateway.drain_timeout_s + settings.runtime.stop_grace_s
    deadline = StopDeadline(grace_s, log)

    def signalled(event: threading.Event) -> Callable[..., None]:
        def handler(*_: object) -> None:
            event.set()
            deadline.arm()

        return handler

    signal.signal(signal.SIGTERM, signalled(on_stop))
    signal.signal(signal.SIGINT, signalled(on_stop))
    signal.signal(signal.SIGUSR1, signalled(drain))
    stop_when_orphaned(on_stop, deadline)
    code = UplinkWorker(settings, index, log).run(stop, drain)
    time.sleep(0)  # let paho's thread finish its last write
    raise typer.Exit(code)
