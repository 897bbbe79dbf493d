"""Subscriptions and ownership through the API without a broker: a subscriber cancels, a fleet
admin records a sale; each goes to fleet.payments for the processor, and is audited."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from fleetlink.contracts.codec import decode, encode
from fleetlink.contracts.purchases import (
    FeatureKind,
    OwnerChanged,
    PaymentRecord,
    Purchase,
    PurchaseState,
    PurchaseStep,
    SubscriptionCancelled,
)
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.security.users import UserRegistry, UserRole
from tests.support.api import CAR, Api, run, running_api
from tests.support.stack import user_token
from tests.unit.api.test_purchases_api import CountingProvider

SEATS = Purchase(
    purchase_id="s-1", vin=CAR, feature="heated-seats", owner="olga", amount=1500,
    currency="eur", kind=FeatureKind.SUBSCRIPTION, state=PurchaseState.COMPLETED, created_at=1,
    updated_at=2, history=[PurchaseStep(PurchaseState.COMPLETED, 2)], period_days=30,
)  # fmt: skip


async def known(api: Api, purchase: Purchase) -> None:
    topic = api.settings.topic_map()[KafkaTopic.PURCHASES]
    api.kafka.append(topic, encode(purchase), purchase.purchase_id.encode())
    view = api.client._transport.app.state.purchases.view  # type: ignore[attr-defined]
    for _ in range(300):
        if view.purchase(purchase.purchase_id) == purchase:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the API's view never read the purchase")


def payments(api: Api) -> list[object]:
    return [decode(PaymentRecord, raw) for raw in api.records(KafkaTopic.PAYMENTS)]  # type: ignore[arg-type]


def test_a_subscriber_cancels_once_and_only_a_running_subscription(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path, provider=CountingProvider()) as api:
            await known(api, SEATS)
            url = "/v1/purchases/s-1/cancel"
            stranger = user_token(api.settings, "otto", UserRole.OWNER, [])
            assert (await api.client.post(url, headers=stranger)).status_code == 404
            assert (await api.client.post(url, headers=api.viewer)).status_code == 403
            reply = await api.client.post(url, headers=api.owner)
            assert reply.status_code == 202, reply.text
            assert reply.json()["cancel_requested"] is True
            (cancel,) = payments(api)
            assert cancel == SubscriptionCancelled("s-1", "olga", cancel.ts)  # type: ignore[attr-defined]
            await known(api, msgspec.structs.replace(SEATS, cancel_at_period_end=True))
            again = await api.client.post(url, headers=api.owner)
            assert again.status_code == 409
            assert again.json()["error"] == "not-cancellable"
            once = msgspec.structs.replace(
                SEATS, purchase_id="b-1", feature="performance-boost", kind=FeatureKind.ONE_TIME
            )
            await known(api, once)
            bought = await api.client.post("/v1/purchases/b-1/cancel", headers=api.owner)
            assert bought.status_code == 409
            assert bought.json()["error"] == "not-a-subscription"

    run(scenario())


def test_a_sale_moves_the_car_and_ends_the_sellers_subscriptions(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path, provider=CountingProvider()) as api:
            url = f"/v1/vehicles/{CAR}/owner"
            assert (
                await api.client.post(url, json={"owner": "otto"}, headers=api.owner)
            ).status_code == 403
            nobody = await api.client.post(url, json={"owner": "otto"}, headers=api.admin)
            assert nobody.status_code == 422
            assert nobody.json()["error"] == "not-an-owner"
            otto = user_token(api.settings, "otto", UserRole.OWNER, [])
            reply = await api.client.post(url, json={"owner": "otto"}, headers=api.admin)
            assert reply.status_code == 200, reply.text
            assert reply.json() == {"vin": CAR, "owner": "otto", "previous": "olga"}
            (sale,) = payments(api)
            assert isinstance(sale, OwnerChanged)
            assert (sale.vin, sale.previous, sale.owner, sale.by) == (CAR, "olga", "otto", "ada")
            users = UserRegistry(api.settings.users_file())
            assert CAR not in users.get("olga").vins  # type: ignore[union-attr]
            assert CAR in users.get("otto").vins  # type: ignore[union-attr]
            features = await api.client.get(f"/v1/vehicles/{CAR}/features", headers=otto)
            assert features.status_code == 200
            gone = await api.client.get(f"/v1/vehicles/{CAR}/features", headers=api.owner)
            assert gone.status_code == 403
            trail = (await api.client.get(f"/v1/vehicles/{CAR}/audit", headers=api.admin)).json()
            assert "owner.changed" in {event["action"] for event in trail["trail"]}

    run(scenario())
