"""The whole command path on the real stack: gateway, tracker and API processes, real vehicles."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from fleetlink.adapters.supervisor import Program, Supervisor, WorkerHandle
from fleetlink.contracts.models import CommandName, CommandState, Grant
from fleetlink.contracts.topics import Site
from fleetlink.security.signing import Signer
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings, dump_toml
from fleetlink.stack.ports import free_port_block
from fleetlink.vehicle.agent import VehicleAgent
from fleetlink.vehicle.ota import OtaConfig
from tests.support.gateway import (
    create_topics,
    gateway_config,
    keep_running,
    supervised_gateway,
)
from tests.support.polling import eventually
from tests.support.stack import new_agent, user_token

FINAL = {s.value for s in CommandState} - {"queued", "sent", "delivered"}


class Garage:
    """Vehicle agents on an asyncio loop of their own thread; each can come and go."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.trunk_relock_s = 30.0  # for agents created from now on
        self.ota: OtaConfig | None = None  # software updates, for agents created from now on
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.agents: dict[str, VehicleAgent] = {}
        self._running: dict[str, tuple[asyncio.Event, Future[None]]] = {}

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    def agent(self, vin: str) -> VehicleAgent:
        if vin not in self.agents:
            self.agents[vin] = new_agent(
                self._settings, vin, trunk_relock_s=self.trunk_relock_s, ota=self.ota
            )
        return self.agents[vin]

    def start(self, vin: str) -> VehicleAgent:
        agent = self.agent(vin)
        if vin in self._running:  # already on the road
            return agent

        async def begin() -> tuple[asyncio.Event, Future[None]]:
            stop = asyncio.Event()
            task = asyncio.ensure_future(agent.run(stop))
            return stop, task  # type: ignore[return-value]

        self._running[vin] = self._call(begin())
        eventually(lambda: agent.connected, 15, f"{vin} connected")
        return agent

    def drive(self, vin: str) -> None:
        """One telemetry sample of a car, on the agents' loop."""
        self._call(_sample(self.agents[vin]))

    def stop(self, vin: str) -> None:
        stop, task = self._running.pop(vin)

        async def end() -> None:
            stop.set()
            await task  # type: ignore[misc]

        self._call(end())

    def close(self) -> None:
        running = list(self._running.values())
        self._running.clear()

        async def end_all() -> None:  # together: each may wait a second for confirmations
            for stop, _task in running:
                stop.set()
            await asyncio.gather(*(task for _stop, task in running))  # type: ignore[misc]

        self._call(end_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


async def _sample(agent: VehicleAgent) -> None:
    agent.sample_telemetry()


@dataclass
class Platform:
    settings: Settings
    config: Path
    api_url: str
    supervisor: Supervisor  # the gateway workers
    services: Supervisor  # the tracker and the API, restarted like the workers when they exit
    garage: Garage
    admin: dict[str, str] = field(default_factory=dict)  # the Authorization header of an admin

    def client(self, auth: dict[str, str] | None = None, timeout: float = 15) -> httpx.Client:
        """An HTTP client of the API, as the test admin unless ``auth`` says otherwise."""
        headers = self.admin if auth is None else auth
        return httpx.Client(base_url=self.api_url, timeout=timeout, headers=headers)

    def service(self, name: str) -> WorkerHandle:
        return next(h for h in self.services.handles if h.program.name == name)

    def wait_api_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            try:
                with self.client() as client:
                    return client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        eventually(ready, timeout, "the API ready")

    def start_car(self, vin: str) -> VehicleAgent:
        """Connect a vehicle and wait until the API has seen it online."""
        car = self.garage.start(vin)
        self.wait_presence(vin, online=True)
        return car

    def stop_car(self, vin: str) -> None:
        """Disconnect a vehicle; return once the platform has known it offline for a moment
        (the API and the downlink follow fleet.presence each on their own)."""
        self.garage.stop(vin)
        self.wait_presence(vin, online=False)
        time.sleep(0.5)

    def wait_presence(self, vin: str, *, online: bool) -> None:
        def seen() -> bool:
            with self.client() as client:
                reply = client.get(f"/v1/vehicles/{vin}")
                return reply.status_code == 200 and reply.json()["online"] is online

        eventually(seen, 15, f"{vin} {'online' if online else 'offline'} in the API")

    def post(self, vin: str, auth: dict[str, str] | None = None, **body: Any) -> httpx.Response:
        with self.client(auth) as client:
            return client.post(f"/v1/vehicles/{vin}/commands", json=body)

    def command(self, command_id: str) -> dict[str, Any]:
        with self.client() as client:
            reply = client.get(f"/v1/commands/{command_id}")
            assert reply.status_code == 200, reply.text
            result: dict[str, Any] = reply.json()
            return result

    def wait_state(self, command_id: str, states: set[str], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            command = self.command(command_id)
            if command["state"] in states:
                return command
            assert time.monotonic() < deadline, f"{command_id} still {command['state']}"
            time.sleep(0.1)


@contextmanager
def command_platform(
    tmp_path: Path,
    stack: Settings,
    *,
    grace_s: float = 1.0,
    runtime: dict[str, Any] | None = None,
    sections: dict[str, Any] | None = None,
    beside_api: Sequence[tuple[str, list[str]]] = (),
) -> Iterator[Platform]:
    """Gateway (supervised), ``fleetlink tracker`` and ``fleetlink api`` processes on topics of
    their own, and ``beside_api`` (name, sub-command) where the API runs, with ``sections`` of
    settings over the defaults; every process is stopped by its pid on exit."""
    config, settings, _topics = gateway_config(tmp_path, stack)
    api_port = free_port_block(1)
    settings = settings.model_copy(
        update={
            "tracker": settings.tracker.model_copy(update={"response_grace_s": grace_s}),
            "api": settings.api.model_copy(update={"port": api_port, "kafka_timeout_s": 3}),
            "runtime": settings.runtime.model_copy(update=runtime or {}),
        }
    )
    settings = settings.model_copy(  # over the platform's own (the API's port stays)
        update={
            name: getattr(settings, name).model_validate(
                getattr(settings, name).model_dump() | values
            )
            for name, values in (sections or {}).items()
        }
    )
    config.write_text(dump_toml(settings))
    garage = Garage(stack)
    fleetlink = [sys.executable, "-m", "fleetlink", "--config", str(config)]
    programs = [Program("tracker", [*fleetlink, "tracker"])]  # the edge's, beside the downlink
    if settings.edge_cloud:  # the API and a replication monitor in the cloud
        cloud = settings.at_site(Site.CLOUD)
        create_topics(cloud)
        watch = {"check_s": 0.3, "lag_alert_s": 2.5, "metrics_port": 0}
        cloud = cloud.model_copy(update={"replication": cloud.replication.model_copy(update=watch)})
        cloud_config = config.with_name(f"cloud-{config.name}")
        cloud_config.write_text(dump_toml(cloud))
        in_cloud = [sys.executable, "-m", "fleetlink", "--config", str(cloud_config)]
        programs += [
            Program("api", [*in_cloud, "api"]),
            Program("monitor", [*in_cloud, "mirror", "monitor"]),
        ]
        programs += [Program(name, [*in_cloud, *command]) for name, command in beside_api]
    else:
        programs.append(Program("api", [*fleetlink, "api"]))
        programs += [Program(name, [*fleetlink, *command]) for name, command in beside_api]
    services = Supervisor(
        programs,
        backoff_s=settings.gateway.restart_backoff_s,
        stop_timeout_s=20,
        log=logging.getLogger("test.services"),
    )
    with supervised_gateway(config, workers=1) as supervisor:
        admin = user_token(settings, "test-admin", UserRole.FLEET_ADMIN)
        platform = Platform(
            settings,
            config,
            f"http://127.0.0.1:{api_port}",
            supervisor,
            services,
            garage,
            admin=admin,
        )
        try:
            with keep_running(services):
                platform.wait_api_ready()
                yield platform
        finally:
            garage.close()


def signed_grant(signer: Signer, vin: str, **changes: Any) -> tuple[Grant, str]:
    """A one-time digital key to open ``vin``'s trunk for two hours (``changes`` over it),
    and its token signed by ``signer``."""
    now = time.time_ns() // 1_000_000
    grant = Grant(
        grant_id="k-1",
        vin=vin,
        grantee="courier",
        commands=[CommandName.TRUNK_OPEN],
        not_before=now - 1000,
        not_after=now + 7_200_000,
        max_uses=1,
        issued_by="owner",
        issued_at=now,
    )
    grant = msgspec.structs.replace(grant, **changes)
    return grant, signer.sign_grant(grant)
