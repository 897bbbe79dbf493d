"""The purchase lifecycle, pure: what each input does to purchases and entitlements.

Inputs come in any order and any number of times: the API's request, the provider's events
(deduplicated on their id, for ever, in the purchase itself), the activation command's
lifecycle and the car's ``feature-state`` event. Every rule only moves a purchase forward, so
a late or repeated input changes nothing; money comes back for every purchase that was paid
and cannot be delivered, and an entitlement ends whenever its money goes back.

    pending-payment -> activating -> completed
          |                |
          v                v
        failed         refunding -> refunded   (a refund or chargeback: from any state)
"""

from __future__ import annotations

from collections.abc import Mapping

from fleetlink.contracts.models import CommandState, Transition
from fleetlink.contracts.purchases import (
    Entitlement,
    Feature,
    FeatureKind,
    OwnerChanged,
    ProviderEvent,
    ProviderEventType,
    Purchase,
    PurchaseRequested,
    PurchaseState,
    PurchaseStep,
    SubscriptionCancelled,
    entitlement_key,
    feature_command_id,
    pending_purchase,
)
from fleetlink.purchases.outcome import Outcome, advance, changed, ended
from fleetlink.purchases.subscriptions import Subscriptions

DAY_MS = 86_400_000
_P = PurchaseState


class UnroutableEventError(ValueError):
    """A provider event for a purchase never seen that names no car or feature."""


class PurchaseBook:
    """Every purchase and entitlement, as the processor's outputs hold them."""

    def __init__(
        self,
        catalogue: Mapping[str, Feature],
        *,
        activation_ttl_ms: int,
        grace_ms: int = 0,
        day_ms: int = DAY_MS,
        renew_ahead_ms: int = DAY_MS,
        payment_timeout_ms: int = DAY_MS,
    ) -> None:
        self.catalogue = dict(catalogue)
        self.activation_ttl_ms = activation_ttl_ms
        self.grace_ms = grace_ms  # the tracker's own word on an expired command comes first
        self.day_ms = day_ms
        self.payment_timeout_ms = payment_timeout_ms
        self._unpaid: set[str] = set()
        self.purchases: dict[str, Purchase] = {}
        self.entitlements: dict[str, Entitlement] = {}
        self._by_command: dict[str, str] = {}  # activation command id -> purchase id
        self._activating: set[str] = set()
        self.subscribed: set[str] = set()  # subscriptions delivered or being delivered
        self.subscriptions = Subscriptions(self, renew_ahead_ms)

    # restore ------------------------------------------------------------------------------------

    def restore(self, purchase: Purchase) -> None:
        self._store(purchase)

    def restore_entitlement(self, entitlement: Entitlement) -> None:
        self.entitlements[entitlement.key] = entitlement

    def activation_known(self, command_id: str) -> bool:
        """Whether ``command_id`` turns on a feature some purchase paid for."""
        return command_id in self._by_command

    # inputs -------------------------------------------------------------------------------------

    def requested(self, request: PurchaseRequested, now_ms: int) -> Outcome:
        if request.purchase_id in self.purchases:
            return Outcome()
        purchase = pending_purchase(request)
        if request.trial_days and request.period_days is not None:
            # a free trial: entitled now for the trial's days; its first charge is a renewal
            trial = changed(purchase, period=0, reason="free trial")
            return self._entitle(trial, now_ms, request.trial_days * self.day_ms, "free trial")
        return self.emit(purchase)

    def provider(self, event: ProviderEvent, now_ms: int) -> Outcome:
        """A provider event: applied once per event id, whenever it comes."""
        purchase = self.purchases.get(event.purchase_id) or self._from_event(event, now_ms)
        if event.event_id in purchase.events:
            return Outcome()
        purchase = changed(purchase, events=[*purchase.events, event.event_id])
        kind = event.type
        if event.period is not None:  # a renewal's payment, not the purchase's
            return self.subscriptions.renewal_event(purchase, event, now_ms)
        purchase = changed(purchase, intent_id=purchase.intent_id or event.intent_id)
        if kind == ProviderEventType.PAYMENT_SUCCEEDED:
            return self._paid(changed(purchase, charged=True), now_ms)
        if kind in (ProviderEventType.PAYMENT_FAILED, ProviderEventType.PAYMENT_CANCELED):
            if purchase.state is _P.PENDING_PAYMENT:
                why = f"payment {'declined' if kind.endswith('failed') else 'cancelled'}"
                reason = f"{why}: {event.reason}" if event.reason else why
                return self.emit(advance(purchase, _P.FAILED, now_ms, reason))
            return self.emit(purchase)
        if kind in (ProviderEventType.CHARGE_REFUNDED, ProviderEventType.DISPUTE_CREATED):
            dispute = kind == ProviderEventType.DISPUTE_CREATED
            reason = ("chargeback" if dispute else "refunded") + (
                f": {event.reason}" if event.reason else ""
            )
            if purchase.state is _P.REFUNDED:
                return self.emit(purchase)
            outcome = self.revoke(purchase, now_ms, reason)
            refunded = advance(changed(purchase, charged=True), _P.REFUNDED, now_ms, reason)
            outcome.extend(self.emit(refunded))
            return outcome
        return self.emit(purchase)  # kept: its id is not applied twice

    def command_status(self, step: Transition, now_ms: int) -> Outcome:
        """The activation command's lifecycle: a car that will not or cannot turn the
        feature on gets the money back."""
        purchase_id = self._by_command.get(step.command_id)
        if purchase_id is None:
            return Outcome()
        purchase = self.purchases[purchase_id]
        if purchase.state is not _P.ACTIVATING:
            return Outcome()
        if step.state is CommandState.SUCCEEDED:
            return self.emit(advance(purchase, _P.COMPLETED, now_ms, "the car turned it on"))
        if step.state not in _COMMAND_ENDS:
            return Outcome()
        detail = f": {step.reason}" if step.reason else ""
        return self._refund(purchase, now_ms, f"activation {step.state.value}{detail}")

    def feature_state(self, vin: str, data: Mapping[str, object], now_ms: int) -> Outcome:
        """The car reports a feature on (or off): an activation it answers completes."""
        purchase_id = self._by_command.get(str(data.get("command_id", "")))
        if purchase_id is None or data.get("active") is not True:
            return Outcome()
        purchase = self.purchases[purchase_id]
        if purchase.vin != vin or purchase.state is not _P.ACTIVATING:
            return Outcome()
        return self.emit(advance(purchase, _P.COMPLETED, now_ms, "the car reports it active"))

    def cancelled(self, record: SubscriptionCancelled, now_ms: int) -> Outcome:
        return self.subscriptions.cancelled(record, now_ms)

    def owner_changed(self, record: OwnerChanged, now_ms: int) -> Outcome:
        return self.subscriptions.owner_changed(record, now_ms)

    def expire(self, now_ms: int) -> Outcome:
        """Paid purchases a car did not turn on in time (whatever the commands' fate), and
        subscriptions due for renewal or at their end."""
        outcome = self.subscriptions.tick(now_ms)
        for purchase_id in sorted(self._unpaid):
            purchase = self.purchases[purchase_id]
            if now_ms >= purchase.created_at + self.payment_timeout_ms:
                reason = "the provider never confirmed the payment"
                outcome.extend(self.emit(advance(purchase, _P.FAILED, now_ms, reason)))
        for purchase_id in sorted(self._activating):
            purchase = self.purchases[purchase_id]
            deadline = purchase.activate_by or purchase.updated_at + self.activation_ttl_ms
            if now_ms >= deadline + self.grace_ms:
                reason = "not turned on within the activation time; the car stayed away"
                outcome.extend(self._refund(purchase, now_ms, reason))
        return outcome

    # rules --------------------------------------------------------------------------------------

    def _from_event(self, event: ProviderEvent, now_ms: int) -> Purchase:
        """A purchase first heard of from the provider (the API stopped before it wrote its
        request): the intent's metadata says what was bought."""
        if event.vin is None or event.feature is None:
            raise UnroutableEventError(f"event {event.event_id} names no car or feature")
        feature = self.catalogue.get(event.feature)
        return Purchase(
            purchase_id=event.purchase_id,
            vin=event.vin,
            feature=event.feature,
            owner=event.owner or "",
            amount=event.amount,
            currency=event.currency or (feature.currency if feature else "eur"),
            kind=feature.kind if feature else FeatureKind.ONE_TIME,
            state=_P.PENDING_PAYMENT,
            created_at=now_ms,
            updated_at=now_ms,
            history=[PurchaseStep(_P.PENDING_PAYMENT, now_ms, "known from the provider")],
            intent_id=event.intent_id,
            period_days=feature.period_days if feature else None,
        )

    def _paid(self, purchase: Purchase, now_ms: int) -> Outcome:
        if purchase.state not in (_P.PENDING_PAYMENT, _P.FAILED):
            return self.emit(purchase)  # already paid, or its money went back meanwhile
        key = entitlement_key(purchase.vin, purchase.feature)
        held = self.entitlements.get(key)
        if held is not None and held.active and held.purchase_id != purchase.purchase_id:
            return self._refund(purchase, now_ms, "the car already has this feature")
        period_ms = None if purchase.period_days is None else purchase.period_days * self.day_ms
        return self._entitle(purchase, now_ms, period_ms, "paid")

    def _entitle(
        self, purchase: Purchase, now_ms: int, period_ms: int | None, reason: str
    ) -> Outcome:
        """Entitled from now (for ``period_ms``, or for good): the car is told to turn it on."""
        key = entitlement_key(purchase.vin, purchase.feature)
        held = self.entitlements.get(key)
        if held is not None and held.active and held.purchase_id != purchase.purchase_id:
            return self.emit(advance(purchase, _P.FAILED, now_ms, "the car has it already"))
        until = None if period_ms is None else now_ms + period_ms
        entitlement = Entitlement(
            vin=purchase.vin,
            feature=purchase.feature,
            active=True,
            purchase_id=purchase.purchase_id,
            version=(held.version + 1) if held else 1,
            ts=now_ms,
            until=until,
            owner=purchase.owner,
            activated=True,
        )
        self.entitlements[key] = entitlement
        paid = changed(
            purchase,
            activation_id=feature_command_id(entitlement),
            activate_by=now_ms + self.activation_ttl_ms,
            paid_until=until,
        )
        outcome = Outcome(entitlements=[entitlement])
        outcome.extend(self.emit(advance(paid, _P.ACTIVATING, now_ms, reason)))
        return outcome

    def _refund(self, purchase: Purchase, now_ms: int, reason: str) -> Outcome:
        """The entitlement ends; what was paid goes back (a trial paid nothing: it failed)."""
        outcome = self.revoke(purchase, now_ms, reason)
        state = _P.REFUNDING if purchase.charged else _P.FAILED
        outcome.extend(self.emit(advance(purchase, state, now_ms, reason)))
        return outcome

    def revoke(self, purchase: Purchase, now_ms: int, reason: str) -> Outcome:
        """The entitlement this purchase gave ends (the car is told to turn it off)."""
        key = entitlement_key(purchase.vin, purchase.feature)
        held = self.entitlements.get(key)
        if held is None or not held.active or held.purchase_id != purchase.purchase_id:
            return Outcome()
        over = ended(held, now_ms, reason)
        self.entitlements[key] = over
        return Outcome(entitlements=[over])

    def emit(self, purchase: Purchase) -> Outcome:
        self._store(purchase)
        return Outcome(purchases=[purchase])

    def _store(self, purchase: Purchase) -> None:
        self.purchases[purchase.purchase_id] = purchase
        if purchase.activation_id is not None:
            self._by_command[purchase.activation_id] = purchase.purchase_id
        if purchase.state is _P.PENDING_PAYMENT:
            self._unpaid.add(purchase.purchase_id)
        else:
            self._unpaid.discard(purchase.purchase_id)
        if purchase.state is _P.ACTIVATING:
            self._activating.add(purchase.purchase_id)
        else:
            self._activating.discard(purchase.purchase_id)
        delivering = purchase.state in (_P.ACTIVATING, _P.COMPLETED)
        if purchase.kind is FeatureKind.SUBSCRIPTION and delivering:
            self.subscribed.add(purchase.purchase_id)
        else:
            self.subscribed.discard(purchase.purchase_id)


_COMMAND_ENDS = frozenset(
    {
        CommandState.FAILED,
        CommandState.REJECTED,
        CommandState.EXPIRED,
        CommandState.CANCELLED,
        CommandState.UNKNOWN,
    }
)
