"""The payment simulator's API in-process: Stripe's idempotency, payments, declines, refunds,
disputes, the chaos knobs and the ledger."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fleetlink.contracts.purchases import ProviderEventType, provider_key
from fleetlink.payments.events import read_provider_event
from fleetlink.payments.signature import SIGNATURE_HEADER, verify
from tests.support.strategies import VIN
from tests.unit.payments.sim_support import HOOK, METADATA, PAYMENT, Sim, run


def test_a_key_replays_its_first_answer_and_refuses_other_parameters(tmp_path: Path) -> None:
    async def scenario(sim: Sim) -> None:
        first = await sim.pay("k1")
        assert first.status_code == 200
        assert first.json()["status"] == "processing"
        assert first.json()["id"].startswith("pi_")
        again = await sim.pay("k1", metadata=dict(reversed(METADATA.items())))  # same, reordered
        assert (again.status_code, again.content) == (200, first.content)
        assert again.headers["Idempotent-Replayed"] == "true"
        other = await sim.pay("k1", amount=1600)
        assert other.status_code == 400
        assert other.json()["error"]["type"] == "idempotency_error"
        assert other.json()["error"]["code"] == "idempotency_key_in_use"
        # the same key on another endpoint is another request too
        elsewhere = await sim.refund(first.json()["id"], key="k1")
        assert elsewhere.json()["error"]["code"] == "idempotency_key_in_use"
        second = await sim.pay("k2")
        assert second.json()["id"] != first.json()["id"]
        ledger = await sim.settled(4)
        assert len(ledger["charges"]) == 2

    run(tmp_path, scenario)


def test_requests_that_fail_validation_are_not_saved(tmp_path: Path) -> None:
    async def scenario(sim: Sim) -> None:
        missing = await sim.client.post("/v1/payment_intents", json=PAYMENT)
        assert (missing.status_code, missing.json()["error"]["code"]) == (400, "parameter_missing")
        assert (await sim.pay("x" * 256)).status_code == 400
        assert (await sim.pay("x" * 255)).status_code == 200
        bad = await sim.pay("k1", amount=-1)
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "parameter_invalid")
        assert (await sim.pay("k1", currency="EURO")).status_code == 400
        assert (await sim.pay("k1")).status_code == 200  # fixed, the key is still free

    run(tmp_path, scenario)


def test_a_payment_succeeds_and_its_signed_events_are_delivered(tmp_path: Path) -> None:
    async def scenario(sim: Sim) -> None:
        key = provider_key("p-1", "charge")
        intent = (await sim.pay(key)).json()["id"]
        ledger = await sim.settled(2)
        assert ledger["charges"] == [
            {
                "intent_id": intent,
                "charge_id": ledger["charges"][0]["charge_id"],
                "purchase_id": "p-1",
                "amount": 1500,
                "currency": "eur",
            }
        ]
        assert ledger["webhooks"] == {
            "events": 2,
            "attempts": 2,
            "delivered": 2,
            "duplicates_sent": 0,
            "pending": 0,
            "failed_for_good": 0,
        }
        current = (await sim.client.get(f"/v1/payment_intents/{intent}")).json()
        assert current["status"] == "succeeded"

    receiver = run(tmp_path, scenario)
    assert sorted(receiver.types()) == ["charge.succeeded", "payment_intent.succeeded"]
    for request in receiver.requests:
        assert request.headers["Content-Type"] == "application/json"
        assert request.url == HOOK
        # a receiver that holds only the new secret accepts: both were signed with
        header = request.headers[SIGNATURE_HEADER]
        verify(request.content, header, ["whsec_new"], now_s=time.time(), tolerance_s=300)
    succeeded = next(r for r in receiver.requests if b"payment_intent.succeeded" in r.content)
    read = read_provider_event(succeeded.content, received_at=1)
    assert read.type == ProviderEventType.PAYMENT_SUCCEEDED
    assert (read.purchase_id, read.vin, read.feature, read.owner) == (
        "p-1",
        VIN,
        "heated-seats",
        "olga",
    )
    assert (read.amount, read.currency, read.intent_id[:3]) == (1500, "eur", "pi_")


def test_a_declined_payment(tmp_path: Path) -> None:
    async def scenario(sim: Sim) -> None:
        intent = (await sim.pay()).json()["id"]
        ledger = await sim.settled(1)
        assert ledger["charges"] == []
        assert [d["intent_id"] for d in ledger["declines"]] == [intent]
        refused = await sim.refund(intent)
        assert refused.json()["error"]["code"] == "payment_intent_unexpected_state"
        current = (await sim.client.get(f"/v1/payment_intents/{intent}")).json()
        assert current["status"] == "requires_payment_method"

    receiver = run(tmp_path, scenario, decline_p=1.0)
    assert receiver.types() == ["payment_intent.payment_failed"]
    read = read_provider_event(receiver.requests[0].content, received_at=1)
    assert read.reason in {"insufficient_funds", "generic_decline", "card_velocity_exceeded"}


def test_a_refund_and_its_conflicts(tmp_path: Path) -> None:
    async def scenario(sim: Sim) -> None:
        early = await sim.refund((await sim.pay("k0")).json()["id"], key="r0")
        assert early.json()["error"]["code"] == "payment_intent_unexpected_state"
        assert (await sim.refund("pi_nope", key="r9")).status_code == 404
        intent = await sim.paid("k1")
        refund = await sim.refund(intent, key="r1")
        assert refund.status_code == 200
        assert refund.json()["id"].startswith("re_")
        assert refund.json()["status"] == "succeeded"
        assert (await sim.refund(intent, key="r1")).content == refund.content  # replayed
        conflict = await sim.refund(intent, key="r1", reason="another")
        assert conflict.json()["error"]["code"] == "idempotency_key_in_use"
        twice = await sim.refund(intent, key="r2")
        assert (twice.status_code, twice.json()["error"]["code"]) == (
            400,
            "charge_already_refunded",
        )
        ledger = await sim.settled(5)
        assert [(r["intent_id"], r["reason"]) for r in ledger["refunds"]] == [
            (intent, "no-activation")
        ]
        assert ledger["refunds"][0]["refund_id"] == refund.json()["id"]

    receiver = run(tmp_path, scenario)
    refunded = [r for r in receiver.requests if b'"charge.refunded"' in r.content]
    assert len(refunded) == 1
    read = read_provider_event(refunded[0].content, received_at=1)
    assert (read.type, read.purchase_id, read.reason, read.amount) == (
        "charge.refunded",
        "p-1",
        "no-activation",
        1500,
    )


def test_a_dispute(tmp_path: Path) -> None:
    async def scenario(sim: Sim) -> None:
        intent = await sim.paid()
        disputed = await sim.client.post("/v1/test/disputes", json={"payment_intent": intent})
        assert disputed.json()["id"].startswith("dp_")
        again = await sim.client.post("/v1/test/disputes", json={"payment_intent": intent})
        assert again.json()["error"]["code"] == "charge_already_disputed"
        assert (await sim.refund(intent)).json()["error"]["code"] == "charge_disputed"
        ledger = await sim.settled(3)
        assert [d["purchase_id"] for d in ledger["disputes"]] == ["p-1"]

    receiver = run(tmp_path, scenario)
    dispute = next(r for r in receiver.requests if b"charge.dispute.created" in r.content)
    read = read_provider_event(dispute.content, received_at=1)
    assert (read.purchase_id, read.reason, read.intent_id[:3]) == ("p-1", "fraudulent", "pi_")


def test_chaos_knobs_change_at_run_time(tmp_path: Path) -> None:
    async def scenario(sim: Sim) -> None:
        await sim.paid("k1")
        change = {"decline_p": 1.0, "duplicate_p": 1.0, "max_delay_s": 0.01}
        knobs = (await sim.client.post("/v1/test/chaos", json=change)).json()
        assert knobs == {**change, "reorder_p": 0.0, "down_for_s": 0.0}
        await sim.pay("k2")
        ledger = await sim.settled(3)
        assert (len(ledger["charges"]), len(ledger["declines"])) == (1, 1)
        assert ledger["webhooks"]["duplicates_sent"] == 1
        for bad in ({"decline_p": 2}, {"delay": 1}, {"max_delay_s": -1}):
            answer = await sim.client.post("/v1/test/chaos", json=bad)
            assert answer.status_code == 400

    run(tmp_path, scenario)


def test_the_seed_decides_declines(tmp_path: Path) -> None:
    def declined() -> list[str]:
        async def scenario(sim: Sim) -> None:
            for n in range(12):
                await sim.pay(f"k{n}", metadata={"purchase_id": f"p-{n}"})
            ledger = await sim.until(lambda at: len(at["charges"]) + len(at["declines"]) == 12)
            found.extend(sorted(d["purchase_id"] for d in ledger["declines"]))

        found: list[str] = []
        run(tmp_path, scenario, decline_p=0.5, seed=42)
        return found

    first = declined()
    assert first == declined()
    assert 0 < len(first) < 12


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/test/disputes", {"payment_intent": "pi_nope"}),
        ("/v1/refunds", {"payment_intent": "pi_nope"}),
    ],
)
def test_unknown_intents_are_missing(tmp_path: Path, path: str, body: dict[str, str]) -> None:
    async def scenario(sim: Sim) -> None:
        answer = await sim.client.post(path, json=body, headers={"Idempotency-Key": "k"})
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "resource_missing")

    run(tmp_path, scenario)
