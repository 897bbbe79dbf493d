"""``fleetlink tracker``: the command tracker process."""

from __future__ import annotations

import signal
import threading

import typer

from fleetlink.adapters.runtime.watchdog import exit_when_a_thread_dies
from fleetlink.cli.common import settings_from
from fleetlink.commands.tracker import Tracker
from fleetlink.logs import configure


def tracker(ctx: typer.Context) -> None:
    """Follow every command through its lifecycle (fleet.command-status); Ctrl-C stops."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log = configure("tracker")
    exit_when_a_thread_dies(log)
    Tracker(settings_from(ctx), log).run(stop)
