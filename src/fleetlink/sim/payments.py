"""A local payment provider that behaves like Stripe (``fleetlink payments simulate``).

In memory, on asyncio: payments confirmed or declined after ``confirm_delay_s``, whole refunds,
disputes on request (``sim.payment_ledger``); idempotency keys as Stripe keeps them (the first
answer replayed, the same key with other parameters refused); signed webhooks delivered at least
once, in any order, with chaos (``sim.payment_webhooks``). ``/v1/test/...`` serves tests:
disputes, the chaos knobs at run time, and the ledger of everything that happened.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

import httpx
import msgspec
import uvicorn
from fastapi import FastAPI, Request, Response
from msgspec import Meta

from fleetlink.settings import Settings
from fleetlink.sim.payment_ledger import PaymentLedger, ProviderError, invalid
from fleetlink.sim.payment_webhooks import Chaos, Clock, WebhookSender

log = logging.getLogger("fleetlink.payments.simulator")

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
_KEY_MAX: Final = 255  # Stripe's bound on an idempotency key
_JSON: Final = "application/json"
T = TypeVar("T")

Probability = Annotated[float, Meta(ge=0, le=1)]
Seconds = Annotated[float, Meta(ge=0, le=86400)]
# Stripe's bounds on metadata: keys up to 40 characters, values up to 500
Metadata = dict[Annotated[str, Meta(max_length=40)], Annotated[str, Meta(max_length=500)]]


class _CreateIntent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    amount: Annotated[int, Meta(ge=0)]
    currency: Annotated[str, Meta(pattern=r"^[a-z]{3}$")]
    metadata: Metadata = {}


class _CreateRefund(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    payment_intent: Annotated[str, Meta(min_length=1, max_length=255)]
    reason: Annotated[str, Meta(max_length=500)] = "requested_by_customer"


class _CreateDispute(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    payment_intent: Annotated[str, Meta(min_length=1, max_length=255)]
    reason: Annotated[str, Meta(max_length=100)] = "fraudulent"


class _ChaosChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    decline_p: Probability | None = None
    duplicate_p: Probability | None = None
    reorder_p: Probability | None = None
    max_delay_s: Seconds | None = None
    down_for_s: Seconds | None = None  # from now on, every delivery attempt fails this long


@dataclass(frozen=True)
class _Saved:
    fingerprint: bytes  # the request: a key reused with another one is refused
    status: int
    body: bytes


def _read(model: type[T], raw: bytes) -> T:
    try:
        return msgspec.json.decode(raw, type=model)
    except msgspec.DecodeError as error:  # ValidationError included
        raise invalid("parameter_invalid", f"invalid request body: {error}") from None


def _json(status: int, body: object, **headers: str) -> Response:
    return Response(msgspec.json.encode(body), status, headers=headers, media_type=_JSON)


class _IdempotencyKeys:
    """Stripe's idempotency: one answer per key, replayed to the same request, and the key
    refused for another. Requests that fail validation are not saved (nor in Stripe's): once
    fixed, they may still use the key. Kept for the simulator's life (Stripe: 24 h at least)."""

    def __init__(self) -> None:
        self._saved: dict[str, _Saved] = {}

    def answer(
        self,
        request: Request,
        raw: bytes,
        model: type[T],
        run: Callable[[T], dict[str, Any]],
    ) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if not key:
            raise invalid("parameter_missing", f"the {IDEMPOTENCY_HEADER} header is required")
        if len(key) > _KEY_MAX:
            raise invalid("parameter_invalid", f"{IDEMPOTENCY_HEADER}: at most {_KEY_MAX} chars")
        parsed = _read(model, raw)
        # the parameters, not their spelling: the same JSON in another key order is the same
        fingerprint = request.url.path.encode() + b" " + msgspec.json.encode(parsed, order="sorted")
        saved = self._saved.get(key)
        if saved is not None:
            if saved.fingerprint != fingerprint:
                raise ProviderError(
                    400,
                    "idempotency_error",
                    "idempotency_key_in_use",
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                )
            replayed = {"Idempotent-Replayed": "true"}
            return Response(saved.body, saved.status, headers=replayed, media_type=_JSON)
        try:
            status, body = 200, run(parsed)
        except ProviderError as error:  # an answer like any other: saved, replayed
            status, body = error.status, error.body
        encoded = msgspec.json.encode(body)
        self._saved[key] = _Saved(fingerprint, status, encoded)
        return Response(encoded, status, media_type=_JSON)


def _answer(work: Callable[[], Response]) -> Response:
    try:
        return work()
    except ProviderError as error:
        return _json(error.status, error.body)


def _change_chaos(chaos: Chaos, change: _ChaosChange, now: float) -> dict[str, float]:
    for name in ("decline_p", "duplicate_p", "reorder_p", "max_delay_s"):
        value = getattr(change, name)
        if value is not None:
            setattr(chaos, name, value)
    if change.down_for_s is not None:
        chaos.down_until = now + change.down_for_s
    knobs = chaos.as_json(now)
    log.info("chaos changed", extra={"chaos": knobs})
    return knobs


def create_simulator(
    settings: Settings,
    *,
    secrets: list[str],
    webhook_url: str,
    clock: Clock = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The simulator's app; ``transport`` carries its webhooks (tests deliver in-process)."""
    sim = settings.payments.simulator
    chaos = Chaos.of(sim, clock())
    sender = WebhookSender(
        url=webhook_url,
        secrets=secrets,
        sim=sim,
        chaos=chaos,
        rng=random.Random(f"{sim.seed}/webhooks"),
        clock=clock,
        transport=transport,
    )
    ledger = PaymentLedger(sim, sender, chaos, clock)
    keys = _IdempotencyKeys()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        chaos.down_until = clock() + sim.down_for_s  # "down for" counts from the start
        await sender.start()
        log.info("payment simulator up", extra={"webhook_url": webhook_url, "seed": sim.seed})
        try:
            yield
        finally:
            await ledger.stop()
            await sender.stop()

    app = FastAPI(
        title="fleetlink payment provider simulator",
        lifespan=lifespan,
        # no pages that would fetch assets from a CDN; this API is for fleetlink only
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def create(ask: _CreateIntent) -> dict[str, Any]:
        return ledger.create_intent(ask.amount, ask.currency, ask.metadata)

    def refund(ask: _CreateRefund) -> dict[str, Any]:
        return ledger.refund(ask.payment_intent, ask.reason)

    @app.post("/v1/payment_intents")
    async def create_intent(request: Request) -> Response:
        raw = await request.body()
        return _answer(lambda: keys.answer(request, raw, _CreateIntent, create))

    @app.get("/v1/payment_intents/{intent_id}")
    async def get_intent(intent_id: str) -> Response:
        return _answer(lambda: _json(200, ledger.intent(intent_id)))

    @app.post("/v1/refunds")
    async def create_refund(request: Request) -> Response:
        raw = await request.body()
        return _answer(lambda: keys.answer(request, raw, _CreateRefund, refund))

    @app.post("/v1/test/disputes")
    async def create_dispute(request: Request) -> Response:
        raw = await request.body()

        def dispute() -> Response:
            ask = _read(_CreateDispute, raw)
            return _json(200, ledger.dispute(ask.payment_intent, ask.reason))

        return _answer(dispute)

    @app.post("/v1/test/chaos")
    async def change_chaos(request: Request) -> Response:
        raw = await request.body()
        return _answer(lambda: _json(200, _change_chaos(chaos, _read(_ChaosChange, raw), clock())))

    @app.get("/v1/test/ledger")
    async def read_ledger() -> Response:
        return _json(200, ledger.as_json())

    return app


def serve_simulator(settings: Settings, *, secrets: list[str], webhook_url: str) -> None:
    """Run the simulator on ``payments.simulator.host:port`` until interrupted."""
    sim = settings.payments.simulator
    app = create_simulator(settings, secrets=secrets, webhook_url=webhook_url)
    uvicorn.run(app, host=sim.host, port=sim.port, log_config=None, access_log=False)
