"""The FastAPI application: routers, Kafka producer lifecycle, health and metrics endpoints."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.delivery import KafkaUnavailableError
from fleetlink.adapters.kafka.follow import FollowedModel, stop_all
from fleetlink.adapters.kafka.seams import Backbone, KafkaSource, RecordSink, RecordSource
from fleetlink.api import (
    campaign_control,
    campaigns,
    command_events,
    commands,
    geofences,
    grants,
    hazards,
    images,
    ingest,
    maintenance,
    parking,
    platform,
    purchases,
    replication,
    session,
    subscriptions,
    vehicles,
)
from fleetlink.api.auth import Guard
from fleetlink.api.bodies import INVALID_UTF8
from fleetlink.api.dashboard import serve_dashboard
from fleetlink.api.docs import serve_docs
from fleetlink.api.errors import PATH_ERRORS, ApiError, kafka_unavailable
from fleetlink.api.platform import DeadLetterCounts, PlatformProbe
from fleetlink.apps.fleet.fence_model import FenceReadModel
from fleetlink.apps.fleet.read_model import FleetReadModel
from fleetlink.apps.hazards.read_model import HazardReadModel
from fleetlink.apps.maintenance.read_model import AlertReadModel
from fleetlink.apps.parking.read_model import ParkingReadModel
from fleetlink.campaigns.images import ImageRepository
from fleetlink.campaigns.read_model import CampaignReadModel
from fleetlink.commands.read_model import ReadModel
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.ingest.routing import Router
from fleetlink.mirror.view import ReplicationView
from fleetlink.payments.provider import PaymentProvider, provider_of
from fleetlink.payments.secrets import webhook_secrets
from fleetlink.purchases.read_model import PurchaseReadModel
from fleetlink.security.keys import command_signer, download_trust, signing_key
from fleetlink.security.pki import SigningPurpose
from fleetlink.security.ratelimit import RateLimiter
from fleetlink.security.sessions import Sessions, SpentIds
from fleetlink.security.users import UserRegistry
from fleetlink.settings import Settings

_READY_CACHE_S = 2.0
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class BodyLimit:
    """413 for a request whose ``Content-Length`` is over the limit, before its body is read.

    Plain ASGI: Starlette's ``@app.middleware("http")`` costs a task and a response stream per
    request.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self._app = app
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self._max_body):
                detail = f"the body may hold at most {self._max_body} bytes"
                response = JSONResponse({"error": "too-large", "detail": detail}, 413)
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


def create_app(
    settings: Settings,
    backbone: Backbone | None = None,
    provider: PaymentProvider | None = None,
) -> FastAPI:
    """The API on the settings' Kafka cluster, or on ``backbone`` (in-memory Kafka in tests);
    purchases are charged at ``provider`` (default: the configured one)."""
    gateway = settings.gateway
    topics = settings.topic_map()
    kafka = backbone or _cluster_backbone(settings)
    registry = CollectorRegistry()
    state = ingest.IngestState(
        router=Router.from_settings(gateway, settings.topic_map()),
        retry_after_s=max(1, round(settings.api.kafka_timeout_s)),
        metrics=ingest.IngestMetrics(registry),
    )
    commands_state = commands.CommandsState(
        view=ReadModel(settings, logging.getLogger("fleetlink.api.view"), kafka.source()),
        signer=command_signer(settings),
        commands_topic=topics[KafkaTopic.COMMANDS],
        grants_topic=topics[KafkaTopic.GRANTS],
        audit_topic=topics[KafkaTopic.AUDIT],
        retry_after_s=state.retry_after_s,
        cancel_wait_s=settings.api.cancel_wait_s,
    )
    token_key = signing_key(settings, SigningPurpose.API_TOKENS)
    spent = SpentIds(settings.api_sessions_file())
    guard = Guard(
        token_key.public_key(),
        UserRegistry(settings.users_file()),
        RateLimiter(settings.api.client_rate_per_s, settings.api.client_burst),
        Sessions(token_key, settings.security.session_ttl_s, spent=spent),
    )
    hazards_view = HazardReadModel(
        settings, logging.getLogger("fleetlink.api.hazards"), kafka.source()
    )
    parking_view = ParkingReadModel(
        settings, logging.getLogger("fleetlink.api.parking"), kafka.source()
    )
    fleet_view = FleetReadModel(settings, logging.getLogger("fleetlink.api.fleet"), kafka.source())
    fences = geofences.GeofencesState(
        view=FenceReadModel(
            settings, logging.getLogger("fleetlink.api.fences"), kafka.source(), events=True
        ),
        topic=topics[KafkaTopic.GEOFENCES],
        per_owner=settings.apps.fleet.fences_per_owner,
    )
    maintenance_settings = settings.apps.maintenance
    upkeep = maintenance.MaintenanceState(
        view=AlertReadModel(settings, logging.getLogger("fleetlink.api.alerts"), kafka.source()),
        acks_topic=topics[KafkaTopic.ALERT_ACKS],
        services_topic=topics[KafkaTopic.SERVICES],
        interval_km=maintenance_settings.service_interval_km,
        interval_days=maintenance_settings.service_interval_days,
    )
    link_view = ReplicationView(
        settings, logging.getLogger("fleetlink.api.replication"), kafka.source()
    )
    shop = purchases.PurchasesState(
        view=PurchaseReadModel(
            settings, logging.getLogger("fleetlink.api.purchases"), kafka.source()
        ),
        provider=provider or provider_of(settings),
        catalogue={feature.id: feature for feature in settings.purchases.catalogue},
        payments_topic=topics[KafkaTopic.PAYMENTS],
        dlq_topic=topics[KafkaTopic.DLQ],
        webhook_secrets=webhook_secrets(settings),
        tolerance_s=settings.payments.tolerance_s,
        retry_after_s=state.retry_after_s,
    )
    ota = campaigns.CampaignsState(
        view=CampaignReadModel(
            settings, logging.getLogger("fleetlink.api.campaigns"), kafka.source()
        ),
        images=ImageRepository(settings.image_dir()),
        trust=download_trust(settings),
        requests_topic=topics[KafkaTopic.CAMPAIGN_REQUESTS],
    )
    ready_cache: dict[str, tuple[float, bool]] = {}
    dead_letters = DeadLetterCounts(
        settings, logging.getLogger("fleetlink.api.dlq"), kafka.source()
    )
    probe = (
        PlatformProbe(settings, KafkaClients.of(settings), settings.api.platform_every_s)
        if backbone is None
        else None  # an in-memory Kafka: no offsets to sample
    )
    views: list[FollowedModel[Any]] = [
        dead_letters,
        commands_state.view,
        hazards_view,
        parking_view,
        fleet_view,
        fences.view,
        upkeep.view,
        link_view,
        shop.view,
        ota.view,
    ]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.deliveries = kafka.sink()
        commands_state.deliveries = state.deliveries
        fences.deliveries = state.deliveries
        upkeep.deliveries = state.deliveries
        shop.deliveries = state.deliveries
        ota.deliveries = state.deliveries
        for view in views:
            view.start()
        if probe is not None:
            probe.start()
        yield
        if probe is not None:
            probe.stop()
        stop_all(views)
        state.deliveries.close()

    app = FastAPI(
        title="fleetlink API",
        version="0.1.0",
        description="Vehicle data into Kafka over HTTP and MQTT; remote commands; local hazards.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        docs_url=None,  # served from the package's own assets below: no CDN
        redoc_url=None,
    )
    serve_docs(app)
    serve_dashboard(app)
    app.include_router(platform.router)
    app.state.ingest = state
    app.state.commands = commands_state
    app.state.guard = guard
    app.state.settings = settings
    app.state.platform = probe
    app.state.dead_letters = dead_letters
    app.state.hazards = hazards_view
    app.state.parking = parking_view
    app.state.fleet = fleet_view
    app.state.geofences = fences
    app.state.maintenance = upkeep
    app.state.replication = link_view
    app.state.purchases = shop
    app.state.campaigns = ota
    app.include_router(ingest.router)
    app.include_router(command_events.router)
    app.include_router(commands.router)
    app.include_router(vehicles.router)
    app.include_router(grants.router)
    app.include_router(hazards.router)
    app.include_router(parking.router)
    app.include_router(geofences.router)
    app.include_router(maintenance.router)
    app.include_router(replication.router)
    app.include_router(purchases.router)
    app.include_router(subscriptions.router)
    app.include_router(campaigns.router)
    app.include_router(campaign_control.router)
    app.include_router(images.router)
    app.include_router(session.router)

    app.add_middleware(BodyLimit, max_body=settings.api.max_body_bytes)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: ApiError) -> JSONResponse:
        return error.response()

    @app.exception_handler(KafkaUnavailableError)
    async def no_kafka(_request: Request, error: KafkaUnavailableError) -> JSONResponse:
        return kafka_unavailable(error, state.retry_after_s).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 405:
            allow = (getattr(error, "headers", None) or {}).get("Allow", "")
            return _method_not_allowed(app, request, allow)
        name = "http"
        if error.status_code == 400 and isinstance(error.__cause__, UnicodeDecodeError):
            name = "invalid-utf8"  # FastAPI's answer to a JSON body that is not UTF-8
        return JSONResponse(
            {"error": name, "detail": error.detail},
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg")), "type": str(e.get("type"))}
            for e in error.errors()
        ]
        # a body that cannot be read at all is a bad request, not a semantic error
        for kind, name in (("json_invalid", "not-json"), (INVALID_UTF8, "invalid-utf8")):
            if any(problem["type"] == kind for problem in problems):
                return JSONResponse({"error": name, "detail": problems}, status_code=400)
        for problem in problems:
            if problem["loc"][:1] == ["path"] and request.url.path in app.openapi()["paths"]:
                # DELETE /v1/commands/summary: the path names a resource, not a command id
                return _method_not_allowed(app, request)
            if problem["loc"][:1] == ["path"] and problem["loc"][-1] in PATH_ERRORS:
                error_name, detail = PATH_ERRORS[problem["loc"][-1]]
                return JSONResponse({"error": error_name, "detail": detail}, status_code=422)
        return JSONResponse({"error": "invalid-request", "detail": problems}, status_code=422)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        now = time.monotonic()
        cached = ready_cache.get("kafka")
        if cached is None or now - cached[0] > _READY_CACHE_S:
            cached = (now, kafka.reachable())
            ready_cache["kafka"] = cached
        view = commands_state.view
        readers = (
            (view, "the fleet view"),
            (hazards_view, "the hazards view"),
            (parking_view, "the parking view"),
            (fleet_view, "the vehicle-state view"),
            (fences.view, "the geofences view"),
            (upkeep.view, "the alerts view"),
            (link_view, "the replication view"),
            (shop.view, "the purchases view"),
            (ota.view, "the campaigns view"),
        )
        dead = next((name for model, name in readers if not model.alive), None)
        ok = cached[1] and view.ready.is_set() and dead is None
        detail = "ready"
        if dead is not None:
            detail = f"{dead}'s reader died"
        elif not cached[1]:
            detail = "Kafka unreachable"
        elif not ok:
            detail = "reading the fleet's state"
        return JSONResponse({"ok": ok, "detail": detail}, status_code=200 if ok else 503)

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _operation_id(route: APIRoute) -> str:
    """The route function's name (``submit_command``): what generated clients call it."""
    return route.name


def _documented_path(app: FastAPI, path: str) -> dict[str, Any] | None:
    """The document's path item that ``path`` falls under, a literal path before a template."""
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    if path in paths:
        return paths[path]
    for template, item in paths.items():
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), path):
            return item
    return None


def _method_not_allowed(app: FastAPI, request: Request, fallback: str = "") -> JSONResponse:
    """405 naming every method the document gives the path: Starlette's own Allow names only
    the first route's, though each method of a path is a route of its own."""
    item = _documented_path(app, request.url.path)
    methods = sorted(m.upper() for m in item or () if m in _METHODS)
    detail = f"{request.method} is not allowed here"
    return JSONResponse(
        {"error": "method-not-allowed", "detail": detail},
        status_code=405,
        headers={"Allow": ", ".join(methods) or fallback},
    )


def _cluster_backbone(settings: Settings) -> Backbone:
    kafka = KafkaClients.of(settings)

    def sink() -> RecordSink:
        return kafka.deliveries(
            linger_ms=1,  # a request waits for its ack: batching would only add latency
            compression=settings.gateway.compression,
            message_timeout_ms=int(settings.api.kafka_timeout_s * 1000),
            log=logging.getLogger("fleetlink.api.kafka"),
        )

    def source() -> RecordSource:
        reader = kafka.reader("api-view", log=logging.getLogger("fleetlink.api.view"))
        return KafkaSource(reader)

    def reachable() -> bool:
        try:
            kafka.admin().list_topics(timeout=1.0)
        except Exception:  # any failure to fetch metadata means "not ready"
            return False
        return True

    return Backbone(sink, source, reachable)
