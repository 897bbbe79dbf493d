"""The real API app on in-memory Kafka, spoken to through ASGI: hermetic API tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from fleetlink.api.app import create_app
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import Presence, PresenceStatus
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.payments.provider import PaymentProvider
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings, load_settings
from fleetlink.testing.memory_kafka import MemoryKafka
from tests.support.stack import user_token

CAR = "APXZZZ1JZXW000001"
OTHER = "APXZZZ1JZXW000002"
NEVER_SEEN = "APXZZZ1JZXW000009"


@dataclass
class Api:
    client: httpx.AsyncClient
    kafka: MemoryKafka
    settings: Settings
    admin: dict[str, str]
    owner: dict[str, str]
    viewer: dict[str, str]
    service: dict[str, str]

    def records(self, topic: KafkaTopic) -> list[bytes | None]:
        return [r.value() for r in self.kafka.records(self.settings.topic_map()[topic])]


def hermetic_app(
    state_dir: Path,
    cars: tuple[str, ...] = (CAR, OTHER),
    apps: dict[str, Any] | None = None,
    provider: PaymentProvider | None = None,
    **api: Any,
) -> tuple[FastAPI, MemoryKafka, Settings]:
    """The API on a fresh in-memory Kafka that has seen ``cars`` online (sedans of a recent
    firmware), charging at ``provider``."""
    settings = load_settings(
        stack={"state_dir": state_dir}, api={"kafka_timeout_s": 1, **api}, apps=apps or {}
    )
    kafka = MemoryKafka()
    topics = settings.topic_map()
    kafka.create(*topics.names())
    for vin in cars:
        presence = Presence(PresenceStatus.ONLINE, 1, model="fl-sedan", firmware="2026.40")
        kafka.append(topics[KafkaTopic.PRESENCE], encode(presence), vin.encode())
    return create_app(settings, kafka.backbone(), provider), kafka, settings


@asynccontextmanager
async def running_api(
    state_dir: Path,
    apps: dict[str, Any] | None = None,
    provider: PaymentProvider | None = None,
    **api: Any,
) -> AsyncIterator[Api]:
    app, kafka, settings = hermetic_app(state_dir, apps=apps, provider=provider, **api)
    async with app.router.lifespan_context(app):
        views = (
            app.state.commands.view,
            app.state.geofences.view,
            app.state.maintenance.view,
            app.state.purchases.view,
        )
        for _ in range(200):
            if all(view.ready.is_set() for view in views):
                break
            await asyncio.sleep(0.01)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield Api(
                client,
                kafka,
                settings,
                admin=user_token(settings, "ada", UserRole.FLEET_ADMIN),
                owner=user_token(settings, "olga", UserRole.OWNER, [CAR]),
                viewer=user_token(settings, "vera", UserRole.VIEWER),
                service=user_token(settings, "sam", UserRole.SERVICE),
            )


def run(test: object) -> None:
    asyncio.run(test)  # type: ignore[arg-type]
