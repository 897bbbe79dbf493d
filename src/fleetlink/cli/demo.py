"""``fleetlink demo``: the whole platform on the local stack, with a live status view."""

from __future__ import annotations

from typing import Annotated

import typer

from fleetlink.cli.common import BrokersOption, console, settings_from
from fleetlink.cli.stack import start, watch
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
    settings = settings_from(ctx, brokers=brokers)
    stack = LocalStack(settings.stack)
    started_here = not stack.is_up()
    try:
        start(stack)
        ensure_platform_topics(settings)
        console.print(topics_table(settings))
        console.print("[bold]fleetlink demo[/] is running. Ctrl-C stops it.")
        watch(stack, settings, duration)
    finally:
        if started_here and not keep:
            stopped = stack.down()
            console.print(f"Demo ended; stopped {len(stopped)} process(es).")
