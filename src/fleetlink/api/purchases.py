"""Features on demand over HTTP: the catalogue, what a car has and can buy, purchases, and the
payment provider's webhook.

A purchase is checked before any money moves (the owner's car, known, the feature made for its
model and firmware, not owned or being bought already), then charged at the provider under a
key derived from the purchase id, then written to ``fleet.payments``: a client that retries
after any failure names the same purchase, and the provider the same charge. The purchase
processor does the rest (entitlement, activation, refund); the purchase is read back from
``fleet.purchases``.

``POST /v1/payments/webhook`` carries no bearer token: the provider's signature over the raw
body is its authentication. A bad signature, a changed body or a stale timestamp is refused
with 400 and nothing is stored; an event that passes is answered 200 once it is in Kafka.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from fleetlink.adapters.kafka.seams import RecordSink
from fleetlink.api.auth import Caller, require_vehicle
from fleetlink.api.bodies import ApiBody
from fleetlink.api.commands import commands_state
from fleetlink.api.errors import (
    AUTHENTICATED,
    WITH_BODY,
    ApiError,
    VinPath,
    documented,
    read_when_ready,
)
from fleetlink.contracts import headers
from fleetlink.contracts.codec import UndecodableError, encode
from fleetlink.contracts.models import AuditEvent, Presence
from fleetlink.contracts.purchases import (
    Feature,
    FeatureKind,
    Purchase,
    PurchaseRequested,
    PurchaseState,
    incompatibility,
    pending_purchase,
    provider_key,
    purchase_id_for,
)
from fleetlink.payments.events import read_provider_event
from fleetlink.payments.provider import PaymentProvider, ProviderRefused, ProviderUnavailable
from fleetlink.payments.signature import SIGNATURE_HEADER, SignatureInvalid, verify
from fleetlink.purchases.read_model import PurchaseReadModel
from fleetlink.security.access import Principal
from fleetlink.security.users import UserRole

router = APIRouter(prefix="/v1", tags=["features on demand"])

PurchaseIdPath = Annotated[
    str,
    Path(min_length=1, max_length=64, description="a purchase's id, as POST answered it"),
]


@dataclass
class PurchasesState:
    view: PurchaseReadModel
    provider: PaymentProvider
    catalogue: dict[str, Feature]
    payments_topic: str
    dlq_topic: str
    webhook_secrets: list[str]
    tolerance_s: int
    retry_after_s: int
    deliveries: RecordSink | None = field(default=None)

    async def write(
        self, topic: str, key: str | None, value: bytes, extra: list[tuple[str, bytes]]
    ) -> None:
        assert self.deliveries is not None
        await self.deliveries.produce(topic, value, None if key is None else key.encode(), extra)


class PurchaseRequest(ApiBody):
    feature: str = Field(min_length=1, max_length=64, description="a feature of the catalogue")
    idempotency_key: str = Field(
        min_length=1,
        max_length=128,
        description="the same key again names the same purchase: retry safely",
    )


def purchases_state(request: Request) -> PurchasesState:
    state: PurchasesState = request.app.state.purchases
    return state


def _ready(request: Request) -> PurchaseReadModel:
    return read_when_ready(purchases_state(request).view, "the purchases")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def feature_json(feature: Feature) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(feature)
    body.setdefault("trial_days", 0)
    return body


def purchase_json(purchase: Purchase) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(purchase)
    body.pop("events", None)  # the provider's event ids: bookkeeping, not the client's
    defaults: dict[str, Any] = {"charged": False, "period": 1, "cancel_at_period_end": False}
    defaults |= {"trial": False, "refunds_due": []}
    return defaults | body


@router.get(
    "/features",
    summary="The catalogue: every feature, its price and the cars it fits",
    responses=documented(*AUTHENTICATED),
)
async def list_features(request: Request, caller: Caller) -> JSONResponse:
    features = purchases_state(request).catalogue.values()
    return JSONResponse({"features": [feature_json(f) for f in features]})


def _presence(request: Request, vin: str) -> Presence | None:
    return commands_state(request).view.presence_of(vin)


_BEING_BOUGHT = (PurchaseState.PENDING_PAYMENT, PurchaseState.ACTIVATING)


def _why_not(request: Request, vin: str, feature: Feature) -> tuple[str, str] | None:
    """Why this car cannot buy ``feature`` now (error code, detail), or None."""
    presence = _presence(request, vin)
    model, firmware = (presence.model, presence.firmware) if presence else (None, None)
    reason = incompatibility(feature, model, firmware)
    if reason is not None:
        return "incompatible", reason
    view = _ready(request)
    held = view.entitlement(vin, feature.id)
    if held is not None and held.active:
        return "already-entitled", f"{vin} has {feature.id} already"
    for purchase in view.purchases_of(vin):
        if purchase.feature == feature.id and purchase.state in _BEING_BOUGHT:
            return "purchase-open", f"purchase {purchase.purchase_id} of it is {purchase.state}"
    return None


@router.get(
    "/vehicles/{vin}/features",
    summary="What a vehicle has, and what it can buy (and why not)",
    responses=documented(*AUTHENTICATED, 404, 503),
)
async def vehicle_features(request: Request, vin: VinPath, caller: Caller) -> JSONResponse:
    require_vehicle(caller, vin)
    if _presence(request, vin) is None:
        raise ApiError(404, "unknown-vehicle", f"vehicle {vin} has never connected")
    view = _ready(request)
    features = []
    for feature in purchases_state(request).catalogue.values():
        held = view.entitlement(vin, feature.id)
        refusal = _why_not(request, vin, feature)
        features.append(
            {
                **feature_json(feature),
                "has": held is not None and held.active,
                "entitlement": None if held is None else msgspec.to_builtins(held),
                "can_buy": refusal is None,
                "why_not": None if refusal is None else {"error": refusal[0], "detail": refusal[1]},
            }
        )
    return JSONResponse({"vin": vin, "features": features})


def _refuse(status: int, error: str, detail: str, **extra: Any) -> ApiError:
    return ApiError(status, error, detail, **extra)


@router.post(
    "/vehicles/{vin}/purchases",
    status_code=201,
    summary="Buy a feature for your car: charged once, turned on over the air, or refunded",
    responses=documented(*AUTHENTICATED, *WITH_BODY, 404, 409, 503),
)
async def create_purchase(
    request: Request, vin: VinPath, body: PurchaseRequest, caller: Caller
) -> JSONResponse:
    """201: charged at the provider and recorded, ``pending-payment`` until the provider
    confirms. 200: the same idempotency key and body again (the first purchase). 409: the key
    was used for another feature, or the car has it or is buying it. 422: the feature does not
    fit the car (nothing is charged)."""
    state = purchases_state(request)
    if not caller.owns(vin):
        raise _refuse(403, "forbidden", f"only {vin}'s owner buys features for it")
    if _presence(request, vin) is None:
        raise _refuse(404, "unknown-vehicle", f"vehicle {vin} has never connected")
    view = _ready(request)
    purchase_id = purchase_id_for(caller.name, vin, body.idempotency_key)
    known = view.purchase(purchase_id)
    if known is not None:
        if known.feature != body.feature:
            raise _refuse(
                409,
                "idempotency-conflict",
                "this idempotency key was used for another feature",
                purchase_id=purchase_id,
            )
        return JSONResponse(purchase_json(known))
    feature = state.catalogue.get(body.feature)
    if feature is None:
        raise _refuse(
            422, "unknown-feature", f"no feature {body.feature!r}", known=sorted(state.catalogue)
        )
    refusal = _why_not(request, vin, feature)
    if refusal is not None:
        error, detail = refusal
        raise _refuse(422 if error == "incompatible" else 409, error, detail)
    return await _charge_and_record(request, state, caller, vin, feature, body, purchase_id)


async def _charge_and_record(
    request: Request,
    state: PurchasesState,
    caller: Principal,
    vin: str,
    feature: Feature,
    body: PurchaseRequest,
    purchase_id: str,
) -> JSONResponse:
    trial_days = feature.trial_days if _trial_open(request, vin, feature) else 0
    intent_id = None
    if not trial_days:  # a free trial charges nothing now: its first charge is a renewal
        intent_id = await _charge(state, caller, vin, feature, purchase_id)
    now = _now_ms()
    requested = PurchaseRequested(
        purchase_id=purchase_id,
        vin=vin,
        feature=feature.id,
        owner=caller.name,
        amount=feature.price,
        currency=feature.currency,
        kind=feature.kind,
        requested_at=now,
        intent_id=intent_id,
        idempotency_key=body.idempotency_key,
        period_days=feature.period_days,
        trial_days=trial_days,
    )
    await state.write(state.payments_topic, purchase_id, encode(requested), [])
    await commands_state(request).audit(
        AuditEvent(now, vin, caller.name, "feature.purchased", detail=f"{feature.id} {purchase_id}")
    )
    asked = pending_purchase(requested)
    state.view.asked(asked)
    return JSONResponse(
        purchase_json(asked),
        status_code=201,
        headers={"Location": f"/v1/purchases/{purchase_id}"},
    )


def _trial_open(request: Request, vin: str, feature: Feature) -> bool:
    """A subscription with a trial, never tried on this car (by any owner)."""
    if feature.kind is not FeatureKind.SUBSCRIPTION or not feature.trial_days:
        return False
    earlier = _ready(request).purchases_of(vin)
    return not any(p.feature == feature.id and p.trial for p in earlier)


async def _charge(
    state: PurchasesState, caller: Principal, vin: str, feature: Feature, purchase_id: str
) -> str:
    """The provider's payment for a purchase (the same key every time): its intent id."""
    metadata = {"purchase_id": purchase_id, "vin": vin, "feature": feature.id}
    metadata["owner"] = caller.name
    try:
        intent = await asyncio.to_thread(
            state.provider.create_payment,
            amount=feature.price,
            currency=feature.currency,
            metadata=metadata,
            idempotency_key=provider_key(purchase_id, "charge"),
        )
    except ProviderUnavailable as error:
        raise ApiError(
            503,
            "provider-unavailable",
            f"the payment provider did not answer ({error}); retry with the same key",
            {"Retry-After": str(state.retry_after_s)},
        ) from None
    except ProviderRefused as refused:
        status = 409 if refused.status == 400 else 422
        raise ApiError(status, "payment-refused", refused.message) from None
    return intent.intent_id


def _readable(caller: Principal, purchase: Purchase) -> bool:
    return caller.may_read_vehicle(purchase.vin) or purchase.owner == caller.name


def readable_purchase(request: Request, purchase_id: str, caller: Principal) -> Purchase:
    """The purchase, if the caller may see it; 404 otherwise (its existence is not told)."""
    purchase = _ready(request).purchase(purchase_id)
    if purchase is None or not _readable(caller, purchase):
        raise ApiError(404, "unknown-purchase", f"no purchase {purchase_id}")
    return purchase


@router.get(
    "/purchases/{purchase_id}",
    summary="A purchase in its latest state, with every step it took",
    responses=documented(*AUTHENTICATED, 404, 503),
)
async def get_purchase(
    request: Request, purchase_id: PurchaseIdPath, caller: Caller
) -> JSONResponse:
    return JSONResponse(purchase_json(readable_purchase(request, purchase_id, caller)))


@router.get(
    "/vehicles/{vin}/purchases",
    summary="A vehicle's purchases, oldest first",
    responses=documented(*AUTHENTICATED, 503),
)
async def vehicle_purchases(request: Request, vin: VinPath, caller: Caller) -> JSONResponse:
    require_vehicle(caller, vin)
    purchases = _ready(request).purchases_of(vin)
    if caller.role is UserRole.OWNER:  # a car's earlier owner's purchases are theirs
        purchases = [p for p in purchases if p.owner == caller.name or p.kind == "one-time"]
    return JSONResponse({"vin": vin, "purchases": [purchase_json(p) for p in purchases]})


@router.post(
    "/payments/webhook",
    summary="The payment provider's events (signed; no bearer token)",
    responses=documented(400, 413, 503),
    openapi_extra={"security": []},
)
async def payment_webhook(request: Request) -> JSONResponse:
    """Authenticated by its ``Stripe-Signature`` (HMAC-SHA256 over the raw body with the shared
    secret, a timestamp within ``payments.tolerance_s``). 200 once the event is in Kafka: on
    ``fleet.payments``, or on the dead-letter topic with the reason when it is signed but not
    an event the purchase flow can read."""
    state = purchases_state(request)
    raw = await request.body()
    try:
        verify(
            raw,
            request.headers.get(SIGNATURE_HEADER),
            state.webhook_secrets,
            now_s=time.time(),
            tolerance_s=state.tolerance_s,
        )
    except SignatureInvalid as invalid:
        raise ApiError(400, "bad-signature", str(invalid)) from None
    try:
        event = read_provider_event(raw, _now_ms())
    except UndecodableError as unreadable:
        dead = [
            (headers.DLQ_REASON, unreadable.reason.value.encode()),
            (headers.DLQ_DETAIL, unreadable.detail[:512].encode(errors="replace")),
            (headers.SOURCE, b"payment-webhook"),
        ]
        await state.write(state.dlq_topic, None, raw, dead)
        return JSONResponse({"received": True, "stored": "dead-letter"})
    await state.write(state.payments_topic, event.purchase_id, encode(event), [])
    return JSONResponse({"received": True, "event_id": event.event_id})
