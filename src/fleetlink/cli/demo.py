"""``fleetlink demo``: the whole platform on the local stack, with a live status view."""

from __future__ import annotations

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
) -> None:
    """Run the whole platform on the local stack with a live status view (Ctrl-C stops)."""
    settings = settings_from(ctx, stack={"brokers": brokers})
    stack = LocalStack(settings.stack)
    started_here = not stack.is_up()
    supervisor = new_supervisor(ctx, settings)
    try:
        start(stack)
        ensure_platform_topics(settings)
        console.print(topics_table(settings))
        supervisor.start()
        console.print("[bold]fleetlink demo[/] is running. Ctrl-C stops it.")
        live_view(
            lambda: Group(status_view(stack, settings), gateway_table(supervisor, settings)),
            duration=duration,
            tick=supervisor.check,
        )
    finally:
        supervisor.stop()
        if started_here and not keep:
            stopped = stack.down()
            console.print(f"Demo ended; stopped {len(stopped)} process(es).")
