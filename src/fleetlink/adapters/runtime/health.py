"""The small HTTP server of every long-running process: ``/metrics``, ``/healthz``, ``/readyz``."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

Health = Callable[[], tuple[bool, str]]


def serve(registry: CollectorRegistry, port: int, *, healthy: Health, ready: Health) -> WSGIServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on 127.0.0.1:``port`` in a thread."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            ok, detail = (healthy if path == "/healthz" else ready)()
            body = json.dumps({"ok": ok, "detail": detail}).encode()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        return metrics_app(environ, start_response)  # type: ignore[no-any-return]

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

    server = make_server("127.0.0.1", port, app, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


def serve_if_free(
    registry: CollectorRegistry,
    port: int,
    *,
    healthy: Health,
    ready: Health,
    log: logging.Logger,
    setting: str,
) -> WSGIServer | None:
    """``serve``, or None with an error naming ``setting`` when the port is taken: for a process
    whose data matters more than its metrics."""
    try:
        return serve(registry, port, healthy=healthy, ready=ready)
    except OSError as error:
        log.error(
            f"metrics endpoint unavailable; set {setting}",
            extra={"port": port, "error": str(error)},
        )
        return None
