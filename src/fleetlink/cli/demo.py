"""``fleetlink demo``: the whole platform on the local stack, with a live status view."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Group
from rich.table import Table

from fleetlink.adapters.supervisor import Program, Supervisor
from fleetlink.cli.common import BrokersOption, console, settings_from
from fleetlink.cli.gateway import gateway_table, new_supervisor
from fleetlink.cli.stack import live_view, start, status_view
from fleetlink.cli.topics import ensure_platform_topics, topics_table
from fleetlink.logs import configure
from fleetlink.security.keys import signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.tokens import issue_token
from fleetlink.security.users import User, UserRegistry, UserRole
from fleetlink.stack import LocalStack

DEMO_USER = "demo-admin"


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
    # the demo's own stack goes with it, even after kill -9, unless it is to be kept
    stack.die_with_caller = started_here and not keep
    supervisor = new_supervisor(ctx, settings)
    # restarted like the gateway workers when they exit (a process whose thread died exits)
    programs = [_program(ctx, stack, "tracker", ["tracker"]), _program(ctx, stack, "api", ["api"])]
    from fleetlink.apps.registry import APPS  # Quix Streams: imported by the commands using it

    programs += [_program(ctx, stack, f"app-{name}", ["app", "run", name]) for name in APPS]
    if vehicles:
        programs.append(_program(ctx, stack, "simulate", _fleet_args(vehicles)))
    services = Supervisor(
        programs,
        backoff_s=settings.gateway.restart_backoff_s,
        stop_timeout_s=30,
        log=configure("demo"),
    )
    api_url = f"http://{settings.api.host}:{settings.api.port}"
    # the demo's own API user: an admin, as a fleet operator's backend would be
    UserRegistry(settings.users_file()).put(User(DEMO_USER, UserRole.FLEET_ADMIN))
    token = issue_token(
        signing_key(settings, SigningPurpose.API_TOKENS), DEMO_USER, "fleet-admin", 86_400
    )
    courier = DemoCourier(api_url, {"Authorization": f"Bearer {token}"})
    try:
        start(stack)
        ensure_platform_topics(settings)
        console.print(topics_table(settings))
        supervisor.start()
        services.start()
        console.print(
            f"[bold]fleetlink demo[/] is running. API: {api_url}/docs  "
            f'(try: curl -H "Authorization: Bearer $(fleetlink token {DEMO_USER})" '
            f"{api_url}/v1/vehicles?online=true). Ctrl-C stops it."
        )

        def tick() -> None:
            supervisor.check()
            services.check()
            courier.tick()

        live_view(
            lambda: Group(
                status_view(stack, settings),
                gateway_table(supervisor, settings),
                courier.table(),
            ),
            duration=duration,
            tick=tick,
        )
    finally:
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


def _program(ctx: typer.Context, stack: LocalStack, name: str, args: list[str]) -> Program:
    """A fleetlink process of its own; its log goes beside the stack's logs."""
    config_file: Path | None = ctx.find_root().obj
    argv = [sys.executable, "-m", "fleetlink"]
    if config_file is not None:
        argv += ["--config", str(config_file)]
    argv += args
    if name == "simulate":
        argv.append("--quiet")
    return Program(name, argv, log=stack.logs_dir / f"{name}.log")


class DemoCourier:
    """Sends a command to a random online car every few seconds through the REST API, the way
    a delivery service would, and shows how the platform's commands fare."""

    _COMMANDS = (
        {"name": "trunk.open"},
        {"name": "trunk.close"},
        {"name": "flash"},
        {"name": "climate", "params": {"target_c": 21.5}},
        {"name": "feature.activate", "params": {"feature": "heated-seats"}},
    )

    def __init__(self, api_url: str, auth: dict[str, str], every_s: float = 3.0) -> None:
        self._client = httpx.Client(base_url=api_url, timeout=2, headers=auth)
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
            online = self._client.get("/v1/vehicles", params={"online": True, "limit": 500})
            cars = [row["vin"] for row in online.json().get("vehicles", [])]
            if cars:
                vin = self._rng.choice(cars)
                body = self._rng.choice(self._COMMANDS)
                reply = self._client.post(f"/v1/vehicles/{vin}/commands", json=body)
                self.last = f"{body['name']} -> {vin}"
                self.last_status = f"HTTP {reply.status_code}"
            self.states = self._client.get("/v1/commands/summary").json().get("states", {})
        except (httpx.HTTPError, ValueError) as error:
            self.last = "API not answering yet"
            self.last_status = type(error).__name__

    def table(self) -> Table:
        table = Table(title="remote commands (REST -> Kafka -> car -> back)", title_justify="left")
        table.add_column("last sent", overflow="fold")
        table.add_column("reply", no_wrap=True)
        for state in self.states:
            table.add_column(state, justify="right")
        table.add_row(self.last, self.last_status, *(f"{n:,}" for n in self.states.values()))
        return table
