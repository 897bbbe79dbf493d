"""Signed OTA orders, a car that records its reports, and an image server for the OTA tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetlink.contracts.campaigns import (
    DirectorOrder,
    ImageMetadata,
    SoftwareUpdateParams,
    sha256_of,
)
from fleetlink.contracts.models import Command, CommandName, EventKind
from fleetlink.security.images import DirectorSigner, ImageSigner, OtaTrust
from fleetlink.vehicle.commands import CommandExecutor
from fleetlink.vehicle.ota import OtaConfig, OtaUpdater
from fleetlink.vehicle.ota_rules import OtaFaults
from fleetlink.vehicle.state import VehicleState

VIN = "WVWZZZ1JZXW000001"
NOW = 1_764_000_000_000
DAY_MS = 86_400_000
URL = "http://images.test/v1/images/tcu/2026.41"
TOKEN = "download-token"
IMAGE = bytes(range(256)) * 40  # 10 KiB: four progress marks with 1 KiB chunks

IMAGE_KEY = Ed25519PrivateKey.generate()
DIRECTOR_KEY = Ed25519PrivateKey.generate()
TRUST = OtaTrust.of(IMAGE_KEY.public_key(), DIRECTOR_KEY.public_key())


def update(
    version: str = "2026.41",
    *,
    data: bytes = IMAGE,
    vin: str = VIN,
    target: str = "fl-sedan",
    campaign_id: str = "spring-release",
    expires_at: int = NOW + DAY_MS,
    group: int | None = None,
    image_key: Ed25519PrivateKey = IMAGE_KEY,
) -> SoftwareUpdateParams:
    """A ``software.update`` whose two documents are signed by the trusted keys."""
    image = ImageSigner(image_key).sign(
        ImageMetadata(
            name="tcu",
            version=version,
            target=target,
            length=len(data),
            sha256=sha256_of(data),
            released_at=NOW - DAY_MS,
        )
    )
    order = DirectorSigner(DIRECTOR_KEY).sign(
        DirectorOrder(
            vin=vin,
            campaign_id=campaign_id,
            name=image.name,
            version=image.version,
            length=image.length,
            sha256=image.sha256,
            expires_at=expires_at,
        )
    )
    return SoftwareUpdateParams(
        campaign_id=campaign_id, image=image, order=order, url=URL, token=TOKEN, group=group
    )


def command(name: CommandName, params: msgspec.Struct, command_id: str = "c1") -> Command:
    return Command(
        command_id=command_id,
        name=name,
        issued_at=NOW,
        expires_at=NOW + DAY_MS,
        params=msgspec.to_builtins(params),
    )


class Car:
    """A car with an ``OtaUpdater`` whose events land in ``events``; the clock is ``now``."""

    def __init__(
        self,
        *,
        flash_dir: Path | None = None,
        http: httpx.AsyncClient | None = None,
        faults: OtaFaults | None = None,
        park_wait_s: float = 0.0,
        install_s: float = 0.0,
        chunk_bytes: int = 1024,
        firmware: str = "2026.40",
    ) -> None:
        self.now = NOW
        self.state = VehicleState(vin=VIN, latitude=52.52, longitude=13.40, firmware=firmware)
        self.events: list[dict[str, Any]] = []
        self.births = 0
        config = OtaConfig(
            trust=TRUST,
            http=http,
            park_wait_s=park_wait_s,
            install_s=install_s,
            flash_dir=flash_dir,
            faults=faults or OtaFaults(),
            chunk_bytes=chunk_bytes,
            retry_s=0.01,
            retry_max_s=0.05,
        )
        self.ota = OtaUpdater(
            self.state,
            config,
            report_event=self._event,
            on_installed=self._born,
            clock=lambda: self.now,
        )
        self.executor = CommandExecutor(self.state, verifier=None, extension=self.ota)

    def _event(self, kind: EventKind, data: dict[str, object]) -> None:
        assert kind is EventKind.SOFTWARE_STATE
        self.events.append(dict(data))

    def _born(self) -> None:
        self.births += 1

    def steps(self) -> list[str]:
        return [str(event["step"]) for event in self.events]

    def last(self) -> dict[str, Any]:
        return self.events[-1]


class CutStream(httpx.AsyncByteStream):
    """A body that breaks after ``cut_at`` bytes, like a cellular link dropping mid-download."""

    def __init__(self, data: bytes, cut_at: int | None, chunk: int = 1024) -> None:
        self._data, self._cut_at, self._chunk = data, cut_at, chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        end = len(self._data) if self._cut_at is None else self._cut_at
        for start in range(0, end, self._chunk):
            yield self._data[start : min(end, start + self._chunk)]
        if self._cut_at is not None:
            raise httpx.ReadError("connection reset by peer")


class ImageServer:
    """Serves ``data`` with Range support; ``cuts`` the first responses after that many bytes,
    ``statuses`` answers the first requests with those statuses instead."""

    def __init__(
        self,
        data: bytes = IMAGE,
        *,
        cuts: list[int] | None = None,
        statuses: list[int] | None = None,
    ) -> None:
        self.data = data
        self.cuts = list(cuts or [])
        self.statuses = list(statuses or [])
        self.ranges: list[str | None] = []
        self.tokens: list[str | None] = []
        self.if_ranges: list[str | None] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.ranges.append(request.headers.get("range"))
        self.if_ranges.append(request.headers.get("if-range"))
        self.tokens.append(request.headers.get("authorization"))
        if self.statuses:
            return httpx.Response(self.statuses.pop(0))
        start, total = 0, len(self.data)
        asked = request.headers.get("range")
        if asked is not None:
            start = int(asked.removeprefix("bytes=").split("-")[0])
            if start >= total:
                return httpx.Response(416, headers={"content-range": f"bytes */{total}"})
        body = self.data[start:]
        cut = self.cuts.pop(0) if self.cuts else None
        headers = {"content-length": str(len(body))}
        if asked is not None:
            headers["content-range"] = f"bytes {start}-{total - 1}/{total}"
        return httpx.Response(206 if asked else 200, headers=headers, stream=CutStream(body, cut))

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Let the loop run until ``condition`` holds (a test fails rather than hang)."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)
