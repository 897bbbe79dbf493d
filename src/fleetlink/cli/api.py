"""``fleetlink api``: the HTTP API (FastAPI on uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from fleetlink.adapters.runtime.watchdog import exit_when_a_thread_dies
from fleetlink.api.app import create_app
from fleetlink.cli.common import settings_from
from fleetlink.logs import configure


def api(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Listen address (api.host).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Listen port (api.port).")] = None,
) -> None:
    """Serve the HTTP API: commands (REST + live SSE), ingest, /healthz, /readyz, /metrics."""
    settings = settings_from(ctx, api={"host": host, "port": port})
    exit_when_a_thread_dies(configure("api"))
    uvicorn.run(
        create_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,
        access_log=False,
        # live event streams never end by themselves: a stop cuts them after this long
        timeout_graceful_shutdown=max(1, int(settings.runtime.stop_grace_s / 2)),
    )
