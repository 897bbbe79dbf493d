"""``fleetlink demo``: the whole platform on the local stack, with a live status view."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group

from fleetlink.cli.common import BrokersOption, console, settings_from
from fleetlink.cli.gateway import gateway_table, new_supervisor
from fleetlink.cli.stack import live_view, start, status_view
from fleetlink.cli.topics import ensure_platform_topics, topics_table
from fleetlink.stack import LocalStack


def demo(
    ctx: typer.Context,
    brokers: BrokersOption = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the stack running when the demo ends.")
    ] = False,
    vehicles: Annotated[
        int, typer.Option("--vehicles", min=0, help="Simulated vehicles (0: none).")
    ] = 200,
) -> None:
    """Run the whole platform on the local stack with a live status view (Ctrl-C stops)."""
    settings = settings_from(ctx, stack={"brokers": brokers})
    stack = LocalStack(settings.stack)
    started_here = not stack.is_up()
    supervisor = new_supervisor(ctx, settings)
    fleet: subprocess.Popen[bytes] | None = None
    try:
        start(stack)
        ensure_platform_topics(settings)
        console.print(topics_table(settings))
        supervisor.start()
        if vehicles:
            fleet = _start_fleet(ctx, stack, vehicles)
        console.print("[bold]fleetlink demo[/] is running. Ctrl-C stops it.")
        live_view(
            lambda: Group(status_view(stack, settings), gateway_table(supervisor, settings)),
            duration=duration,
            tick=supervisor.check,
        )
    finally:
        if fleet is not None:
            fleet.terminate()
            fleet.wait(30)
        supervisor.stop()
        if started_here and not keep:
            stopped = stack.down()
            console.print(f"Demo ended; stopped {len(stopped)} process(es).")


def _start_fleet(ctx: typer.Context, stack: LocalStack, vehicles: int) -> subprocess.Popen[bytes]:
    """The simulated fleet as a process of its own; its log goes beside the stack's logs."""
    config_file: Path | None = ctx.find_root().obj
    argv = [sys.executable, "-m", "fleetlink"]
    if config_file is not None:
        argv += ["--config", str(config_file)]
    argv += ["simulate", "--vehicles", str(vehicles), "--interval", "2", "--duration", "864000"]
    stack.logs_dir.mkdir(parents=True, exist_ok=True)
    with (stack.logs_dir / "simulate.log").open("ab") as log:
        return subprocess.Popen(
            [*argv, "--quiet"], stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
