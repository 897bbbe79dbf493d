"""``fleetlink demo``: the whole platform on the local stack, with a live status view."""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Group
from rich.table import Table

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.follow import TopicFollower
from fleetlink.adapters.kafka.headers import header_value
from fleetlink.adapters.kafka.seams import KafkaSource, SourceRecord
from fleetlink.adapters.supervisor import Program, Supervisor
from fleetlink.cli.common import BrokersOption, TopologyOption, console, settings_from
from fleetlink.cli.demo_fleet import DemoFleet
from fleetlink.cli.demo_ota import DemoRollout
from fleetlink.cli.demo_shop import DemoShop
from fleetlink.cli.gateway import gateway_table, new_supervisor
from fleetlink.cli.stack import live_view, start, status_view
from fleetlink.cli.topics import ensure_platform_topics, topics_table
from fleetlink.contracts import headers as h
from fleetlink.contracts.models import EventKind
from fleetlink.contracts.topics import KafkaTopic, MqttTopic, Site, VehicleChannel
from fleetlink.logs import configure
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.sessions import dashboard_link, issue_login_code
from fleetlink.security.tokens import issue_token
from fleetlink.security.users import User, UserRegistry, UserRole
from fleetlink.settings import Settings
from fleetlink.settings.stack import Topology
from fleetlink.sim.streets import write_street_map
from fleetlink.stack import LocalStack

DEMO_USER = "demo-admin"


def demo(
    ctx: typer.Context,
    brokers: BrokersOption = None,
    topology: TopologyOption = None,
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
    """Run the whole platform on the local stack with a live status view (Ctrl-C stops); with
    ``--topology edge-cloud`` split between an edge and a cloud cluster."""
    settings = settings_from(ctx, stack={"brokers": brokers, "topology": topology})
    stack = LocalStack(settings.stack, topics=settings.topic_map())
    started_here = not stack.is_up()
    # the demo's own stack goes with it, even after kill -9, unless it is to be kept
    stack.die_with_caller = started_here and not keep
    supervisor = new_supervisor(ctx, settings)
    # restarted like the gateway workers when they exit (a process whose thread died exits)
    programs = [
        _program(ctx, stack, "tracker", ["tracker"]),  # beside the downlink: at the edge
        _program(ctx, stack, "api", ["api"], Site.CLOUD),
        # purchases run in the cloud, beside the payment provider (here: its simulator)
        _program(ctx, stack, "payments", ["payments", "simulate"], Site.CLOUD),
        _program(ctx, stack, "purchases", ["purchases", "run"], Site.CLOUD),
        # the director, next to the commands it sends and the API its users ask
        _program(ctx, stack, "campaigns", ["campaigns", "run"], Site.CLOUD),
    ]
    from fleetlink.apps.registry import APPS  # Quix Streams: imported by the commands using it

    programs += [
        _program(ctx, stack, f"app-{name}", ["app", "run", name], spec.site)
        for name, spec in APPS.items()
    ]
    if settings.edge_cloud:  # each side watches the flow into it
        port = settings.replication.metrics_port
        for offset, site in enumerate(Site):
            watch = ["mirror", "monitor", "--site", site.value]
            env = {"FLEETLINK_REPLICATION__METRICS_PORT": str(port + offset) if port else "0"}
            programs.append(_program(ctx, stack, f"monitor-{site}", watch, site, env))
    if vehicles:
        programs.append(_program(ctx, stack, "simulate", _fleet_args(vehicles)))
    log = configure("demo")
    services = Supervisor(
        programs, backoff_s=settings.gateway.restart_backoff_s, stop_timeout_s=30, log=log
    )
    api_url = f"http://{settings.api.host}:{settings.api.port}"
    # the demo's own API user: an admin, as a fleet operator's backend would be
    UserRegistry(settings.users_file()).put(User(DEMO_USER, UserRole.FLEET_ADMIN))
    token = issue_token(
        signing_key(settings, SigningPurpose.API_TOKENS), DEMO_USER, "fleet-admin", 86_400
    )
    parked = ParkedCars(settings, log)
    courier = DemoCourier(api_url, {"Authorization": f"Bearer {token}"}, parked)
    fleet = DemoFleet(courier.client)
    shop = DemoShop(settings, courier.client)
    rollout = DemoRollout(settings, courier.client)
    try:
        start(stack)
        ensure_platform_topics(settings)
        console.print(topics_table(settings))
        supervisor.start()
        services.start()
        parked.start()
        write_street_map(settings.street_map_file())
        code = issue_login_code(
            signing_key(settings, SigningPurpose.API_TOKENS),
            DEMO_USER,
            settings.security.login_code_ttl_s,
        )
        console.print(
            f"[bold]fleetlink demo[/] is running. API: {api_url}/docs  "
            f'(try: curl -H "Authorization: Bearer $(fleetlink token {DEMO_USER})" '
            f"{api_url}/v1/vehicles?online=true). Ctrl-C stops it.\n"
            f"Dashboard (the link logs in once, within "
            f"{settings.security.login_code_ttl_s // 60} min; later: fleetlink login "
            f"{DEMO_USER}): {dashboard_link(api_url, code)}"
        )

        def tick() -> None:
            supervisor.check()
            services.check()
            courier.tick()
            fleet.tick()
            shop.tick()
            rollout.tick()

        live_view(
            lambda: Group(
                status_view(stack, settings),
                gateway_table(supervisor, settings),
                courier.table(),
                fleet.table(),
                shop.table(),
                rollout.table(),
            ),
            duration=duration,
            tick=tick,
        )
    finally:
        parked.stop()
        services.stop()
        supervisor.stop()
        if started_here and not keep:
            stopped = stack.down()
            console.print(f"Demo ended; stopped {len(stopped)} process(es).")


def _fleet_args(vehicles: int) -> list[str]:
    return [
        "simulate",
        *("--vehicles", str(vehicles), "--interval", "2", "--duration", "864000"),
        *("--hazard-sites-every", "90"),  # icy stretches and broken-down cars to warn of
    ]


def _program(
    ctx: typer.Context,
    stack: LocalStack,
    name: str,
    args: list[str],
    site: Site = Site.EDGE,
    env: dict[str, str] | None = None,
) -> Program:
    """A fleetlink process of its own; its log goes beside the stack's logs. On the
    edge-cloud stack it runs at ``site``: its settings say so."""
    config_file: Path | None = ctx.find_root().obj
    argv = [sys.executable, "-m", "fleetlink"]
    if config_file is not None:
        argv += ["--config", str(config_file)]
    argv += args
    if name == "simulate":
        argv.append("--quiet")
    environment = dict(env or {})
    if stack.settings.topology is Topology.EDGE_CLOUD:
        environment |= {
            "FLEETLINK_STACK__TOPOLOGY": stack.settings.topology.value,
            "FLEETLINK_SITE": site.value,
        }
    full = {**os.environ, **environment} if environment else None
    return Program(name, argv, log=stack.logs_dir / f"{name}.log", env=full)


class ParkedCars:
    """The cars standing at the curb, from their ``parked``/``unparked`` events on
    ``fleet.events``; only those of this demo's run (an earlier one's cars drive again)."""

    def __init__(self, settings: Settings, log: logging.Logger) -> None:
        self._since_ms = time.time_ns() // 1_000_000
        self._lock = threading.Lock()
        self._vins: set[str] = set()
        topic = settings.routed_topic(KafkaTopic.EVENTS)
        self._follower = None
        if topic is not None:
            source = KafkaSource(KafkaClients.of(settings).reader("demo-parked", log=log))
            self._follower = TopicFollower(source, [topic], self._take, log, name="demo-parked")

    def start(self) -> None:
        if self._follower is not None:
            self._follower.start()

    def stop(self) -> None:
        if self._follower is not None:
            self._follower.stop()

    def vins(self) -> set[str]:
        with self._lock:
            return set(self._vins)

    def _take(self, records: list[SourceRecord]) -> None:
        for record in records:
            headers = record.headers()
            origin = (header_value(headers, h.MQTT_TOPIC) or b"").decode(errors="replace")
            topic = MqttTopic.parse_vehicle_topic(origin)
            if topic is None or topic.channel is not VehicleChannel.EVENTS:
                continue
            event_time = (header_value(headers, h.EVENT_TIME) or b"0").decode(errors="replace")
            if not event_time.isdigit() or int(event_time) < self._since_ms:
                continue
            with self._lock:  # a VIN's events are in order: its key picks one partition
                if topic.detail == EventKind.PARKED:
                    self._vins.add(topic.vin)
                elif topic.detail == EventKind.UNPARKED:
                    self._vins.discard(topic.vin)


class DemoCourier:
    """Sends a command to a random online car every few seconds through the REST API, the way
    a delivery service would, and shows how the platform's commands fare. A trunk is opened
    only at a parked car (a moving one refuses)."""

    _COMMANDS = (
        {"name": "trunk.open"},
        {"name": "trunk.close"},
        {"name": "flash"},
        {"name": "climate", "params": {"target_c": 21.5}},
        {"name": "honk"},
    )

    def __init__(
        self, api_url: str, auth: dict[str, str], parked: ParkedCars, every_s: float = 3.0
    ) -> None:
        self.client = httpx.Client(base_url=api_url, timeout=2, headers=auth)
        self._parked = parked
        self.parked_online = 0
        self._every_s = every_s
        self._next = time.monotonic() + every_s
        self._rng = random.Random()
        self.last: str = "waiting for the API"
        self.last_status: str = ""
        self.states: dict[str, int] = {}

    def tick(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self._every_s
        try:
            online = self.client.get("/v1/vehicles", params={"online": True, "limit": 500})
            cars = [row["vin"] for row in online.json().get("vehicles", [])]
            parked = sorted(self._parked.vins().intersection(cars))
            self.parked_online = len(parked)
            choices = [c for c in self._COMMANDS if parked or c["name"] != "trunk.open"]
            body = self._rng.choice(choices)
            if cars:
                vin = self._rng.choice(parked if body["name"] == "trunk.open" else cars)
                reply = self.client.post(f"/v1/vehicles/{vin}/commands", json=body)
                self.last = f"{body['name']} -> {vin}"
                self.last_status = f"HTTP {reply.status_code}"
            self.states = self.client.get("/v1/commands/summary").json().get("states", {})
        except (httpx.HTTPError, ValueError) as error:
            self.last = "API not answering yet"
            self.last_status = type(error).__name__

    def table(self) -> Table:
        table = Table(title="remote commands (REST -> Kafka -> car -> back)", title_justify="left")
        table.add_column("parked cars", justify="right")
        table.add_column("last sent", overflow="fold")
        table.add_column("reply", no_wrap=True)
        for state in self.states:
            table.add_column(state, justify="right")
        counts = (f"{n:,}" for n in self.states.values())
        table.add_row(f"{self.parked_online:,}", self.last, self.last_status, *counts)
        return table
