"""Features on demand: the catalogue's entries, the records of ``fleet.payments``,
``fleet.purchases`` and ``fleet.entitlements``, and the ids derived from a purchase.

A purchase id is derived from who asked, for which car, under which idempotency key, so a
retried request names the same purchase; the payment provider's idempotency keys, the
activation command's id and the refund's key are derived from the purchase id in turn, so no
crash between two writes can charge, activate or refund twice.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from fleetlink.contracts.models import EpochMillis, Vin

FEATURE_ID: Final = r"^[a-z0-9][a-z0-9._-]{0,63}$"
FIRMWARE: Final = r"^\d{1,6}(\.\d{1,6}){0,3}$"
_FIRMWARE = re.compile(FIRMWARE)

FeatureId = Annotated[str, Meta(pattern=FEATURE_ID)]
PurchaseId = Annotated[str, Meta(min_length=1, max_length=64)]
Currency = Annotated[str, Meta(pattern=r"^[a-z]{3}$")]  # ISO 4217, lower case as providers use

# purchases, and everything derived from them, live in UUID namespaces of their own
PURCHASE_NAMESPACE: Final = uuid.UUID("0b6f3c52-54a5-4d8f-a1b2-6a9e4c2f7d10")


class FeatureKind(StrEnum):
    ONE_TIME = "one-time"  # bought once, stays with the car (and its next owner)
    SUBSCRIPTION = "subscription"  # paid per period, ends with the owner's subscription


class Feature(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One entry of the catalogue: what it costs and which cars it fits."""

    id: FeatureId
    name: Annotated[str, Meta(min_length=1, max_length=128)]
    price: Annotated[int, Meta(ge=0)]  # in the currency's minor unit (cents)
    currency: Currency
    kind: FeatureKind
    models: Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]], Meta(min_length=1)]
    min_firmware: Annotated[str, Meta(pattern=FIRMWARE)]
    period_days: Annotated[int, Meta(ge=1, le=3660)] | None = None  # subscriptions only
    trial_days: Annotated[int, Meta(ge=0, le=366)] = 0


def firmware_key(version: str) -> tuple[int, ...]:
    """A firmware version as numbers, for ordering ("2026.9" before "2026.10")."""
    if not _FIRMWARE.fullmatch(version):
        raise ValueError(f"{version!r} is not a firmware version (numbers and dots)")
    return tuple(int(part) for part in version.split("."))


def incompatibility(feature: Feature, model: str | None, firmware: str | None) -> str | None:
    """Why ``feature`` does not fit a car of this model and firmware, or None when it does."""
    if model is None or firmware is None:
        return "the vehicle has not reported its model and firmware yet"
    if model not in feature.models:
        return f"{feature.id} is not made for the {model} (only {', '.join(feature.models)})"
    try:
        too_old = firmware_key(firmware) < firmware_key(feature.min_firmware)
    except ValueError:
        return f"the vehicle reports firmware {firmware!r}, which is not a version"
    if too_old:
        return (
            f"{feature.id} needs firmware {feature.min_firmware} or later; the car has {firmware}"
        )
    return None


# fleet.payments ---------------------------------------------------------------------------------


class PurchaseRequested(
    msgspec.Struct, frozen=True, tag="requested", tag_field="record", omit_defaults=True
):
    """The API's record of a purchase it asked the provider to charge."""

    purchase_id: PurchaseId
    vin: Vin
    feature: FeatureId
    owner: Annotated[str, Meta(max_length=128)]
    amount: Annotated[int, Meta(ge=0)]
    currency: Currency
    kind: FeatureKind
    requested_at: EpochMillis
    intent_id: Annotated[str, Meta(max_length=128)] | None = None
    idempotency_key: Annotated[str, Meta(max_length=255)] | None = None
    period_days: int | None = None
    trial_days: Annotated[int, Meta(ge=0, le=366)] = 0  # free first; nothing charged now


class ProviderEvent(
    msgspec.Struct, frozen=True, tag="provider", tag_field="record", omit_defaults=True
):
    """An event of the payment provider, as received by the webhook (signature checked)."""

    event_id: Annotated[str, Meta(min_length=1, max_length=255)]
    type: Annotated[str, Meta(max_length=128)]
    created: Annotated[int, Meta(ge=0)]  # the provider's clock, epoch seconds
    purchase_id: PurchaseId
    intent_id: Annotated[str, Meta(max_length=128)]
    received_at: EpochMillis
    amount: Annotated[int, Meta(ge=0)] = 0
    currency: Currency | None = None
    vin: Vin | None = None
    feature: FeatureId | None = None
    owner: Annotated[str, Meta(max_length=128)] | None = None
    reason: Annotated[str, Meta(max_length=256)] | None = None  # decline or refund reason
    period: Annotated[int, Meta(ge=1, le=100_000)] | None = None  # a subscription's renewal


class SubscriptionCancelled(msgspec.Struct, frozen=True, tag="cancelled", tag_field="record"):
    """The owner ends a subscription: it runs to the end of the period paid, then stops."""

    purchase_id: PurchaseId
    by: Annotated[str, Meta(max_length=128)]
    ts: EpochMillis


class OwnerChanged(msgspec.Struct, frozen=True, tag="owner-changed", tag_field="record"):
    """A car changed hands: the previous owner's subscriptions of it end now; one-time
    purchases stay with the car."""

    vin: Vin
    previous: Annotated[str, Meta(max_length=128)]
    owner: Annotated[str, Meta(max_length=128)]
    ts: EpochMillis
    by: Annotated[str, Meta(max_length=128)] = ""


PaymentRecord = PurchaseRequested | ProviderEvent | SubscriptionCancelled | OwnerChanged


class ProviderEventType(StrEnum):
    """The provider events the purchase flow acts on (Stripe's names); others are kept only."""

    PAYMENT_SUCCEEDED = "payment_intent.succeeded"
    PAYMENT_FAILED = "payment_intent.payment_failed"
    PAYMENT_CANCELED = "payment_intent.canceled"
    CHARGE_REFUNDED = "charge.refunded"
    DISPUTE_CREATED = "charge.dispute.created"


# fleet.purchases ---------------------------------------------------------------------------


class PurchaseState(StrEnum):
    PENDING_PAYMENT = "pending-payment"  # asked; the provider has not said it is paid
    ACTIVATING = "activating"  # paid and entitled; the car is told to turn it on
    COMPLETED = "completed"  # the car reported the feature active (terminal)
    REFUNDING = "refunding"  # paid, but it cannot be delivered: the money goes back
    REFUNDED = "refunded"  # the provider returned the money (terminal)
    FAILED = "failed"  # never paid: declined or cancelled (terminal unless paid later)
    ENDED = "ended"  # a subscription over after it was delivered: cancelled, lapsed, sold


TERMINAL_STATES: Final = frozenset(
    {PurchaseState.COMPLETED, PurchaseState.REFUNDED, PurchaseState.FAILED}
)


class PurchaseStep(msgspec.Struct, frozen=True, omit_defaults=True):
    state: PurchaseState
    ts: EpochMillis
    reason: str | None = None


class Purchase(msgspec.Struct, frozen=True, omit_defaults=True):
    """``fleet.purchases`` (compacted, key purchase id): a purchase and every step it took.

    ``events`` holds the provider event ids already applied: a webhook delivered again is
    recognised by it, whenever it comes.
    """

    purchase_id: PurchaseId
    vin: Vin
    feature: FeatureId
    owner: str
    amount: int
    currency: str
    kind: FeatureKind
    state: PurchaseState
    created_at: EpochMillis
    updated_at: EpochMillis
    history: list[PurchaseStep]
    intent_id: str | None = None
    reason: str | None = None
    events: list[str] = []
    charged: bool = False  # the provider took the money
    activation_id: str | None = None  # the feature.activate command sent for it
    activate_by: EpochMillis | None = None  # not on by then: the money goes back
    period_days: int | None = None
    # subscriptions: the period paid (1: the purchase), the renewal being charged, the end
    period: int = 1
    renewing: int | None = None
    paid_until: EpochMillis | None = None
    cancel_at_period_end: bool = False
    refunds_due: list[str] = []  # payments (intent ids) beside the first to give back
    trial: bool = False  # began with a free trial: period 0, the first charge a renewal

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


# fleet.entitlements -----------------------------------------------------------------------


class Entitlement(msgspec.Struct, frozen=True, omit_defaults=True):
    """``fleet.entitlements`` (compacted, key ``{vin}/{feature}``): what a car may use.

    ``version`` rises with every change of a key; the commands that turn the feature on or off
    on the car are named after it (``activation_command_id``), so they are sent once each.
    """

    vin: Vin
    feature: FeatureId
    active: bool
    purchase_id: PurchaseId
    version: Annotated[int, Meta(ge=1)]
    ts: EpochMillis
    until: EpochMillis | None = None  # a subscription's paid period ends here
    reason: str | None = None
    owner: str | None = None
    activated: bool = False  # an activation was ever sent under this key (off means: turn off)

    @property
    def key(self) -> str:
        return entitlement_key(self.vin, self.feature)


def entitlement_key(vin: str, feature: str) -> str:
    return f"{vin}/{feature}"


def purchase_id_for(owner: str, vin: str, idempotency_key: str) -> str:
    """The purchase an owner's idempotency key names for one car."""
    return str(uuid.uuid5(PURCHASE_NAMESPACE, f"{owner}/{vin}/{idempotency_key}"))


def provider_key(purchase_id: str, action: str) -> str:
    """The provider's idempotency key of one action (``charge``, ``refund``) of a purchase."""
    return f"fleetlink-{action}-{purchase_id}"


def feature_command_id(entitlement: Entitlement) -> str:
    """The command that brings the car to this version of its entitlement (on or off)."""
    action = "activate" if entitlement.active else "deactivate"
    name = f"{entitlement.key}/{entitlement.purchase_id}/{entitlement.version}/{action}"
    return str(uuid.uuid5(PURCHASE_NAMESPACE, name))


def pending_purchase(request: PurchaseRequested) -> Purchase:
    """The purchase as it stands once asked for: waiting for the provider's word."""
    asked_at = request.requested_at
    return Purchase(
        purchase_id=request.purchase_id,
        vin=request.vin,
        feature=request.feature,
        owner=request.owner,
        amount=request.amount,
        currency=request.currency,
        kind=request.kind,
        state=PurchaseState.PENDING_PAYMENT,
        created_at=asked_at,
        updated_at=asked_at,
        history=[PurchaseStep(PurchaseState.PENDING_PAYMENT, asked_at)],
        intent_id=request.intent_id,
        period_days=request.period_days,
        trial=request.trial_days > 0,
    )
