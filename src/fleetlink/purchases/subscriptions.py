"""Subscriptions, pure: renewed each period, ended by the owner, by a failed payment, or by a
sale of the car.

The platform bills each period itself, through the same provider interface as the purchase
(a merchant-initiated payment), under a key derived from the purchase and the period, so a
period is never charged twice. ``renew_ahead`` before the paid period ends the purchase asks
for the next one (``renewing``; the refunder's sibling charges it); its payment extends the
entitlement (a new version: the car is told the new end, and stops by itself at the old one if
it never hears). Unpaid or cancelled, the entitlement ends with the period (``ended``); a
renewal paid after that is given back (``refunds_due``), never left charged without a feature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleetlink.contracts.purchases import (
    OwnerChanged,
    ProviderEvent,
    ProviderEventType,
    Purchase,
    PurchaseState,
    SubscriptionCancelled,
    entitlement_key,
)
from fleetlink.purchases.outcome import Outcome, advance, changed, changed_entitlement

if TYPE_CHECKING:
    from fleetlink.purchases.book import PurchaseBook

_P = PurchaseState
_DELIVERING = (_P.ACTIVATING, _P.COMPLETED)


class Subscriptions:
    def __init__(self, book: PurchaseBook, renew_ahead_ms: int) -> None:
        self._book = book
        self._renew_ahead_ms = renew_ahead_ms

    def renewal_event(self, purchase: Purchase, event: ProviderEvent, now_ms: int) -> Outcome:
        """An event of a renewal's payment (not the purchase's own)."""
        book = self._book
        kind = event.type
        if kind == ProviderEventType.PAYMENT_SUCCEEDED:
            return self._renewed(purchase, event, now_ms)
        failed = (ProviderEventType.PAYMENT_FAILED, ProviderEventType.PAYMENT_CANCELED)
        if kind in failed and purchase.renewing == event.period:
            reason = f"renewal {event.period} declined: {event.reason or 'no reason given'}"
            return book.emit(changed(purchase, renewing=None, reason=reason))
        if kind in (ProviderEventType.CHARGE_REFUNDED, ProviderEventType.DISPUTE_CREATED):
            due = [intent for intent in purchase.refunds_due if intent != event.intent_id]
            return book.emit(changed(purchase, refunds_due=due))
        return book.emit(purchase)

    def _renewed(self, purchase: Purchase, event: ProviderEvent, now_ms: int) -> Outcome:
        book = self._book
        key = entitlement_key(purchase.vin, purchase.feature)
        held = book.entitlements.get(key)
        current = (
            purchase.state in _DELIVERING
            and held is not None
            and held.active
            and held.purchase_id == purchase.purchase_id
            and event.period == purchase.period + 1
        )
        if not current or held is None or purchase.period_days is None:
            # too late (ended, refunded, sold) or not the period asked: the money goes back
            due = [*purchase.refunds_due, event.intent_id]
            return book.emit(changed(purchase, refunds_due=due))
        until = max(held.until or now_ms, now_ms) + purchase.period_days * book.day_ms
        extended = changed_entitlement(held, version=held.version + 1, ts=now_ms, until=until)
        book.entitlements[key] = extended
        renewed = changed(
            purchase,
            period=event.period,
            renewing=None,
            paid_until=until,
            reason=f"renewed: period {event.period}",
        )
        outcome = Outcome(entitlements=[extended])
        outcome.extend(book.emit(renewed))
        return outcome

    def cancelled(self, record: SubscriptionCancelled, now_ms: int) -> Outcome:
        purchase = self._book.purchases.get(record.purchase_id)
        if purchase is None or purchase.state not in _DELIVERING or purchase.cancel_at_period_end:
            return Outcome()
        reason = f"cancelled by {record.by}: ends with the period paid"
        return self._book.emit(changed(purchase, cancel_at_period_end=True, reason=reason))

    def owner_changed(self, record: OwnerChanged, now_ms: int) -> Outcome:
        """The previous owner's subscriptions of the car end now (one-time purchases stay)."""
        book = self._book
        outcome = Outcome()
        for purchase_id in sorted(book.subscribed):
            purchase = book.purchases[purchase_id]
            if purchase.vin == record.vin and purchase.owner == record.previous:
                reason = f"the car changed hands: {record.previous} -> {record.owner}"
                outcome.extend(self._end(purchase, now_ms, reason))
        return outcome

    def tick(self, now_ms: int) -> Outcome:
        """Renewals due, and subscriptions at the end of their paid period."""
        book = self._book
        outcome = Outcome()
        for purchase_id in sorted(book.subscribed):
            purchase = book.purchases[purchase_id]
            until = purchase.paid_until
            if until is None or purchase.state is not _P.COMPLETED:
                continue
            if now_ms >= until + book.grace_ms:
                reason = "cancelled" if purchase.cancel_at_period_end else "not renewed"
                outcome.extend(self._end(purchase, now_ms, f"subscription over: {reason}"))
            elif (
                now_ms >= until - self._renew_ahead_ms
                and purchase.renewing is None
                and not purchase.cancel_at_period_end
                and not (purchase.reason or "").startswith(f"renewal {purchase.period + 1} ")
            ):
                renewing = changed(purchase, renewing=purchase.period + 1)
                outcome.extend(book.emit(renewing))
        return outcome

    def _end(self, purchase: Purchase, now_ms: int, reason: str) -> Outcome:
        outcome = self._book.revoke(purchase, now_ms, reason)
        ended = advance(changed(purchase, renewing=None), _P.ENDED, now_ms, reason)
        outcome.extend(self._book.emit(ended))
        return outcome
