"""``fleetlink simulate``: a fleet of in-vehicle agents on the broker, with a live view."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.live import Live
from rich.progress import Progress
from rich.table import Table

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.runner import raise_open_file_limit
from fleetlink.adapters.runtime.watchdog import StopDeadline
from fleetlink.cli.common import console, settings_from
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.errors import FleetlinkError
from fleetlink.security.keys import identity_tls, ota_trust
from fleetlink.security.pki import DevPki, Role
from fleetlink.settings import Settings
from fleetlink.sim.curb import ParkingPlan
from fleetlink.sim.fleet import Faults, FleetSimulation, FleetSummary
from fleetlink.sim.flood import vins_for
from fleetlink.sim.truth import Gaps, Truth, compare, stamps_in
from fleetlink.vehicle.ota import OtaConfig
from fleetlink.vehicle.ota_rules import OtaFaults


def fleet_table(simulation: FleetSimulation, elapsed: float, rate: float) -> Table:
    stats = [agent.stats for agent in simulation.agents]
    table = Table(title=f"fleetlink simulate — {elapsed:,.0f} s", title_justify="left")
    for column in ("vehicles", "connected", "parked", "msgs/s", "published", "resent", "events"):
        table.add_column(column, justify="right")
    for column in ("unconfirmed", "commands", "reconnects", "errors"):
        table.add_column(column, justify="right")
    table.add_row(
        str(len(simulation.agents)),
        str(simulation.connected()),
        str(simulation.parked_now()),
        f"{rate:,.0f}",
        f"{sum(s.published for s in stats):,}",
        f"{sum(s.resent for s in stats):,}",
        f"{simulation.events:,}",
        f"{sum(agent.outbox.unconfirmed for agent in simulation.agents):,}",
        f"{sum(s.commands for s in stats):,}",
        f"{sum(max(0, s.connects - 1) for s in stats):,}",
        f"{sum(s.errors for s in stats):,}",
    )
    return table


def simulate(
    ctx: typer.Context,
    vehicles: Annotated[int, typer.Option("--vehicles", "-n", min=1, help="Fleet size.")] = 100,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between telemetry messages.")
    ] = 5.0,
    duration: Annotated[float, typer.Option("--duration", min=1, help="Seconds to run.")] = 60.0,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same fleet and routes.")] = 1,
    offline_share: Annotated[
        float, typer.Option("--offline-share", min=0, max=1, help="Share of cars losing the link.")
    ] = 0.0,
    offline_at: Annotated[float, typer.Option("--offline-at", help="When (s).")] = 10.0,
    offline_for: Annotated[float, typer.Option("--offline-for", help="For how long (s).")] = 30.0,
    storm_at: Annotated[
        float | None, typer.Option("--storm-at", help="All cars drop the link at once (s).")
    ] = None,
    clock_skew: Annotated[
        float, typer.Option("--clock-skew", min=0, help="Cars' clocks off by up to (s).")
    ] = 0.0,
    malformed: Annotated[
        float, typer.Option("--malformed", min=0, max=1, help="Share of broken telemetry.")
    ] = 0.0,
    summary: Annotated[
        Path | None, typer.Option("--summary", help="Also write the JSON summary here.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No live view, only the summary.")] = False,
    vin_prefix: Annotated[
        str, typer.Option("--vin-prefix", help="VIN start (no I, O, Q); one per process.")
    ] = "SMV",
    mode: Annotated[
        str,
        typer.Option(
            "--mode", help="sumo: SUMO traffic (realistic); kinematic: light, for large fleets."
        ),
    ] = "sumo",
    connect_rate: Annotated[
        float, typer.Option("--connect-rate", min=0, help="Connections per second (0: all).")
    ] = 0.0,
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm/--no-confirm",
            help="Cars keep each message until the platform confirms it is in Kafka.",
        ),
    ] = True,
    confirm_timeout: Annotated[
        float, typer.Option("--confirm-timeout", min=0.1, help="Resend unconfirmed after (s).")
    ] = 15.0,
    check: Annotated[
        bool,
        typer.Option("--check", help="Afterwards, look up every message the cars sent in Kafka."),
    ] = False,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Write what each car sent (VIN, boot, last seq).")
    ] = None,
    hazard_sites_every: Annotated[
        float,
        typer.Option(
            "--hazard-sites-every",
            min=0,
            help="Place an icy stretch or a broken-down car every this many s (SUMO; 0: none).",
        ),
    ] = 0.0,
    parking: Annotated[
        bool,
        typer.Option(
            "--parking/--no-parking",
            help="Cars park at the curb between trips and report the free gaps they pass "
            "(SUMO mode; the kinematic mode has no parking).",
        ),
    ] = True,
    stationary: Annotated[
        bool,
        typer.Option(
            "--stationary",
            help="Cars stand where they start, reporting (a fleet parked overnight: OTA's window).",
        ),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Every car is this model (else a mixed fleet)."),
    ] = None,
    ota_fail_group: Annotated[
        int | None,
        typer.Option(
            "--ota-fail-group",
            min=0,
            help="Software updates fail to boot only in this campaign group (default: any).",
        ),
    ] = None,
    ota_fail_rate: Annotated[
        float,
        typer.Option(
            "--ota-fail-rate",
            min=0,
            max=1,
            help="Share of cars whose new image fails to boot (they fall back to the old slot).",
        ),
    ] = 0.0,
    ota_install_s: Annotated[
        float,
        typer.Option("--ota-install-s", min=0, help="Seconds an install and reboot take."),
    ] = 5.0,
    ota_park_wait_s: Annotated[
        float,
        typer.Option(
            "--ota-park-wait-s", min=0, help="Seconds a car stands still before it installs."
        ),
    ] = 2.0,
    ota_flash_dir: Annotated[
        Path | None,
        typer.Option(
            "--ota-flash-dir",
            help="Keep each car's flash (boot slots, update job, partial download) in "
            "DIR/<VIN>, so a restarted simulator resumes (default: in memory).",
        ),
    ] = None,
) -> None:
    """Run simulated vehicles against the MQTT broker (SUMO traffic or kinematic movement)."""
    settings = settings_from(ctx)
    host, port = settings.mqtt_address()
    raise_open_file_limit()
    if mode not in ("sumo", "kinematic"):
        raise FleetlinkError(f"--mode must be sumo or kinematic, not {mode!r}")
    if not settings.uses_local_mqtt:
        raise FleetlinkError(
            "fleetlink simulate runs against the local stack: its cars need certificates of "
            "its development CA and its platform key"
        )
    # simulated cars register themselves with the development CA, like a factory would
    pki = DevPki(settings.stack.pki_dir)
    enrolled = pki.ensure(vins_for(vehicles, vin_prefix), Role.VEHICLE)
    if enrolled:
        console.print(f"registered {len(enrolled)} simulated vehicle(s) with the dev CA")
    simulation = FleetSimulation(
        host=host,
        port=port,
        vehicles=vehicles,
        interval_s=interval,
        seed=seed,
        vin_prefix=vin_prefix,
        connect_rate=connect_rate,
        mode="kinematic" if mode == "kinematic" else "sumo",
        tls_for=lambda vin: identity_tls(settings, vin),
        verifier=pki.vehicle_verifier(),
        faults=Faults(
            offline_share=offline_share,
            offline_at_s=offline_at,
            offline_s=offline_for,
            storm_at_s=storm_at,
            clock_skew_s=clock_skew,
            malformed_share=malformed,
        ),
        confirm=confirm,
        confirm_timeout_s=confirm_timeout,
        hazard_sites_every_s=hazard_sites_every,
        duration_s=duration,
        parking=ParkingPlan() if parking and mode == "sumo" and not stationary else None,
        stationary=stationary,
        model=model,
        ota=OtaConfig(
            trust=ota_trust(settings),  # the car's OTA keys, given at registration
            park_wait_s=ota_park_wait_s,
            install_s=ota_install_s,
            flash_dir=ota_flash_dir,
            faults=OtaFaults(fail_group=ota_fail_group, fail_rate=ota_fail_rate, seed=seed),
        ),
    )
    deadline = StopDeadline(settings.runtime.stop_grace_s, logging.getLogger("fleetlink.simulate"))
    result = asyncio.run(_run(simulation, duration, view=not quiet, deadline=deadline))
    text = json.dumps(msgspec.to_builtins(result), indent=2)
    console.print()
    console.print_json(text)
    if summary is not None:
        summary.write_text(text + "\n")
    if truth is not None:
        truth.write_text(json.dumps(simulation.truth(), indent=1) + "\n")
    if check:
        gaps = check_in_kafka(settings, simulation.truth())
        console.print_json(json.dumps(msgspec.structs.asdict(gaps)))
        if gaps.missing:
            raise typer.Exit(1)


def check_in_kafka(settings: Settings, truth: Truth) -> Gaps:
    """Every message of ``truth`` looked up in the gateway's topics and its dead-letter topic."""
    names = settings.topic_map()
    routed = {names.resolve(rule.kafka_topic) for rule in settings.gateway.mappings}
    topics = sorted(routed | {names[KafkaTopic.DLQ]})
    client = KafkaClients.of(settings)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("reading Kafka", total=len(topics))
        seen: list[tuple[str, str, int]] = []
        for topic in topics:
            seen.extend(stamps_in(read_topic(client, topic)))
            progress.advance(task)
    return compare(truth, seen)


async def _run(
    simulation: FleetSimulation, duration: float, *, view: bool, deadline: StopDeadline
) -> FleetSummary:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        stop.set()
        deadline.arm()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    if not view:
        return await simulation.run(duration, stop=stop)
    last = {"time": time.monotonic(), "published": 0, "rate": 0.0}
    with Live(fleet_table(simulation, 0, 0), console=console, refresh_per_second=2) as live:

        def on_tick(sim: FleetSimulation, elapsed: float) -> None:
            now = time.monotonic()
            published = sum(agent.stats.published for agent in sim.agents)
            if now - last["time"] >= 1:
                last["rate"] = (published - last["published"]) / (now - last["time"])
                last["time"], last["published"] = now, published
            live.update(fleet_table(sim, elapsed, last["rate"]))

        return await simulation.run(duration, on_tick=on_tick, stop=stop)


def street_map(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", help="Default: the API's api.street_map_file.")
    ] = None,
) -> None:
    """Write the simulated city's streets as GeoJSON, for the dashboard's map."""
    from fleetlink.sim.streets import write_street_map  # SUMO: only for this command

    settings = settings_from(ctx)
    path = out or settings.street_map_file()
    count = write_street_map(path)
    console.print(f"{count} streets written to {path}")
