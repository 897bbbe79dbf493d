"""The ``fleetlink`` command: each sub-command delegates to its package."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fleetlink import __version__
from fleetlink.config import Settings, load_settings
from fleetlink.contracts.schema import write_json_schemas
from fleetlink.errors import FleetlinkError
from fleetlink.stack import LocalStack
from fleetlink.stack.kafka import ensure_kafka_jars
from fleetlink.stack.process import tail

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="fleetlink",
    help="Connect vehicle fleets to Apache Kafka over MQTT.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(help="The local Kafka + Mosquitto stack.", no_args_is_help=True)
contracts_app = typer.Typer(help="The MQTT and Kafka contracts.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(contracts_app, name="contracts")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML settings file (default: $FLEETLINK_CONFIG, else ./fleetlink.toml if present).",
        dir_okay=False,
    ),
]
BrokersOption = Annotated[
    int | None,
    typer.Option("--brokers", help="Kafka nodes of the local stack: 1, or 3 for replication."),
]
StateDirOption = Annotated[
    Path | None, typer.Option("--state-dir", help="Where the local stack keeps all its state.")
]


def _settings(ctx: typer.Context, **stack: Any) -> Settings:
    config_file: Path | None = ctx.obj
    return load_settings(config_file, stack=stack)


@app.callback()
def _root(
    ctx: typer.Context,
    config: ConfigOption = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        console.print(f"fleetlink {__version__}")
        raise typer.Exit
    ctx.obj = config


# stack ------------------------------------------------------------------------------------------


def _status_view(stack: LocalStack, settings: Settings) -> Group:
    table = Table(title=f"fleetlink local stack ({stack.state_dir})", title_justify="left")
    for column in ("component", "pid", "address", "running", "answers"):
        table.add_column(column)
    table.add_column("log", overflow="fold")
    rows = stack.status()
    for row in rows:
        table.add_row(
            row.name,
            str(row.pid),
            row.address,
            "[green]yes[/]" if row.running else "[red]no[/]",
            "[green]yes[/]" if row.answers else "[red]no[/]",
            row.log,
        )
    if not rows:
        return Group(Text("The local stack is not running (fleetlink stack up).", style="yellow"))
    host, port = settings.mqtt_address()
    endpoints = Text.assemble(
        ("Kafka bootstrap ", "bold"),
        stack.bootstrap_servers(),
        ("   MQTT ", "bold"),
        f"mqtt://{host}:{port}",
    )
    return Group(table, endpoints)


def _start(stack: LocalStack) -> None:
    with console.status("Starting the local stack") as spinner:
        stack.up(on_progress=spinner.update)


@stack_app.command("up")
def stack_up(
    ctx: typer.Context, brokers: BrokersOption = None, state_dir: StateDirOption = None
) -> None:
    """Start Kafka (KRaft) and Mosquitto on loopback and wait until both answer."""
    settings = _settings(ctx, brokers=brokers, state_dir=state_dir)
    stack = LocalStack(settings.stack)
    _start(stack)
    console.print(_status_view(stack, settings))


@stack_app.command("fetch")
def stack_fetch(ctx: typer.Context) -> None:
    """Resolve the Kafka jars with Maven into the cache (up does this on first start)."""
    settings = _settings(ctx)
    with console.status("Resolving Kafka jars with Maven") as spinner:
        libs = ensure_kafka_jars(
            settings.stack.cache_dir.expanduser(), settings.stack.kafka_version, spinner.update
        )
    console.print(f"Kafka {settings.stack.kafka_version} jars ready in {libs}")


@stack_app.command("down")
def stack_down(
    ctx: typer.Context,
    state_dir: StateDirOption = None,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete Kafka and MQTT data.")
    ] = False,
) -> None:
    """Stop the processes `stack up` started, and only those."""
    stack = LocalStack(_settings(ctx, state_dir=state_dir).stack)
    stopped = stack.down(purge=purge)
    names = ", ".join(f"{r.name} (pid {r.pid})" for r in stopped) or "nothing was running"
    console.print(f"Stopped: {names}" + (" — data deleted" if purge else ""))


@stack_app.command("status")
def stack_status(
    ctx: typer.Context,
    state_dir: StateDirOption = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C.")] = False,
) -> None:
    """Show what runs where and whether it answers; exit 1 when something is down."""
    settings = _settings(ctx, state_dir=state_dir)
    stack = LocalStack(settings.stack)
    if watch:
        _watch(stack, settings, duration=None)
        return
    console.print(_status_view(stack, settings))
    rows = stack.status()
    if not rows or not all(r.running and r.answers for r in rows):
        raise typer.Exit(1)


@stack_app.command("logs")
def stack_logs(
    ctx: typer.Context,
    component: Annotated[
        str | None, typer.Argument(help="kafka-1, kafka-2, ..., mosquitto (default: all).")
    ] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines per log.")] = 40,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    state_dir: StateDirOption = None,
) -> None:
    """Show each process's log."""
    stack = LocalStack(_settings(ctx, state_dir=state_dir).stack)
    logs = stack.log_files()
    if component is not None:
        if component not in logs:
            known = ", ".join(logs) or "none"
            raise FleetlinkError(f"no log for {component!r}; known components: {known}")
        logs = {component: logs[component]}
    for name, path in logs.items():
        console.rule(f"{name} — {path}")
        for line in tail(path, lines):
            console.print(line, markup=False, highlight=False)
    if follow:
        _follow(logs)


def _follow(logs: dict[str, Path]) -> None:
    offsets = {name: path.stat().st_size if path.exists() else 0 for name, path in logs.items()}
    try:
        while True:
            for name, path in logs.items():
                if not path.exists():
                    continue
                with path.open("rb") as handle:
                    handle.seek(offsets[name])
                    chunk = handle.read()
                    offsets[name] = handle.tell()
                for line in chunk.decode(errors="replace").splitlines():
                    console.print(f"[dim]{name}[/] {line}", highlight=False)
            time.sleep(0.5)
    except KeyboardInterrupt:
        return


def _watch(stack: LocalStack, settings: Settings, duration: float | None) -> None:
    deadline = None if duration is None else time.monotonic() + duration
    try:
        with Live(_status_view(stack, settings), console=console, refresh_per_second=1) as live:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(2)
                live.update(_status_view(stack, settings))
    except KeyboardInterrupt:
        return


# demo -------------------------------------------------------------------------------------------


@app.command("demo")
def demo(
    ctx: typer.Context,
    brokers: BrokersOption = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the stack running when the demo ends.")
    ] = False,
) -> None:
    """Run the whole platform on the local stack with a live status view (Ctrl-C stops)."""
    settings = _settings(ctx, brokers=brokers)
    stack = LocalStack(settings.stack)
    started_here = not stack.is_up()
    _start(stack)
    console.print("[bold]fleetlink demo[/] — the local stack is up. Ctrl-C stops the demo.")
    try:
        _watch(stack, settings, duration)
    finally:
        if started_here and not keep:
            stopped = stack.down()
            console.print(f"Demo ended; stopped {len(stopped)} process(es).")


# contracts --------------------------------------------------------------------------------------


@contracts_app.command("schema")
def contracts_schema(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the .schema.json files.")
    ] = Path("schemas"),
) -> None:
    """Write a JSON Schema for every contract model."""
    for path in write_json_schemas(out):
        console.print(f"wrote {path}")


def main() -> None:
    """Console entry point: user-facing errors become one red line, never a traceback."""
    try:
        app()
    except FleetlinkError as error:
        for line in str(error).splitlines():
            err_console.print(
                Text.assemble(("error: ", "bold red"), line), highlight=False, soft_wrap=True
            )
        raise SystemExit(1) from None
