"""``fleetlink stack``: the local Kafka + Mosquitto stack."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fleetlink.adapters.runner import tail
from fleetlink.cli.common import (
    BrokersOption,
    StateDirOption,
    TopologyOption,
    console,
    settings_from,
)
from fleetlink.errors import FleetlinkError
from fleetlink.settings import Settings
from fleetlink.stack import LocalStack, stack_status
from fleetlink.stack.kafka import ensure_kafka_jars
from fleetlink.stack.link import LinkMode

app = typer.Typer(help="The local Kafka + Mosquitto stack.", no_args_is_help=True)


def _shown_path(path: str) -> str:
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path


def status_view(stack: LocalStack, settings: Settings) -> Group:
    rows = stack_status(stack)
    if not rows:
        return Group(Text("The local stack is not running (fleetlink stack up).", style="yellow"))
    table = Table(title=f"fleetlink local stack ({stack.state_dir})", title_justify="left")
    mirrored = any(row.name.startswith("mirror-") for row in rows)
    for column in ("component", "pid", "address", "running", "answers"):
        table.add_column(column, no_wrap=True)  # what people copy: never cut
    if mirrored:
        table.add_column("lag", justify="right", no_wrap=True)
    table.add_column("log", overflow="fold")
    for row in rows:
        lag = [] if not mirrored else [_shown_lag(row.lag_s, row.name.startswith("mirror-"))]
        table.add_row(
            row.name,
            str(row.pid),
            row.address,
            "[green]yes[/]" if row.running else "[red]no[/]",
            "[green]yes[/]" if row.answers else "[red]no[/]",
            *lag,
            _shown_path(row.log),
        )
    host, port = settings.mqtt_address()
    kafka = [
        part
        for cluster in stack.clusters
        for part in (
            (f"Kafka {cluster.site.value} " if mirrored else "Kafka bootstrap ", "bold"),
            cluster.bootstrap_servers() + "   ",
        )
    ]
    endpoints = Text.assemble(
        *kafka,
        ("MQTT ", "bold"),
        f"mqtts://{host}:{port} (client certificates of {stack.pki.directory})",
    )
    return Group(table, endpoints)


def _shown_lag(lag_s: float | None, is_mirror: bool) -> str:
    if not is_mirror:
        return ""
    if lag_s is None:
        return "[red]no beat yet[/]"
    return f"{lag_s:.1f} s"


def start(stack: LocalStack) -> None:
    with console.status("Starting the local stack") as spinner:
        stack.up(on_progress=spinner.update)


def live_view(
    render: Callable[[], RenderableType],
    *,
    duration: float | None = None,
    tick: Callable[[], None] | None = None,
    stop: threading.Event | None = None,
    refresh_s: float = 2.0,
) -> None:
    """Redraw ``render()`` until Ctrl-C, ``stop`` or ``duration``; call ``tick`` twice a second."""
    deadline = None if duration is None else time.monotonic() + duration
    stop = stop or threading.Event()
    next_draw = time.monotonic() + refresh_s
    try:
        with Live(render(), console=console, refresh_per_second=1) as live:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                stop.wait(0.5)
                if tick is not None:
                    tick()
                if time.monotonic() >= next_draw:
                    live.update(render())
                    next_draw = time.monotonic() + refresh_s
    except KeyboardInterrupt:
        pass
    console.print()


@app.command("up")
def up(
    ctx: typer.Context,
    brokers: BrokersOption = None,
    state_dir: StateDirOption = None,
    topology: TopologyOption = None,
) -> None:
    """Start Kafka (KRaft) and Mosquitto on loopback and wait until both answer; with
    ``--topology edge-cloud`` a cloud Kafka too and MirrorMaker 2 both ways."""
    settings = settings_from(
        ctx, stack={"brokers": brokers, "state_dir": state_dir, "topology": topology}
    )
    stack = LocalStack(settings.stack, topics=settings.topic_map())
    start(stack)
    console.print(status_view(stack, settings))


@app.command("fetch")
def fetch(ctx: typer.Context) -> None:
    """Resolve the Kafka jars with Maven into the cache (up does this on first start)."""
    stack_settings = settings_from(ctx).stack
    with console.status("Resolving Kafka jars with Maven") as spinner:
        libs = ensure_kafka_jars(
            stack_settings.cache_dir.expanduser(), stack_settings.kafka_version, spinner.update
        )
    console.print(f"Kafka {stack_settings.kafka_version} jars ready in {libs}")


@app.command("down")
def down(
    ctx: typer.Context,
    state_dir: StateDirOption = None,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete Kafka and MQTT data.")
    ] = False,
) -> None:
    """Stop the processes `stack up` started, and only those."""
    stack = LocalStack(settings_from(ctx, stack={"state_dir": state_dir}).stack)
    stopped = stack.down(purge=purge)
    names = ", ".join(f"{r.name} (pid {r.pid})" for r in stopped) or "nothing was running"
    console.print(f"Stopped: {names}" + (" — data deleted" if purge else ""))


@app.command("status")
def status(
    ctx: typer.Context,
    state_dir: StateDirOption = None,
    live: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C.")] = False,
) -> None:
    """Show what runs where and whether it answers; exit 1 when something is down."""
    settings = settings_from(ctx, stack={"state_dir": state_dir})
    stack = LocalStack(settings.stack)
    if live:
        live_view(lambda: status_view(stack, settings))
        return
    console.print(status_view(stack, settings))
    rows = stack_status(stack)
    if not rows or not all(r.running and r.answers for r in rows):
        raise typer.Exit(1)


@app.command("logs")
def logs(
    ctx: typer.Context,
    component: Annotated[
        str | None, typer.Argument(help="kafka-1, kafka-2, ..., mosquitto (default: all).")
    ] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines per log.")] = 40,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    state_dir: StateDirOption = None,
) -> None:
    """Show each process's log."""
    stack = LocalStack(settings_from(ctx, stack={"state_dir": state_dir}).stack)
    files = stack.log_files()
    if component is not None:
        if component not in files:
            known = ", ".join(files) or "none"
            raise FleetlinkError(f"no log for {component!r}; known components: {known}")
        files = {component: files[component]}
    for name, path in files.items():
        console.rule(f"{name} — {path}")
        for line in tail(path, lines):
            console.print(line, markup=False, highlight=False)
    if follow:
        _follow(files)


def _follow(files: dict[str, Path]) -> None:
    offsets = {name: path.stat().st_size if path.exists() else 0 for name, path in files.items()}
    try:
        while True:
            for name, path in files.items():
                if not path.exists():
                    continue
                with path.open("rb") as handle:
                    handle.seek(offsets[name])
                    chunk = handle.read()
                    offsets[name] = handle.tell()
                for line in chunk.decode(errors="replace").splitlines():
                    console.print(f"[dim]{name}[/] {line}", markup=True, highlight=False)
            time.sleep(0.5)
    except KeyboardInterrupt:
        return


link_app = typer.Typer(help="The link between edge and cloud (--topology edge-cloud).")
app.add_typer(link_app, name="link")


@link_app.command("cut")
def cut_link(
    ctx: typer.Context,
    mode: Annotated[
        LinkMode,
        typer.Option("--mode", help="reset: connections refused and reset. blackhole: silence."),
    ] = LinkMode.RESET,
    state_dir: StateDirOption = None,
) -> None:
    """Cut the link between the edge and the cloud cluster; both keep running."""
    stack = LocalStack(settings_from(ctx, stack={"state_dir": state_dir}).stack)
    if mode is LinkMode.UP:
        raise FleetlinkError("--mode up is `fleetlink stack link heal`")
    stack.link.cut(mode)
    console.print(f"Link cut ({mode}): MirrorMaker 2 waits; `fleetlink stack link heal` ends it.")


@link_app.command("heal")
def heal_link(ctx: typer.Context, state_dir: StateDirOption = None) -> None:
    """Restore the link; MirrorMaker 2 catches up by itself."""
    stack = LocalStack(settings_from(ctx, stack={"state_dir": state_dir}).stack)
    stack.link.heal()
    console.print("Link up.")
