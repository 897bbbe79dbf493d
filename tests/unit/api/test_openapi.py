"""The published contract tells the truth: every error is declared with the error schema the API
really answers, path parameters carry their patterns, /metrics is text, and 405 names Allow."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetlink.api.app import create_app
from fleetlink.contracts.vin import VIN_PATTERN
from fleetlink.settings import load_settings
from fleetlink.testing.memory_kafka import MemoryKafka

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def document(tmp_path: Path) -> dict[str, Any]:
    app = create_app(load_settings(stack={"state_dir": tmp_path}), MemoryKafka().backbone())
    return app.openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_api_route_declares_its_errors_with_the_one_error_schema(
    document: dict[str, Any],
) -> None:
    api = [(p, m, o) for p, m, o in operations(document) if p.startswith("/v1/")]
    assert len(api) >= 14
    for path, method, operation in api:
        responses = operation["responses"]
        # the endpoints without a bearer token (the provider's webhook, the dashboard's login)
        # refuse with 400
        signed = operation.get("security") == []
        for status in ("400",) if signed else ("401", "403", "422", "429"):
            assert status in responses, (method, path, status)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    # every write goes to Kafka, but a login: it only sets a cookie
    writes = [o for p, m, o in api if m == "post" and o.get("operationId") != "open_session"]
    assert all("503" in o["responses"] for o in writes)
    with_body = [o for o in writes if "requestBody" in o]
    # a command, a key, telemetry, an event, a geofence, a service, a purchase, an owner, a
    # campaign and its five actions (approve, pause, resume, next-group, abort: a note each)
    assert len(with_body) == 14
    assert all("400" in o["responses"] for o in with_body)


def test_vin_path_parameters_carry_the_vin_pattern(document: dict[str, Any]) -> None:
    vins = [
        parameter
        for _, _, operation in operations(document)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and parameter["name"] == "vin"
    ]
    assert len(vins) >= 6
    assert all(p["schema"]["pattern"] == VIN_PATTERN for p in vins)


def test_metrics_are_declared_as_prometheus_text(document: dict[str, Any]) -> None:
    content = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "application/json" not in content
    assert any(kind.startswith("text/plain") for kind in content)


def test_a_wrong_method_is_405_with_allow_and_the_error_body(tmp_path: Path) -> None:
    app = create_app(load_settings(stack={"state_dir": tmp_path}), MemoryKafka().backbone())

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.put("/v1/vehicles")

    reply = asyncio.run(ask())
    assert reply.status_code == 405
    assert "GET" in reply.headers["allow"]
    assert set(reply.json()) == {"error", "detail"}


def test_the_docs_pages_load_everything_from_the_api_itself(tmp_path: Path) -> None:
    """No CDN and no web fonts: ``/docs`` and ``/redoc`` work on a machine without internet."""
    app = create_app(load_settings(stack={"state_dir": tmp_path}), MemoryKafka().backbone())

    async def fetch_all() -> list[tuple[str, httpx.Response]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            fetched = []
            for page in ("/docs", "/redoc"):
                html = await client.get(page)
                fetched.append((page, html))
                assert "http://" not in html.text, page
                assert "https://" not in html.text, page
                for asset in re.findall(r'(?:src|href)="(/[^"]+)"', html.text):
                    fetched.append((asset, await client.get(asset)))
            return fetched

    fetched = dict(asyncio.run(fetch_all()))
    assert all(reply.status_code == 200 for reply in fetched.values()), fetched
    assets = [path for path in fetched if path.startswith("/docs-assets/")]
    assert {p.rsplit("/", 1)[1] for p in assets} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "redoc.standalone.js",
    }
    assert all(len(fetched[path].content) > 1000 for path in assets)


def test_every_live_stream_is_read_to_its_first_event_by_the_conformance_run(
    document: dict[str, Any],
) -> None:
    """A stream never ends by itself: without ``max-stream-events`` the conformance run waits
    for each generated case's keepalive (a stream forgotten there cost the suite 5 minutes)."""
    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parents[3] / "schemathesis.toml").read_text())
    bounded = {
        entry["include-operation-id"]
        for entry in config["operations"]
        if "max-stream-events" in entry and "include-operation-id" in entry
    }
    streams = {
        operation["operationId"]
        for _, _, operation in operations(document)
        if "text/event-stream" in operation["responses"].get("200", {}).get("content", {})
    }
    assert len(streams) >= 5
    assert streams <= bounded, f"streams without max-stream-events: {sorted(streams - bounded)}"
