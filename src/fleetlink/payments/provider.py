"""The payment provider's interface, and its client over HTTP (Stripe's API conventions).

Every call carries an idempotency key: the caller derives it from the purchase, so a call
repeated after a crash or a timeout charges (or refunds) once, and gets the first answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import httpx
import msgspec

from fleetlink.errors import FleetlinkError
from fleetlink.settings import Settings

IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True, slots=True)
class PaymentIntent:
    intent_id: str
    status: str  # Stripe's: processing, succeeded, requires_payment_method, canceled, ...


@dataclass(frozen=True, slots=True)
class Refund:
    refund_id: str
    status: str  # pending, succeeded, failed


class ProviderUnavailable(FleetlinkError):  # noqa: N818 - a state, as the caller sees it
    """The provider could not be asked or did not answer (network, timeout, 5xx, 429, 409):
    ask again later with the same idempotency key."""


class ProviderRefused(FleetlinkError):  # noqa: N818
    """The provider answered no (4xx): asking again with the same key gets the same answer."""

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(f"payment provider refused ({status}, {code or 'no code'}): {message}")
        self.status = status
        self.code = code
        self.message = message


class PaymentProvider(Protocol):
    """What the purchase flow asks of a payment provider."""

    def create_payment(
        self, *, amount: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentIntent: ...

    def refund(self, *, intent_id: str, reason: str, idempotency_key: str) -> Refund: ...


class _Created(msgspec.Struct, frozen=True):
    id: str
    status: str


class _ErrorDetail(msgspec.Struct, frozen=True):
    code: str | None = None
    message: str | None = None
    type: str | None = None


class _ErrorBody(msgspec.Struct, frozen=True):
    error: _ErrorDetail


# 409: Stripe's answer while another request with the same key is still running; 429: too many
_TRY_AGAIN = frozenset({409, 429})


class HttpProvider:
    """``PaymentProvider`` over HTTP with JSON bodies (the simulator, or a compatible service).

    One ``httpx.Client``, safe to share between threads; ``transport`` is for tests.
    """

    def __init__(
        self, base_url: str, timeout_s: float, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        # httpx joins "/v1/..." under the base's path: "https://psp/api" asks "https://psp/api/v1"
        self._client = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    def create_payment(
        self, *, amount: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentIntent:
        body = {"amount": amount, "currency": currency, "metadata": metadata}
        created = self._post("/v1/payment_intents", body, idempotency_key)
        return PaymentIntent(intent_id=created.id, status=created.status)

    def refund(self, *, intent_id: str, reason: str, idempotency_key: str) -> Refund:
        body = {"payment_intent": intent_id, "reason": reason}
        created = self._post("/v1/refunds", body, idempotency_key)
        return Refund(refund_id=created.id, status=created.status)

    def _post(self, path: str, body: dict[str, Any], idempotency_key: str) -> _Created:
        try:
            response = self._client.post(
                path,
                content=msgspec.json.encode(body),
                headers={IDEMPOTENCY_HEADER: idempotency_key, "Content-Type": "application/json"},
            )
        except httpx.HTTPError as error:
            raise ProviderUnavailable(f"payment provider not reached: {error!r}") from error
        status = response.status_code
        if 200 <= status < 300:
            try:
                return msgspec.json.decode(response.content, type=_Created)
            except msgspec.DecodeError:
                # the request may have been done: only a retry with the same key can tell
                raise ProviderUnavailable(f"payment provider: unreadable reply to {path}") from None
        if 400 <= status < 500 and status not in _TRY_AGAIN:
            try:
                detail = msgspec.json.decode(response.content, type=_ErrorBody).error
            except msgspec.DecodeError:
                detail = _ErrorDetail(message=response.text[:500])
            raise ProviderRefused(status, detail.code, detail.message or "no message")
        raise ProviderUnavailable(f"payment provider answered {status} to {path}")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpProvider:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def provider_of(settings: Settings) -> HttpProvider:
    """The configured provider (``payments.provider_url``), else the local simulator."""
    payments = settings.payments
    sim = payments.simulator
    url = payments.provider_url or f"http://{sim.host}:{sim.port}"
    return HttpProvider(url, payments.provider_timeout_s)
