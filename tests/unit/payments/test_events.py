"""Webhook bodies (Stripe's event shapes) read into ProviderEvent records, totally."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetlink.contracts.codec import DlqReason, UndecodableError
from fleetlink.contracts.purchases import ProviderEvent, ProviderEventType
from fleetlink.payments.events import read_provider_event
from tests.support.strategies import JSON, NOW, PROPERTY, VIN, with_bad_bytes

METADATA = {"purchase_id": "p-1", "vin": VIN, "feature": "heated-seats", "owner": "olga"}
CREATED = 1_764_000_000


def event(event_type: str, obj: dict[str, Any], event_id: str = "evt_1") -> bytes:
    body = {"id": event_id, "object": "event", "type": event_type, "created": CREATED}
    return msgspec.json.encode({**body, "data": {"object": obj}})


def intent(**fields: Any) -> dict[str, Any]:
    base = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 1500,
        "currency": "eur",
        "status": "succeeded",
        "metadata": METADATA,
        "last_payment_error": None,
    }
    return {**base, **fields}


def charge(**fields: Any) -> dict[str, Any]:
    refund = {"reason": "requested_by_customer", "metadata": {"fleetlink_reason": "no-activation"}}
    base = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": "pi_1",
        "amount": 1500,
        "amount_refunded": 1500,
        "currency": "eur",
        "metadata": METADATA,
        "refunds": {"object": "list", "data": [refund]},
    }
    return {**base, **fields}


def dispute(**fields: Any) -> dict[str, Any]:
    base = {
        "id": "dp_1",
        "object": "dispute",
        "payment_intent": "pi_1",
        "charge": "ch_1",
        "amount": 1500,
        "currency": "eur",
        "reason": "fraudulent",
        "metadata": METADATA,
    }
    return {**base, **fields}


def expected(event_type: str, **fields: Any) -> ProviderEvent:
    return ProviderEvent(
        event_id="evt_1",
        type=event_type,
        created=CREATED,
        purchase_id="p-1",
        intent_id="pi_1",
        received_at=NOW,
        amount=1500,
        currency="eur",
        vin=VIN,
        feature="heated-seats",
        owner="olga",
        **fields,
    )


def test_payment_succeeded() -> None:
    kind = ProviderEventType.PAYMENT_SUCCEEDED
    assert read_provider_event(event(kind, intent()), NOW) == expected(kind)


def test_payment_failed_takes_the_decline_code_else_the_code() -> None:
    kind = ProviderEventType.PAYMENT_FAILED
    error = {"code": "card_declined", "decline_code": "insufficient_funds", "message": "no"}
    failed = intent(status="requires_payment_method", last_payment_error=error)
    assert read_provider_event(event(kind, failed), NOW) == expected(
        kind, reason="insufficient_funds"
    )
    other: dict[str, Any] = {"code": "expired_card", "decline_code": None}
    failed = intent(status="requires_payment_method", last_payment_error=other)
    assert read_provider_event(event(kind, failed), NOW).reason == "expired_card"


def test_charge_refunded_takes_fleetlinks_reason_else_stripes() -> None:
    kind = ProviderEventType.CHARGE_REFUNDED
    assert read_provider_event(event(kind, charge()), NOW) == expected(kind, reason="no-activation")
    plain = charge(refunds={"data": [{"reason": "duplicate"}]})
    assert read_provider_event(event(kind, plain), NOW).reason == "duplicate"
    partial = charge(amount_refunded=500, refunds=None)  # the money returned, not the charge's
    assert read_provider_event(event(kind, partial), NOW).amount == 500


def test_dispute_created() -> None:
    kind = ProviderEventType.DISPUTE_CREATED
    assert read_provider_event(event(kind, dispute()), NOW) == expected(kind, reason="fraudulent")


def test_other_event_types_of_known_objects_are_read_too() -> None:
    read = read_provider_event(
        event("charge.succeeded", charge(amount_refunded=0, refunds=None)), NOW
    )
    assert (read.type, read.intent_id, read.amount, read.reason) == (
        "charge.succeeded",
        "pi_1",
        1500,
        None,
    )


def test_unknown_fields_are_ignored_and_metadata_is_optional_beyond_the_purchase() -> None:
    obj = intent(metadata={"purchase_id": "p-1"}, shipping={"x": 1}, currency=None)
    read = read_provider_event(event("payment_intent.succeeded", obj), NOW)
    assert (read.purchase_id, read.vin, read.currency) == ("p-1", None, None)


def test_a_long_reason_is_cut_not_refused() -> None:
    failed = intent(last_payment_error={"code": "x" * 1000})
    assert read_provider_event(event("payment_intent.payment_failed", failed), NOW).reason == (
        "x" * 256
    )


def reason_of(body: bytes) -> tuple[DlqReason, str]:
    with pytest.raises(UndecodableError) as caught:
        read_provider_event(body, NOW)
    return caught.value.reason, caught.value.detail


@pytest.mark.parametrize(
    "obj",
    [
        intent(metadata={}),
        intent(metadata={"purchase_id": ""}),
        charge(payment_intent=None),
        dispute(payment_intent=None),
        {"id": "re_1", "object": "refund", "payment_intent": "pi_1", "metadata": METADATA},
    ],
)
def test_an_event_naming_no_purchase_is_refused(obj: dict[str, Any]) -> None:
    reason, detail = reason_of(event("payment_intent.succeeded", obj))
    assert reason is DlqReason.SCHEMA
    assert "names no purchase" in detail


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", DlqReason.EMPTY),
        (b"\xff{}", DlqReason.INVALID_UTF8),
        (b"{", DlqReason.NOT_JSON),
        (b"[]", DlqReason.SCHEMA),
        (b'{"id":"evt_1","type":"t","created":1}', DlqReason.SCHEMA),  # no data
        (event("payment_intent.succeeded", intent(amount=-1)), DlqReason.SCHEMA),
        (event("payment_intent.succeeded", intent(currency="EURO")), DlqReason.SCHEMA),
        (
            event("payment_intent.succeeded", intent(metadata={**METADATA, "vin": "x"})),
            DlqReason.SCHEMA,
        ),
        (event("payment_intent.succeeded", intent(metadata={"purchase_id": 5})), DlqReason.SCHEMA),
        (event("payment_intent.succeeded", intent(), event_id=""), DlqReason.SCHEMA),
        (event("payment_intent.succeeded", "pi_1"), DlqReason.SCHEMA),  # type: ignore[arg-type]
    ],
)
def test_bad_bodies(body: bytes, reason: DlqReason) -> None:
    assert reason_of(body)[0] is reason


def test_a_bad_received_at_is_refused_not_raised() -> None:
    with pytest.raises(UndecodableError):
        read_provider_event(event("payment_intent.succeeded", intent()), -1)


def outcome(body: bytes) -> object:
    try:
        return read_provider_event(body, NOW)
    except UndecodableError as error:
        return error.reason


VALID_EVENTS = [
    msgspec.json.decode(event(ProviderEventType.PAYMENT_SUCCEEDED, intent())),
    msgspec.json.decode(event(ProviderEventType.CHARGE_REFUNDED, charge())),
    msgspec.json.decode(event(ProviderEventType.DISPUTE_CREATED, dispute())),
]
GONE = object()


@st.composite
def near_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with up to three fields (of the event, its object or its metadata)
    removed or given any JSON value."""
    doc: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(VALID_EVENTS)))
    obj = doc["data"]["object"]
    places = [(part, key) for part in (doc, obj, obj["metadata"]) for key in list(part)]
    chosen = draw(st.lists(st.integers(0, len(places) - 1), max_size=3, unique=True))
    for part, key in (places[index] for index in chosen):
        value = draw(st.just(GONE) | JSON | st.integers(-1, 2**65) | st.text(max_size=300))
        if value is GONE:
            part.pop(key, None)
        else:
            part[key] = value
    return doc


@PROPERTY
@given(body=st.binary(max_size=300))
def test_any_bytes_are_an_event_or_undecodable(body: bytes) -> None:
    assert isinstance(outcome(body), ProviderEvent | DlqReason)


@PROPERTY
@given(body=near_events().map(msgspec.json.encode) | with_bad_bytes(near_events()))
def test_any_event_shaped_json_is_an_event_or_undecodable(body: bytes) -> None:
    assert isinstance(outcome(body), ProviderEvent | DlqReason)


def test_event_shaped_json_reaches_every_outcome() -> None:
    """The strategy is not all noise: it makes events, and refusals of each kind."""
    seen: set[object] = set()

    @PROPERTY
    @given(body=near_events().map(msgspec.json.encode))
    def collect(body: bytes) -> None:
        result = outcome(body)
        seen.add(type(result) if isinstance(result, ProviderEvent) else result)

    collect()
    assert ProviderEvent in seen
    assert DlqReason.SCHEMA in seen
