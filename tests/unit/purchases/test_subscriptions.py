"""Subscriptions: renewed each period once, ended by the owner, by an unpaid period or by a sale
of the car; a renewal paid too late is given back."""

from __future__ import annotations

import itertools

from fleetlink.contracts.models import CommandState, Transition
from fleetlink.contracts.purchases import (
    FeatureKind,
    OwnerChanged,
    ProviderEvent,
    PurchaseRequested,
    PurchaseState,
    SubscriptionCancelled,
    feature_command_id,
)
from fleetlink.purchases.book import PurchaseBook
from fleetlink.settings.purchases import DEFAULT_FEATURES

VIN = "WVWZZZ1JZXW000001"
NOW = 1_700_000_000_000
DAY = 1000  # a "day" of one second: a 30-day period is 30 s
PERIOD = 30 * DAY
AHEAD = 2 * DAY
S = PurchaseState
_ids = itertools.count(1)


def book() -> PurchaseBook:
    catalogue = {f.id: f for f in DEFAULT_FEATURES}
    return PurchaseBook(catalogue, activation_ttl_ms=60_000, day_ms=DAY, renew_ahead_ms=AHEAD)


def paid(
    kind: str, pid: str, intent: str, period: int | None = None, **extra: object
) -> ProviderEvent:
    return ProviderEvent(
        event_id=f"evt_{next(_ids)}", type=kind, created=0, purchase_id=pid, intent_id=intent,
        received_at=NOW, vin=VIN, feature="heated-seats", owner="olga", period=period,
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def subscribed(pid: str = "s-1", owner: str = "olga") -> PurchaseBook:
    """A subscription bought, paid and turned on by the car at NOW."""
    purchases = book()
    request = PurchaseRequested(
        purchase_id=pid, vin=VIN, feature="heated-seats", owner=owner, amount=1500,
        currency="eur", kind=FeatureKind.SUBSCRIPTION, requested_at=NOW, intent_id=f"pi_{pid}",
        period_days=30,
    )  # fmt: skip
    purchases.requested(request, NOW)
    outcome = purchases.provider(paid("payment_intent.succeeded", pid, f"pi_{pid}"), NOW)
    activation = feature_command_id(outcome.entitlements[0])
    step = Transition(
        command_id=activation, vin=VIN, name="feature.activate", state=CommandState.SUCCEEDED,
        ts=NOW,
    )  # fmt: skip
    purchases.command_status(step, NOW)
    return purchases


def test_each_period_is_asked_once_and_its_payment_extends_the_entitlement() -> None:
    purchases = subscribed()
    assert purchases.purchases["s-1"].paid_until == NOW + PERIOD
    assert not purchases.expire(NOW + PERIOD - AHEAD - 1)
    (asked,) = purchases.expire(NOW + PERIOD - AHEAD).purchases
    assert asked.renewing == 2
    assert not purchases.expire(NOW + PERIOD - AHEAD + 10)  # asked once
    renewal = paid("payment_intent.succeeded", "s-1", "pi_r2", period=2)
    outcome = purchases.provider(renewal, NOW + PERIOD - AHEAD + 20)
    (extended,) = outcome.entitlements
    assert extended.active
    assert (extended.version, extended.until) == (2, NOW + 2 * PERIOD)
    purchase = outcome.purchases[0]
    assert (purchase.period, purchase.renewing, purchase.state) == (2, None, S.COMPLETED)
    assert not purchases.provider(renewal, NOW + PERIOD)  # the same event again
    assert not purchases.expire(NOW + PERIOD + 5)


def test_an_unpaid_period_ends_the_subscription_at_the_end_of_the_paid_one() -> None:
    purchases = subscribed()
    purchases.expire(NOW + PERIOD - AHEAD)
    declined = paid(
        "payment_intent.payment_failed", "s-1", "pi_r2", period=2, reason="expired_card"
    )
    (purchase,) = purchases.provider(declined, NOW + PERIOD - AHEAD).purchases
    assert purchase.reason == "renewal 2 declined: expired_card"
    assert purchase.renewing is None
    assert not purchases.expire(NOW + PERIOD - 1)  # not asked again, still paid
    outcome = purchases.expire(NOW + PERIOD)
    assert outcome.purchases[0].state is S.ENDED
    assert outcome.purchases[0].reason == "subscription over: not renewed"
    assert not outcome.entitlements[0].active


def test_a_cancelled_subscription_runs_to_the_end_of_its_period_and_stops() -> None:
    purchases = subscribed()
    cancel = SubscriptionCancelled(purchase_id="s-1", by="olga", ts=NOW)
    assert purchases.cancelled(cancel, NOW + 1).purchases[0].cancel_at_period_end
    assert not purchases.cancelled(cancel, NOW + 2)
    assert not purchases.expire(NOW + PERIOD - AHEAD)  # no renewal asked
    outcome = purchases.expire(NOW + PERIOD)
    assert outcome.purchases[0].state is S.ENDED
    assert outcome.purchases[0].reason == "subscription over: cancelled"


def test_a_sale_ends_the_sellers_subscriptions_and_keeps_one_time_purchases() -> None:
    purchases = subscribed()
    boost = PurchaseRequested(
        purchase_id="b-1", vin=VIN, feature="performance-boost", owner="olga", amount=1,
        currency="eur", kind=FeatureKind.ONE_TIME, requested_at=NOW, intent_id="pi_b",
    )  # fmt: skip
    purchases.requested(boost, NOW)
    one_time = paid("payment_intent.succeeded", "b-1", "pi_b")
    purchases.provider(msgspec_replace(one_time, feature="performance-boost"), NOW)
    sale = OwnerChanged(vin=VIN, previous="olga", owner="otto", ts=NOW)
    outcome = purchases.owner_changed(sale, NOW + 5)
    assert [p.purchase_id for p in outcome.purchases] == ["s-1"]
    assert outcome.purchases[0].state is S.ENDED
    assert "olga -> otto" in (outcome.purchases[0].reason or "")
    assert [(e.feature, e.active) for e in outcome.entitlements] == [("heated-seats", False)]
    assert purchases.entitlements[f"{VIN}/performance-boost"].active


def test_a_renewal_paid_after_the_end_is_given_back() -> None:
    purchases = subscribed()
    purchases.expire(NOW + PERIOD - AHEAD)
    purchases.expire(NOW + PERIOD + 10_000)  # ended: no payment came in time
    late = paid("payment_intent.succeeded", "s-1", "pi_r2", period=2)
    (purchase,) = purchases.provider(late, NOW + PERIOD + 20_000).purchases
    assert purchase.refunds_due == ["pi_r2"]
    assert purchase.state is S.ENDED
    assert not purchases.entitlements[f"{VIN}/heated-seats"].active
    back = paid("charge.refunded", "s-1", "pi_r2", period=2)
    assert purchases.provider(back, NOW + PERIOD + 30_000).purchases[0].refunds_due == []


def msgspec_replace(event: ProviderEvent, **changes: object) -> ProviderEvent:
    import msgspec

    return msgspec.structs.replace(event, **changes)


def trial_book() -> PurchaseBook:
    purchases = book()
    request = PurchaseRequested(
        purchase_id="t-1", vin=VIN, feature="heated-seats", owner="olga", amount=1500,
        currency="eur", kind=FeatureKind.SUBSCRIPTION, requested_at=NOW, period_days=30,
        trial_days=7,
    )  # fmt: skip
    outcome = purchases.requested(request, NOW)
    (entitlement,) = outcome.entitlements
    assert entitlement.until == NOW + 7 * DAY
    purchase = outcome.purchases[0]
    assert (purchase.state, purchase.trial, purchase.charged, purchase.period) == (
        S.ACTIVATING,
        True,
        False,
        0,
    )
    return purchases


def test_a_free_trial_is_entitled_at_once_and_its_first_charge_is_a_renewal() -> None:
    purchases = trial_book()
    activation = purchases.purchases["t-1"].activation_id or ""
    data = {"feature": "heated-seats", "active": True, "command_id": activation}
    assert purchases.feature_state(VIN, data, NOW + 1).purchases[0].state is S.COMPLETED
    (asked,) = purchases.expire(NOW + 7 * DAY - AHEAD).purchases
    assert asked.renewing == 1
    first = paid("payment_intent.succeeded", "t-1", "pi_first", period=1)
    outcome = purchases.provider(first, NOW + 7 * DAY - AHEAD + 5)
    assert outcome.entitlements[0].until == NOW + 7 * DAY + PERIOD
    assert outcome.purchases[0].period == 1


def test_a_trial_the_car_refuses_fails_with_nothing_to_refund() -> None:
    purchases = trial_book()
    activation = purchases.purchases["t-1"].activation_id or ""
    refused = Transition(
        command_id=activation, vin=VIN, name="feature.activate", state=CommandState.REJECTED,
        ts=NOW, reason="not-equipped",
    )  # fmt: skip
    outcome = purchases.command_status(refused, NOW + 1)
    assert outcome.purchases[0].state is S.FAILED
    assert not outcome.entitlements[0].active
