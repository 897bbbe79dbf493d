"""Features on demand through the API without a broker: the catalogue, what a car can buy, a
purchase charged once whatever is retried, refused before any charge when it cannot be
delivered, and the provider's webhook taken only when its signature holds."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from fleetlink.contracts.codec import decode, encode
from fleetlink.contracts.models import Presence, PresenceStatus
from fleetlink.contracts.purchases import (
    PaymentRecord,
    ProviderEvent,
    Purchase,
    PurchaseRequested,
    PurchaseState,
    PurchaseStep,
)
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.payments.provider import PaymentIntent, ProviderUnavailable, Refund
from fleetlink.payments.secrets import webhook_secrets
from fleetlink.payments.signature import SIGNATURE_HEADER, sign_header
from fleetlink.security.users import UserRole
from tests.support.api import CAR, OTHER, Api, run, running_api
from tests.support.stack import user_token

BOOST = "performance-boost"


@dataclass
class CountingProvider:
    """The provider as the API sees it: each charge asked, by idempotency key."""

    charges: dict[str, dict[str, object]] = field(default_factory=dict)
    calls: int = 0
    away: bool = False

    def create_payment(
        self, *, amount: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentIntent:
        self.calls += 1
        if self.away:
            raise ProviderUnavailable("connection refused")
        self.charges.setdefault(idempotency_key, {"amount": amount, **metadata})
        return PaymentIntent(f"pi_{len(self.charges)}", "processing")

    def refund(self, *, intent_id: str, reason: str, idempotency_key: str) -> Refund:
        raise AssertionError("the API never refunds")


def payments(api: Api) -> list[PurchaseRequested | ProviderEvent]:
    return [decode(PaymentRecord, raw) for raw in api.records(KafkaTopic.PAYMENTS)]  # type: ignore[arg-type]


def test_the_catalogue_and_what_a_car_can_buy(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path, provider=CountingProvider()) as api:
            reply = await api.client.get("/v1/features", headers=api.viewer)
            assert reply.status_code == 200
            assert {f["id"] for f in reply.json()["features"]} == {
                "heated-seats",
                BOOST,
                "extended-range",
            }
            reply = await api.client.get(f"/v1/vehicles/{CAR}/features", headers=api.owner)
            features = {f["id"]: f for f in reply.json()["features"]}
            assert features[BOOST]["can_buy"] is True
            assert features[BOOST]["has"] is False
            assert features["extended-range"]["can_buy"] is False
            assert features["extended-range"]["why_not"]["error"] == "incompatible"
            assert "fl-sedan" in features["extended-range"]["why_not"]["detail"]
            other = await api.client.get(f"/v1/vehicles/{OTHER}/features", headers=api.owner)
            assert other.status_code == 403

    run(scenario())


def test_a_purchase_is_charged_once_whatever_is_retried(tmp_path: Path) -> None:
    provider = CountingProvider()

    async def scenario() -> None:
        async with running_api(tmp_path, provider=provider) as api:
            url = f"/v1/vehicles/{CAR}/purchases"
            body = {"feature": BOOST, "idempotency_key": "k-1"}
            first = await api.client.post(url, json=body, headers=api.owner)
            assert first.status_code == 201, first.text
            purchase = first.json()
            assert purchase["state"] == "pending-payment"
            assert first.headers["location"] == f"/v1/purchases/{purchase['purchase_id']}"
            again = await api.client.post(url, json=body, headers=api.owner)
            assert again.status_code == 200
            assert again.json()["purchase_id"] == purchase["purchase_id"]
            conflict = await api.client.post(
                url, json={"feature": "heated-seats", "idempotency_key": "k-1"}, headers=api.owner
            )
            assert conflict.status_code == 409
            assert conflict.json()["error"] == "idempotency-conflict"
            second_key = await api.client.post(
                url, json={"feature": BOOST, "idempotency_key": "k-2"}, headers=api.owner
            )
            assert second_key.status_code == 409  # the first is still being paid
            assert second_key.json()["error"] == "purchase-open"
            (charge,) = provider.charges.values()
            assert charge["purchase_id"] == purchase["purchase_id"]
            assert (provider.calls, charge["amount"]) == (1, 120000)
            (requested,) = payments(api)
            assert isinstance(requested, PurchaseRequested)
            assert (requested.vin, requested.feature, requested.owner) == (CAR, BOOST, "olga")
            audit = await api.client.get(f"/v1/vehicles/{CAR}/audit", headers=api.owner)
            assert "feature.purchased" in {e["action"] for e in audit.json()["trail"]}

    run(scenario())


def test_what_cannot_be_delivered_is_refused_before_any_charge(tmp_path: Path) -> None:
    provider = CountingProvider()

    async def scenario() -> None:
        async with running_api(tmp_path, provider=provider) as api:
            url = f"/v1/vehicles/{CAR}/purchases"
            incompatible = await api.client.post(
                url, json={"feature": "extended-range", "idempotency_key": "a"}, headers=api.owner
            )
            assert incompatible.status_code == 422
            assert incompatible.json()["error"] == "incompatible"
            unknown = await api.client.post(
                url, json={"feature": "teleport", "idempotency_key": "b"}, headers=api.owner
            )
            assert unknown.status_code == 422
            assert unknown.json()["error"] == "unknown-feature"
            for who in (api.admin, api.viewer, api.service):
                body = {"feature": BOOST, "idempotency_key": "c"}
                assert (await api.client.post(url, json=body, headers=who)).status_code == 403
            old = Presence(PresenceStatus.ONLINE, 2, model="fl-sedan", firmware="2026.9")
            topic = api.settings.topic_map()[KafkaTopic.PRESENCE]
            api.kafka.append(topic, encode(old), OTHER.encode())
            time.sleep(0.3)
            owner_of_other = user_token(api.settings, "otto", UserRole.OWNER, [OTHER])
            too_old = await api.client.post(
                f"/v1/vehicles/{OTHER}/purchases",
                json={"feature": BOOST, "idempotency_key": "d"},
                headers=owner_of_other,
            )
            assert too_old.status_code == 422
            assert "needs firmware 2026.20" in too_old.json()["detail"]
            provider.away = True
            away = await api.client.post(
                url, json={"feature": BOOST, "idempotency_key": "e"}, headers=api.owner
            )
            assert away.status_code == 503
            assert away.headers["retry-after"]
            assert provider.charges == {}
            assert payments(api) == []

    run(scenario())


def _event(purchase_id: str, event_id: str = "evt_1") -> bytes:
    event = {
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": "pi_1",
                "object": "payment_intent",
                "amount": 120000,
                "currency": "eur",
                "status": "succeeded",
                "metadata": {"purchase_id": purchase_id, "vin": CAR, "feature": BOOST},
            }
        },
    }
    return json.dumps(event).encode()


def test_the_webhook_takes_only_what_the_provider_signed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path, provider=CountingProvider()) as api:
            secrets = webhook_secrets(api.settings)
            body = _event("p-1")
            now = int(time.time())

            async def post(raw: bytes, signature: str | None) -> int:
                headers = {"content-type": "application/json"}
                if signature is not None:
                    headers[SIGNATURE_HEADER] = signature
                reply = await api.client.post("/v1/payments/webhook", content=raw, headers=headers)
                if reply.status_code == 400:
                    assert reply.json()["error"] == "bad-signature"
                return reply.status_code

            assert await post(body, None) == 400
            assert await post(body, sign_header(body, ["whsec_wrong"], now)) == 400
            tampered = body.replace(b"120000", b"1")
            assert await post(tampered, sign_header(body, secrets, now)) == 400
            assert await post(body, sign_header(body, secrets, now - 301)) == 400
            assert payments(api) == []
            rotating = sign_header(body, ["whsec_next", *secrets], now)
            assert await post(body, rotating) == 200
            (stored,) = payments(api)
            assert isinstance(stored, ProviderEvent)
            assert (stored.event_id, stored.purchase_id, stored.vin) == ("evt_1", "p-1", CAR)
            unreadable = b'{"id": "evt_2", "type": "payment_intent.succeeded"}'
            assert await post(unreadable, sign_header(unreadable, secrets, now)) == 200
            assert len(payments(api)) == 1
            assert api.records(KafkaTopic.DLQ)[-1] == unreadable

    run(scenario())


def test_a_purchase_is_read_back_as_the_processor_wrote_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path, provider=CountingProvider()) as api:
            created = await api.client.post(
                f"/v1/vehicles/{CAR}/purchases",
                json={"feature": BOOST, "idempotency_key": "k"},
                headers=api.owner,
            )
            asked = msgspec.convert(created.json(), Purchase)
            done = msgspec.structs.replace(
                asked,
                state=PurchaseState.COMPLETED,
                history=[*asked.history, PurchaseStep(PurchaseState.COMPLETED, 5)],
            )
            topic = api.settings.topic_map()[KafkaTopic.PURCHASES]
            api.kafka.append(topic, encode(done), done.purchase_id.encode())
            url = f"/v1/purchases/{asked.purchase_id}"
            for _ in range(100):
                reply = await api.client.get(url, headers=api.owner)
                if reply.json()["state"] == "completed":
                    break
                time.sleep(0.01)
            assert reply.json()["state"] == "completed"
            assert [s["state"] for s in reply.json()["history"]] == ["pending-payment", "completed"]
            stranger = user_token(api.settings, "otto", UserRole.OWNER, [OTHER])
            assert (await api.client.get(url, headers=stranger)).status_code == 404
            listed = await api.client.get(f"/v1/vehicles/{CAR}/purchases", headers=api.admin)
            assert [p["purchase_id"] for p in listed.json()["purchases"]] == [asked.purchase_id]

    run(scenario())


def test_a_subscription_begins_with_its_free_trial_once_per_car(tmp_path: Path) -> None:
    provider = CountingProvider()

    async def scenario() -> None:
        async with running_api(tmp_path, provider=provider) as api:
            url = f"/v1/vehicles/{CAR}/purchases"
            body = {"feature": "heated-seats", "idempotency_key": "winter"}
            trial = await api.client.post(url, json=body, headers=api.owner)
            assert trial.status_code == 201, trial.text
            assert trial.json()["trial"] is True
            assert provider.calls == 0  # nothing charged now
            (requested,) = payments(api)
            assert isinstance(requested, PurchaseRequested)
            assert (requested.trial_days, requested.intent_id) == (7, None)
            ended = msgspec.structs.replace(
                msgspec.convert(trial.json(), Purchase), state=PurchaseState.ENDED
            )
            topic = api.settings.topic_map()[KafkaTopic.PURCHASES]
            api.kafka.append(topic, encode(ended), ended.purchase_id.encode())
            for _ in range(100):
                view = api.client._transport.app.state.purchases.view  # type: ignore[attr-defined]
                if view.purchase(ended.purchase_id).state is PurchaseState.ENDED:
                    break
                time.sleep(0.01)
            again = await api.client.post(
                url,
                json={"feature": "heated-seats", "idempotency_key": "spring"},
                headers=api.owner,
            )
            assert again.status_code == 201, again.text
            assert again.json()["trial"] is False
            assert provider.calls == 1  # the car had its trial: this one is paid

    run(scenario())
