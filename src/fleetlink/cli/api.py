"""``fleetlink api``: the HTTP API (FastAPI on uvicorn), in one process or several on one port."""

from __future__ import annotations

import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from fleetlink.adapters.runtime.watchdog import exit_when_a_thread_dies
from fleetlink.adapters.supervisor import Supervisor
from fleetlink.api.app import create_app
from fleetlink.cli.common import console, settings_from
from fleetlink.logs import configure
from fleetlink.settings import Settings


def api(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Listen address (api.host).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Listen port (api.port).")] = None,
    processes: Annotated[
        int | None,
        typer.Option("--processes", min=1, help="Processes sharing the port (api.processes)."),
    ] = None,
    shared_port: Annotated[bool, typer.Option("--shared-port", hidden=True)] = False,
) -> None:
    """Serve the HTTP API: commands (REST + live SSE), ingest, /healthz, /readyz, /metrics."""
    settings = settings_from(ctx, api={"host": host, "port": port, "processes": processes})
    if settings.api.processes > 1 and not shared_port:
        _supervise(ctx.find_root().obj, settings)
        return
    exit_when_a_thread_dies(configure("api"))
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,
        access_log=False,
        # live event streams never end by themselves: a stop cuts them after this long
        timeout_graceful_shutdown=max(1, int(settings.runtime.stop_grace_s / 2)),
    )
    server = uvicorn.Server(config)
    if shared_port:  # one of several processes on this port: the kernel spreads connections
        server.run(sockets=[_shared_socket(settings.api.host, settings.api.port)])
    else:
        server.run()


def _shared_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _supervise(config_file: Path | None, settings: Settings) -> None:
    """``api.processes`` API processes on one port, each restarted when it exits."""
    argv = [sys.executable, "-m", "fleetlink"]
    if config_file is not None:
        argv += ["--config", str(config_file)]
    argv += ["api", "--host", settings.api.host, "--port", str(settings.api.port)]
    argv += ["--processes", "1", "--shared-port"]
    supervisor = Supervisor.of_workers(
        lambda _index: argv,
        settings.api.processes,
        backoff_s=settings.gateway.restart_backoff_s,
        stop_timeout_s=settings.runtime.stop_grace_s + 5,
        log=configure("api.supervisor"),
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    supervisor.start()
    console.print(
        f"fleetlink api: {settings.api.processes} processes on "
        f"http://{settings.api.host}:{settings.api.port}"
    )
    try:
        while not stop.wait(0.5):
            supervisor.check()
    finally:
        supervisor.stop()
