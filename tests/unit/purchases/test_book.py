"""The purchase lifecycle's rules, with inputs in every order and more than once."""

from __future__ import annotations

import itertools

import pytest

from fleetlink.contracts.models import CommandState, Transition
from fleetlink.contracts.purchases import (
    Entitlement,
    FeatureKind,
    ProviderEvent,
    PurchaseRequested,
    PurchaseState,
    feature_command_id,
)
from fleetlink.purchases.book import PurchaseBook, UnroutableEventError
from fleetlink.settings.purchases import DEFAULT_FEATURES

VIN = "WVWZZZ1JZXW000001"
PID = "p-1"
NOW = 1_700_000_000_000
TTL = 60_000
S = PurchaseState
_ids = itertools.count(1)


def book() -> PurchaseBook:
    return PurchaseBook({f.id: f for f in DEFAULT_FEATURES}, activation_ttl_ms=TTL)


def request(pid: str = PID, feature: str = "performance-boost") -> PurchaseRequested:
    return PurchaseRequested(
        purchase_id=pid,
        vin=VIN,
        feature=feature,
        owner="olga",
        amount=120000,
        currency="eur",
        kind=FeatureKind.ONE_TIME,
        requested_at=NOW,
        intent_id="pi_1",
    )


def event(kind: str, pid: str = PID, event_id: str | None = None, **extra: object) -> ProviderEvent:
    return ProviderEvent(
        event_id=event_id or f"evt_{next(_ids)}",
        type=kind,
        created=NOW // 1000,
        purchase_id=pid,
        intent_id="pi_1",
        received_at=NOW,
        amount=120000,
        currency="eur",
        vin=VIN,
        feature="performance-boost",
        owner="olga",
        **extra,  # type: ignore[arg-type]
    )


def status(command_id: str, state: CommandState, reason: str | None = None) -> Transition:
    return Transition(
        command_id=command_id, vin=VIN, name="feature.activate", state=state, ts=NOW, reason=reason
    )


def paid_book() -> tuple[PurchaseBook, Entitlement]:
    purchases = book()
    purchases.requested(request(), NOW)
    outcome = purchases.provider(event("payment_intent.succeeded"), NOW + 1)
    (entitlement,) = outcome.entitlements
    return purchases, entitlement


def test_a_paid_purchase_entitles_the_car_and_names_its_activation() -> None:
    purchases, entitlement = paid_book()
    purchase = purchases.purchases[PID]
    assert purchase.state is S.ACTIVATING
    assert purchase.charged
    assert entitlement.active
    assert entitlement.version == 1
    assert entitlement.until is None
    assert purchase.activation_id == feature_command_id(entitlement)
    assert purchase.activate_by == NOW + 1 + TTL
    assert [step.state for step in purchase.history] == [S.PENDING_PAYMENT, S.ACTIVATING]


def test_the_same_event_twice_and_the_request_twice_change_nothing() -> None:
    purchases = book()
    purchases.requested(request(), NOW)
    paid = event("payment_intent.succeeded", event_id="evt_paid")
    assert purchases.provider(paid, NOW)
    assert not purchases.provider(paid, NOW + 5)
    assert not purchases.requested(request(), NOW + 6)
    assert len(purchases.entitlements) == 1


def test_the_car_reporting_the_feature_on_completes_the_purchase() -> None:
    purchases, entitlement = paid_book()
    command_id = feature_command_id(entitlement)
    other = purchases.feature_state(VIN, {"feature": "x", "active": True, "command_id": "c"}, NOW)
    assert not other
    done = purchases.feature_state(
        VIN, {"feature": "performance-boost", "active": True, "command_id": command_id}, NOW + 9
    )
    assert done.purchases[0].state is S.COMPLETED
    assert not purchases.command_status(status(command_id, CommandState.SUCCEEDED), NOW + 10)


@pytest.mark.parametrize(
    "end", [CommandState.REJECTED, CommandState.EXPIRED, CommandState.FAILED, CommandState.UNKNOWN]
)
def test_an_activation_that_ends_badly_refunds_and_ends_the_entitlement(end: CommandState) -> None:
    purchases, entitlement = paid_book()
    outcome = purchases.command_status(
        status(feature_command_id(entitlement), end, "not-equipped"), NOW + 5
    )
    assert outcome.purchases[0].state is S.REFUNDING
    assert end.value in (outcome.purchases[0].reason or "")
    (ended,) = outcome.entitlements
    assert not ended.active
    assert ended.version == 2
    assert ended.activated
    refunded = purchases.provider(event("charge.refunded"), NOW + 6)
    assert refunded.purchases[0].state is S.REFUNDED
    assert not refunded.entitlements


def test_queued_and_sent_steps_of_the_activation_change_nothing() -> None:
    purchases, entitlement = paid_book()
    for step in (CommandState.QUEUED, CommandState.SENT, CommandState.DELIVERED):
        assert not purchases.command_status(status(feature_command_id(entitlement), step), NOW)


def test_a_refund_before_the_payment_event_never_activates() -> None:
    purchases = book()
    purchases.requested(request(), NOW)
    refunded = purchases.provider(event("charge.refunded", reason="requested_by_customer"), NOW)
    assert refunded.purchases[0].state is S.REFUNDED
    assert not refunded.entitlements
    late = purchases.provider(event("payment_intent.succeeded"), NOW + 1)
    assert late.purchases[0].state is S.REFUNDED
    assert not late.entitlements
    assert purchases.purchases[PID].charged


def test_a_chargeback_after_completion_ends_the_entitlement() -> None:
    purchases, entitlement = paid_book()
    purchases.command_status(status(feature_command_id(entitlement), CommandState.SUCCEEDED), NOW)
    outcome = purchases.provider(event("charge.dispute.created", reason="fraudulent"), NOW + 2)
    assert outcome.purchases[0].state is S.REFUNDED
    assert outcome.purchases[0].reason == "chargeback: fraudulent"
    assert not outcome.entitlements[0].active


def test_a_decline_fails_and_a_later_success_still_activates() -> None:
    purchases = book()
    purchases.requested(request(), NOW)
    failed = purchases.provider(event("payment_intent.payment_failed", reason="card_declined"), NOW)
    assert failed.purchases[0].state is S.FAILED
    assert failed.purchases[0].reason == "payment declined: card_declined"
    assert purchases.provider(event("payment_intent.succeeded"), NOW + 1).entitlements
    late_failure = purchases.provider(event("payment_intent.payment_failed"), NOW + 2)
    assert late_failure.purchases[0].state is S.ACTIVATING


def test_a_purchase_first_heard_of_from_the_provider_is_taken_from_its_metadata() -> None:
    purchases = book()
    outcome = purchases.provider(event("payment_intent.succeeded"), NOW)
    purchase = outcome.purchases[0]
    assert (purchase.vin, purchase.feature, purchase.owner) == (VIN, "performance-boost", "olga")
    assert purchase.state is S.ACTIVATING
    with pytest.raises(UnroutableEventError):
        purchases.provider(
            ProviderEvent(
                event_id="evt_x",
                type="payment_intent.succeeded",
                created=0,
                purchase_id="p-2",
                intent_id="pi_2",
                received_at=NOW,
            ),
            NOW,
        )


def test_a_car_not_turning_it_on_in_time_gets_the_money_back() -> None:
    purchases, _ = paid_book()
    assert not purchases.expire(NOW + TTL)
    outcome = purchases.expire(NOW + 1 + TTL)
    assert outcome.purchases[0].state is S.REFUNDING
    assert not outcome.entitlements[0].active
    assert not purchases.expire(NOW + 2 * TTL)


def test_a_second_purchase_of_a_feature_the_car_has_is_refunded() -> None:
    purchases, _ = paid_book()
    purchases.requested(request("p-2"), NOW)
    outcome = purchases.provider(event("payment_intent.succeeded", "p-2"), NOW + 3)
    assert outcome.purchases[0].state is S.REFUNDING
    assert outcome.purchases[0].reason == "the car already has this feature"
    assert not outcome.entitlements
    assert purchases.entitlements[f"{VIN}/performance-boost"].purchase_id == PID


def test_a_subscription_is_entitled_for_its_period() -> None:
    purchases = book()
    heated = PurchaseRequested(
        purchase_id="p-3",
        vin=VIN,
        feature="heated-seats",
        owner="olga",
        amount=1500,
        currency="eur",
        kind=FeatureKind.SUBSCRIPTION,
        requested_at=NOW,
        period_days=30,
    )
    purchases.requested(heated, NOW)
    outcome = purchases.provider(event("payment_intent.succeeded", "p-3"), NOW)
    assert outcome.entitlements[0].until == NOW + 30 * 86_400_000


def test_a_restored_book_continues_where_the_topics_left_it() -> None:
    purchases, entitlement = paid_book()
    again = book()
    for purchase in purchases.purchases.values():
        again.restore(purchase)
    again.restore_entitlement(entitlement)
    outcome = again.command_status(
        status(feature_command_id(entitlement), CommandState.REJECTED), NOW
    )
    assert outcome.purchases[0].state is S.REFUNDING
    assert again.expire(NOW + 10 * TTL).purchases == []


def test_a_payment_never_confirmed_fails_and_a_late_one_still_activates() -> None:
    purchases = PurchaseBook(
        {f.id: f for f in DEFAULT_FEATURES}, activation_ttl_ms=TTL, payment_timeout_ms=5_000
    )
    purchases.requested(request(), NOW)
    assert not purchases.expire(NOW + 4_999)
    (failed,) = purchases.expire(NOW + 5_000).purchases
    assert failed.state is S.FAILED
    assert failed.reason == "the provider never confirmed the payment"
    assert not purchases.expire(NOW + 10_000)
    late = purchases.provider(event("payment_intent.succeeded"), NOW + 20_000)
    assert late.purchases[0].state is S.ACTIVATING
