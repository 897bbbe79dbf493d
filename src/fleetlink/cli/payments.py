"""``fleetlink payments``: the payment provider (its local simulator)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetlink.cli.common import settings_from
from fleetlink.logs import configure
from fleetlink.payments.secrets import webhook_secrets
from fleetlink.sim.payments import serve_simulator

app = typer.Typer(help="The payment provider.", no_args_is_help=True)


@app.command("simulate")
def simulate(
    ctx: typer.Context,
    port: Annotated[
        int | None, typer.Option("--port", help="Listen port (payments.simulator.port).")
    ] = None,
) -> None:
    """Run a local payment provider that behaves like Stripe: payments, refunds, signed
    webhooks to the API (at least once, chaos from payments.simulator); Ctrl-C stops."""
    overrides: dict[str, Any] = {}
    if port is not None:  # nested: only given flags may reach the settings
        overrides["payments"] = {"simulator": {"port": port}}
    settings = settings_from(ctx, **overrides)
    configure("payments-simulator")
    api = settings.api
    webhook_url = (
        settings.payments.webhook_url or f"http://{api.host}:{api.port}/v1/payments/webhook"
    )
    serve_simulator(settings, secrets=webhook_secrets(settings), webhook_url=webhook_url)
