"""The provider's webhook events (Stripe's shapes) read into ``ProviderEvent`` records.

Total: any body becomes a ``ProviderEvent`` or raises ``UndecodableError``. Only the fields
fleetlink uses are declared; the rest of Stripe's objects is ignored.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from fleetlink.contracts.codec import DlqReason, UndecodableError, decode
from fleetlink.contracts.purchases import ProviderEvent, ProviderEventType

_REASON_MAX: Final = 256  # ProviderEvent.reason's bound: a longer text is cut, not refused


class _Data(msgspec.Struct, frozen=True):
    object: msgspec.Raw  # read once its kind is known


class _Event(msgspec.Struct, frozen=True):
    id: str
    type: str
    created: int
    data: _Data


class _Kind(msgspec.Struct, frozen=True):
    object: str


class _PaymentError(msgspec.Struct, frozen=True):
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None


class _PaymentIntent(msgspec.Struct, frozen=True):
    id: str
    amount: int = 0
    currency: str | None = None
    status: str | None = None
    metadata: dict[str, str] = {}
    last_payment_error: _PaymentError | None = None


class _Refund(msgspec.Struct, frozen=True):
    reason: str | None = None
    metadata: dict[str, str] = {}


class _Refunds(msgspec.Struct, frozen=True):
    data: list[_Refund] = []


class _Charge(msgspec.Struct, frozen=True):
    id: str
    payment_intent: str | None = None
    amount: int = 0
    amount_refunded: int = 0
    currency: str | None = None
    metadata: dict[str, str] = {}
    refunds: _Refunds | None = None


class _Dispute(msgspec.Struct, frozen=True):
    id: str
    payment_intent: str | None = None
    charge: str | None = None
    amount: int = 0
    currency: str | None = None
    reason: str | None = None
    metadata: dict[str, str] = {}


_StripeObject = _PaymentIntent | _Charge | _Dispute
_OBJECTS: Final[dict[str, type[_StripeObject]]] = {
    "payment_intent": _PaymentIntent,
    "charge": _Charge,
    "dispute": _Dispute,
}


def _intent_of(obj: _StripeObject) -> str | None:
    return obj.id if isinstance(obj, _PaymentIntent) else obj.payment_intent


def _reason_of(obj: _StripeObject) -> str | None:
    if isinstance(obj, _PaymentIntent):
        error = obj.last_payment_error
        return None if error is None else (error.decline_code or error.code)
    if isinstance(obj, _Charge):
        if obj.refunds is None or not obj.refunds.data:
            return None
        latest = obj.refunds.data[0]  # Stripe lists a charge's refunds newest first
        return latest.metadata.get("fleetlink_reason") or latest.reason
    return obj.reason


def _amount_of(event_type: str, obj: _StripeObject) -> int:
    # a refund event carries the money returned, every other one the money asked
    if isinstance(obj, _Charge) and event_type == ProviderEventType.CHARGE_REFUNDED:
        return obj.amount_refunded
    return obj.amount


def _name(event: _Event) -> str:
    # for error details: the sender chose these strings, keep them short
    return f"{event.type[:64]} {event.id[:64]}"


def read_provider_event(body: bytes, received_at: int) -> ProviderEvent:
    """The record of one webhook body (its signature checked before); raises only
    ``UndecodableError``."""
    event = decode(_Event, body)
    raw = bytes(event.data.object)
    kind = decode(_Kind, raw).object
    model = _OBJECTS.get(kind)
    if model is None:
        detail = f"{_name(event)}: a {kind[:32]!r} object names no purchase"
        raise UndecodableError(DlqReason.SCHEMA, detail)
    obj: _StripeObject = decode(model, raw)
    purchase_id = obj.metadata.get("purchase_id")
    intent_id = _intent_of(obj)
    if not purchase_id or not intent_id:
        raise UndecodableError(DlqReason.SCHEMA, f"{_name(event)} names no purchase")
    reason = _reason_of(obj)
    period = obj.metadata.get("period")
    if period is not None and not (period.isdigit() and len(period) <= 6):
        raise UndecodableError(DlqReason.SCHEMA, f"{_name(event)}: period {period[:12]!r}")
    fields: dict[str, Any] = {
        "event_id": event.id,
        "type": event.type,
        "created": event.created,
        "purchase_id": purchase_id,
        "intent_id": intent_id,
        "received_at": received_at,
        "amount": _amount_of(event.type, obj),
        "currency": obj.currency,
        "vin": obj.metadata.get("vin"),
        "feature": obj.metadata.get("feature"),
        "owner": obj.metadata.get("owner"),
        "reason": None if reason is None else reason[:_REASON_MAX],
        "period": None if period is None else int(period),
    }
    try:
        # convert, not the constructor: it checks the record's bounds (VIN, currency, lengths)
        return msgspec.convert(fields, ProviderEvent)
    except msgspec.ValidationError as error:
        raise UndecodableError(DlqReason.SCHEMA, f"{_name(event)}: {error}") from None
