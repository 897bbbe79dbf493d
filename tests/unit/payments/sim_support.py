"""The payment simulator in-process, for tests: a webhook receiver on an httpx.MockTransport,
and helpers that drive the simulator's API."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec

from fleetlink.settings import load_settings
from fleetlink.sim.payment_webhooks import Clock
from fleetlink.sim.payments import create_simulator
from tests.support.strategies import VIN

SECRETS = ["whsec_old", "whsec_new"]
HOOK = "http://api/v1/payments/webhook"
METADATA = {"purchase_id": "p-1", "vin": VIN, "feature": "heated-seats", "owner": "olga"}
PAYMENT = {"amount": 1500, "currency": "eur", "metadata": METADATA}
PATIENCE_S = 20.0  # what a loaded machine may take; a passing run takes milliseconds
FAST = {"confirm_delay_s": 0.01, "retry_first_s": 0.01, "retry_factor": 1.0}


class Receiver:
    """The webhook endpoint: records what it got; fails an event's first ``fail`` attempts."""

    def __init__(self, fail: int = 0, error: Callable[[], httpx.Response] | None = None):
        self.fail = fail
        self.error = error or (lambda: httpx.Response(500))
        self.requests: list[httpx.Request] = []  # every POST that reached it
        self.tries: Counter[str] = Counter()  # by event id
        self.delivered: list[dict[str, Any]] = []  # events answered 200, in order

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        event = msgspec.json.decode(request.content)
        self.tries[event["id"]] += 1
        if self.tries[event["id"]] <= self.fail:
            return self.error()
        self.delivered.append(event)
        return httpx.Response(200)

    def types(self) -> list[str]:
        return [event["type"] for event in self.delivered]


class Sim:
    def __init__(self, client: httpx.AsyncClient, receiver: Receiver) -> None:
        self.client = client
        self.receiver = receiver

    async def pay(self, key: str = "k1", **body: Any) -> httpx.Response:
        headers = {"Idempotency-Key": key}
        return await self.client.post(
            "/v1/payment_intents", json={**PAYMENT, **body}, headers=headers
        )

    async def refund(
        self, intent: str, key: str = "r1", reason: str = "no-activation"
    ) -> httpx.Response:
        body = {"payment_intent": intent, "reason": reason}
        return await self.client.post("/v1/refunds", json=body, headers={"Idempotency-Key": key})

    async def ledger(self) -> dict[str, Any]:
        return (await self.client.get("/v1/test/ledger")).json()  # type: ignore[no-any-return]

    async def until(
        self, check: Callable[[dict[str, Any]], bool], *, idle: bool = True
    ) -> dict[str, Any]:
        """The ledger once ``check`` holds of it (and, when ``idle``, nothing is still being
        delivered). Bounded by wall time, generous for a loaded machine; polls yield to the
        simulator's tasks."""
        deadline = time.monotonic() + PATIENCE_S
        while True:
            ledger = await self.ledger()
            if check(ledger) and (not idle or ledger["webhooks"]["pending"] == 0):
                return ledger
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached in {PATIENCE_S} s: {ledger}")
            await asyncio.sleep(0.005)

    async def settled(self, events: int) -> dict[str, Any]:
        """The ledger once ``events`` events in all exist and none is still being delivered."""
        return await self.until(lambda ledger: ledger["webhooks"]["events"] >= events)

    async def paid(self, key: str = "k1") -> str:
        """A payment made and succeeded, its events delivered."""
        intent: str = (await self.pay(key)).json()["id"]
        await self.until(lambda ledger: intent in {c["intent_id"] for c in ledger["charges"]})
        return intent


@asynccontextmanager
async def simulator(
    tmp_path: Path, receiver: Receiver, clock: Clock = time.time, **knobs: Any
) -> AsyncIterator[Sim]:
    settings = load_settings(
        stack={"state_dir": tmp_path}, payments={"simulator": {**FAST, **knobs}}
    )
    transport = httpx.MockTransport(receiver)
    app = create_simulator(
        settings, secrets=SECRETS, webhook_url=HOOK, clock=clock, transport=transport
    )
    async with app.router.lifespan_context(app):
        asgi = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=asgi, base_url="http://sim") as client:
            yield Sim(client, receiver)


def run(
    tmp_path: Path,
    scenario: Callable[[Sim], Awaitable[None]],
    clock: Clock = time.time,
    **knobs: Any,
) -> Receiver:
    receiver = Receiver(fail=knobs.pop("fail", 0))

    async def main() -> None:
        async with simulator(tmp_path, receiver, clock, **knobs) as sim:
            await scenario(sim)

    asyncio.run(main())
    return receiver
