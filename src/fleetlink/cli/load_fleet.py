"""``fleetlink load-fleet``: thousands of light cars per process, for benchmarks."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from fleetlink.adapters.runner import raise_open_file_limit
from fleetlink.cli.common import console, settings_from
from fleetlink.errors import FleetlinkError
from fleetlink.security.keys import identity_tls
from fleetlink.security.pki import DevPki, Role
from fleetlink.sim.flood import vins_for
from fleetlink.sim.load_fleet import LoadFleet, LoadSummary


def load_fleet(
    ctx: typer.Context,
    vehicles: Annotated[int, typer.Option("--vehicles", "-n", min=1, help="Fleet size.")] = 1000,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between telemetry messages.")
    ] = 30.0,
    duration: Annotated[float, typer.Option("--duration", min=1, help="Seconds to run.")] = 60.0,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same fleet.")] = 1,
    vin_prefix: Annotated[
        str, typer.Option("--vin-prefix", help="VIN start (no I, O, Q); one per process.")
    ] = "LDV",
    connect_rate: Annotated[
        float, typer.Option("--connect-rate", min=0, help="Connections per second (0: all).")
    ] = 500.0,
    summary: Annotated[
        Path | None, typer.Option("--summary", help="Also write the JSON summary here.")
    ] = None,
) -> None:
    """Run a load fleet: standing cars on one event loop that report and answer commands."""
    settings = settings_from(ctx)
    if not settings.uses_local_mqtt:
        raise FleetlinkError(
            "fleetlink load-fleet runs against the local stack: its cars need certificates of "
            "its development CA and its platform key"
        )
    raise_open_file_limit()
    pki = DevPki(settings.stack.pki_dir)
    vins = vins_for(vehicles, vin_prefix)
    enrolled = pki.ensure(vins, Role.VEHICLE)
    if enrolled:
        console.print(f"registered {len(enrolled)} simulated vehicle(s) with the dev CA")
    host, port = settings.mqtt_address()
    fleet = LoadFleet(
        host=host,
        port=port,
        vins=vins,
        tls_for=lambda vin: identity_tls(settings, vin),
        verifier=pki.vehicle_verifier(),
        interval_s=interval,
        seed=seed,
        connect_rate=connect_rate,
    )
    result = asyncio.run(_run(fleet, duration))
    text = json.dumps(msgspec.to_builtins(result), indent=2)
    console.print_json(text)
    if summary is not None:
        summary.write_text(text + "\n")


async def _run(fleet: LoadFleet, duration: float) -> LoadSummary:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return await fleet.run(stop, duration)
