"""The HTTP client of the payment provider: what it sends, how it reads answers and errors,
and a round trip through the simulator (in-process)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec
import pytest
from fastapi import FastAPI

from fleetlink.payments.provider import (
    HttpProvider,
    PaymentIntent,
    ProviderRefused,
    ProviderUnavailable,
    Refund,
    provider_of,
)
from fleetlink.settings import load_settings
from fleetlink.sim.payments import create_simulator

METADATA = {"purchase_id": "p-1"}


def provider(answer: Callable[[httpx.Request], httpx.Response]) -> HttpProvider:
    return HttpProvider("http://psp/", 1.0, transport=httpx.MockTransport(answer))


def pay(client: HttpProvider) -> PaymentIntent:
    return client.create_payment(
        amount=1500, currency="eur", metadata=METADATA, idempotency_key="fleetlink-charge-p-1"
    )


def test_a_payment_is_a_json_post_with_its_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "pi_1", "status": "processing", "amount": 1500})

    with provider(answer) as client:
        assert pay(client) == PaymentIntent("pi_1", "processing")
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", "http://psp/v1/payment_intents")
    assert request.headers["Idempotency-Key"] == "fleetlink-charge-p-1"
    assert request.headers["Content-Type"] == "application/json"
    assert msgspec.json.decode(request.content) == {
        "amount": 1500,
        "currency": "eur",
        "metadata": METADATA,
    }


def test_a_refund() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/refunds"
        body = msgspec.json.decode(request.content)
        assert body == {"payment_intent": "pi_1", "reason": "no-activation"}
        return httpx.Response(200, json={"id": "re_1", "status": "succeeded"})

    refund = provider(answer).refund(intent_id="pi_1", reason="no-activation", idempotency_key="k")
    assert refund == Refund("re_1", "succeeded")


def test_a_refusal_carries_stripes_code_and_message() -> None:
    error = {"type": "invalid_request_error", "code": "charge_already_refunded", "message": "no"}
    with pytest.raises(ProviderRefused) as caught:
        pay(provider(lambda _: httpx.Response(400, json={"error": error})))
    refused = caught.value
    assert (refused.status, refused.code, refused.message) == (400, "charge_already_refunded", "no")
    with pytest.raises(ProviderRefused) as caught:
        pay(provider(lambda _: httpx.Response(404, text="<html>not found</html>")))
    assert (caught.value.status, caught.value.code) == (404, None)


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


@pytest.mark.parametrize(
    "answer",
    [
        lambda _: httpx.Response(500),
        lambda _: httpx.Response(503, json={"error": {"code": "x"}}),
        lambda _: httpx.Response(429),
        lambda _: httpx.Response(409, json={"error": {"code": "idempotency_key_in_use"}}),
        lambda _: httpx.Response(200, text="not json"),
        lambda _: httpx.Response(200, json={"id": "pi_1"}),  # no status
        lambda _: httpx.Response(302, headers={"Location": "/elsewhere"}),
        unreachable,
        timeout,
    ],
)
def test_unavailable_means_try_again(answer: Callable[[httpx.Request], httpx.Response]) -> None:
    with pytest.raises(ProviderUnavailable):
        pay(provider(answer))


def test_provider_of_settings() -> None:
    settings = load_settings(payments={"simulator": {"host": "127.0.0.2", "port": 8999}})
    assert provider_of(settings).base_url == "http://127.0.0.2:8999"
    settings = load_settings(payments={"provider_url": "https://psp.example/api"})
    assert provider_of(settings).base_url == "https://psp.example/api/"


class LoopBridge(httpx.BaseTransport):
    """A sync transport into an ASGI app served by an event loop in another thread."""

    def __init__(self, app: FastAPI, loop: asyncio.AbstractEventLoop) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run_coroutine_threadsafe(send(), self._loop).result(timeout=5)


def test_a_round_trip_through_the_simulator(tmp_path: Path) -> None:
    settings = load_settings(
        stack={"state_dir": tmp_path}, payments={"simulator": {"confirm_delay_s": 0.01}}
    )
    hooks = httpx.MockTransport(lambda _: httpx.Response(200))
    app = create_simulator(
        settings, secrets=["whsec_1"], webhook_url="http://api/", transport=hooks
    )

    async def main() -> None:
        async with app.router.lifespan_context(app):
            client = HttpProvider(
                "http://sim", 2, transport=LoopBridge(app, asyncio.get_running_loop())
            )
            intent = await asyncio.to_thread(pay, client)
            assert intent.status == "processing"
            assert await asyncio.to_thread(pay, client) == intent  # the same key: the same answer
            await asyncio.sleep(0.05)  # confirmed
            refund = await asyncio.to_thread(
                client.refund, intent_id=intent.intent_id, reason="test", idempotency_key="r"
            )
            assert refund.status == "succeeded"
            with pytest.raises(ProviderRefused) as caught:
                await asyncio.to_thread(
                    client.refund, intent_id=intent.intent_id, reason="test", idempotency_key="r2"
                )
            assert caught.value.code == "charge_already_refunded"
            await asyncio.to_thread(client.close)

    asyncio.run(main())
