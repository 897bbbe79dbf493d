"""``fleetlink tracker``: the command tracker process."""

from __future__ import annotations

import threading

import typer

from fleetlink.adapters.runtime.watchdog import (
    StopDeadline,
    exit_when_a_thread_dies,
    stop_on_signals,
)
from fleetlink.cli.common import settings_from
from fleetlink.commands.tracker import Tracker
from fleetlink.logs import configure


def tracker(ctx: typer.Context) -> None:
    """Follow every command through its lifecycle (fleet.command-status); Ctrl-C stops."""
    settings = settings_from(ctx)
    log = configure("tracker")
    stop = threading.Event()
    stop_on_signals(stop, StopDeadline(settings.runtime.stop_grace_s, log))
    exit_when_a_thread_dies(log)
    Tracker(settings, log).run(stop)
