"""Subscriptions and ownership over HTTP: an owner cancels a subscription (it runs to the end of
the period paid), a fleet admin records that a car changed hands (the previous owner's
subscriptions of it end now; one-time purchases stay with the car)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from fleetlink.api.auth import Caller
from fleetlink.api.bodies import ApiBody
from fleetlink.api.commands import commands_state
from fleetlink.api.errors import AUTHENTICATED, WITH_BODY, ApiError, VinPath, documented
from fleetlink.api.purchases import (
    PurchaseIdPath,
    purchase_json,
    purchases_state,
    readable_purchase,
)
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import AuditEvent
from fleetlink.contracts.purchases import (
    FeatureKind,
    OwnerChanged,
    PurchaseState,
    SubscriptionCancelled,
)
from fleetlink.security.users import User, UserError, UserRole

router = APIRouter(prefix="/v1", tags=["features on demand"])


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@router.post(
    "/purchases/{purchase_id}/cancel",
    status_code=202,
    summary="Cancel a subscription: it runs to the end of the period paid, then stops",
    responses=documented(*AUTHENTICATED, 404, 409, 503),
)
async def cancel_subscription(
    request: Request, purchase_id: PurchaseIdPath, caller: Caller
) -> JSONResponse:
    """202: in Kafka; the processor stops renewing, and ends it with the period paid. 409: not
    a subscription, not running, or cancelled already."""
    purchase = readable_purchase(request, purchase_id, caller)
    if not (caller.role is UserRole.FLEET_ADMIN or purchase.owner == caller.name):
        raise ApiError(403, "forbidden", "only the subscriber or a fleet admin cancels it")
    if purchase.kind is not FeatureKind.SUBSCRIPTION:
        raise ApiError(409, "not-a-subscription", f"{purchase.feature} was bought once")
    running = (PurchaseState.ACTIVATING, PurchaseState.COMPLETED)
    if purchase.state not in running or purchase.cancel_at_period_end:
        detail = "cancelled already" if purchase.cancel_at_period_end else str(purchase.state)
        raise ApiError(409, "not-cancellable", f"subscription {purchase_id}: {detail}")
    state = purchases_state(request)
    now = _now_ms()
    cancel = SubscriptionCancelled(purchase_id=purchase_id, by=caller.name, ts=now)
    await state.write(state.payments_topic, purchase_id, encode(cancel), [])
    await commands_state(request).audit(
        AuditEvent(now, purchase.vin, caller.name, "subscription.cancelled", detail=purchase_id)
    )
    body: dict[str, Any] = purchase_json(purchase) | {"cancel_requested": True}
    return JSONResponse(body, status_code=202)


class OwnerRequest(ApiBody):
    owner: str = Field(min_length=1, max_length=128, description="a registered owner")


@router.post(
    "/vehicles/{vin}/owner",
    summary="A car changed hands (fleet admins): subscriptions end, one-time purchases stay",
    responses=documented(*AUTHENTICATED, *WITH_BODY, 404, 503),
)
async def change_owner(
    request: Request, vin: VinPath, body: OwnerRequest, caller: Caller
) -> JSONResponse:
    if caller.role is not UserRole.FLEET_ADMIN:
        raise ApiError(403, "forbidden", "only a fleet admin records a change of owner")
    users = request.app.state.guard.users
    new = users.get(body.owner)
    if new is None or new.role is not UserRole.OWNER:
        raise ApiError(422, "not-an-owner", f"{body.owner!r} is no registered owner")
    if commands_state(request).view.presence_of(vin) is None:
        raise ApiError(404, "unknown-vehicle", f"vehicle {vin} has never connected")
    previous = next((u for u in users.all() if u.role is UserRole.OWNER and vin in u.vins), None)
    if previous is not None and previous.name == new.name:
        return JSONResponse({"vin": vin, "owner": new.name, "previous": new.name})
    state = purchases_state(request)
    now = _now_ms()
    if previous is not None:  # first in Kafka: the subscriptions end even if the file fails
        sale = OwnerChanged(vin=vin, previous=previous.name, owner=new.name, ts=now, by=caller.name)
        await state.write(state.payments_topic, vin, encode(sale), [])
    try:
        if previous is not None:
            left = [v for v in previous.vins if v != vin]
            users.put(User(previous.name, previous.role, vins=left, disabled=previous.disabled))
        users.put(User(new.name, new.role, vins=sorted({*new.vins, vin}), disabled=new.disabled))
    except UserError as error:
        raise ApiError(422, "invalid-user", str(error)) from None
    detail = f"{previous.name if previous else '-'} -> {new.name}"
    await commands_state(request).audit(
        AuditEvent(now, vin, caller.name, "owner.changed", detail=detail)
    )
    return JSONResponse(
        {"vin": vin, "owner": new.name, "previous": previous.name if previous else None}
    )
