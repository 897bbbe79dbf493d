"""``fleetlink purchases run``: the purchase processor and its effects, in the cloud."""

from __future__ import annotations

import threading

import typer

from fleetlink.adapters.runtime.watchdog import (
    StopDeadline,
    exit_when_a_thread_dies,
    stop_on_signals,
    stop_when_orphaned,
)
from fleetlink.cli.common import settings_from
from fleetlink.logs import configure
from fleetlink.purchases.effects import PurchaseEffects
from fleetlink.purchases.processor import PurchaseProcessor

app = typer.Typer(help="Features on demand: purchases, entitlements, activations, refunds.")


@app.command("run")
def run(ctx: typer.Context) -> None:
    """Turn payments into entitlements (Kafka transactions), entitlements into feature
    commands, failed activations into refunds; Ctrl-C stops."""
    settings = settings_from(ctx)
    log = configure("purchases")
    stop = threading.Event()
    deadline = StopDeadline(settings.runtime.stop_grace_s, log)
    stop_on_signals(stop, deadline)
    # a signal handler waits for the main thread, which may sit in init_transactions
    stop_when_orphaned(stop, deadline)
    exit_when_a_thread_dies(log)
    effects = PurchaseEffects(settings, log)
    worker = threading.Thread(target=effects.run, args=(stop,), name="purchase-effects")
    worker.start()
    try:
        PurchaseProcessor(settings, log).run(stop)
    finally:
        stop.set()
        worker.join()
