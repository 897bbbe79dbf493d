"""Features on demand end to end, with the payment provider's chaos on: the API charges at the
provider simulator, its signed webhooks (duplicated, reordered, late, the endpoint down at
first) reach the API, the purchase processor turns them into entitlements in Kafka
transactions, the activator sends signed commands through the downlink to real cars, and
money goes back for every purchase a car does not take.

One platform for the module (gateway, tracker, API, provider simulator, purchase processor as
real processes); each test uses cars of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.contracts.codec import decode
from fleetlink.contracts.models import Command, CommandName
from fleetlink.contracts.purchases import Entitlement, feature_command_id
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.payments.secrets import webhook_secrets
from fleetlink.payments.signature import SIGNATURE_HEADER, sign_header
from fleetlink.security.users import UserRole
from fleetlink.settings import Settings
from fleetlink.settings.purchases import DEFAULT_FEATURES
from fleetlink.stack import LocalStack
from fleetlink.stack.ports import free_port_block
from fleetlink.vehicle.agent import VehicleAgent
from tests.support.commands import Platform, command_platform
from tests.support.polling import eventually
from tests.support.stack import user_token

BOOST = "performance-boost"
QUICK = {
    "id": "quick-seats",
    "name": "Heated seats, billed every 3 days",
    "price": 300,
    "currency": "eur",
    "kind": "subscription",
    "models": ["fl-sedan"],
    "min_firmware": "2026.10",
    "period_days": 3,
}
ACTIVATION_TTL_S = 4
CHAOS = {
    "confirm_delay_s": 0.2,
    "duplicate_p": 0.3,
    "reorder_p": 0.3,
    "max_delay_s": 0.3,
    "down_for_s": 1.5,  # the API is unreachable for the provider at first: retries carry
    "retry_first_s": 0.3,
    "retry_factor": 1.5,
}


@pytest.fixture(scope="module")
def shop(
    tmp_path_factory: pytest.TempPathFactory, local_stack: LocalStack, stack_config: Settings
) -> Iterator[Platform]:
    sim_port = free_port_block(1)
    sections = {
        "payments": {"simulator": {"port": sim_port, **CHAOS}},
        "purchases": {
            "activation_ttl_s": ACTIVATION_TTL_S,
            "provider_retry_s": 0.3,
            # a "day" of one second: QUICK's period passes in 3 s, renewed 1.5 s ahead
            "day_s": 1,
            "renew_ahead_days": 1.5,
            "features": [*(msgspec.to_builtins(f) for f in DEFAULT_FEATURES), QUICK],
        },
    }
    beside_api = [("payments", ["payments", "simulate"]), ("purchases", ["purchases", "run"])]
    with command_platform(
        tmp_path_factory.mktemp("purchases"), stack_config, sections=sections, beside_api=beside_api
    ) as running:
        eventually(lambda: _provider(running, "GET", "/v1/test/ledger") is not None, 20, "provider")
        yield running


def vin(n: int) -> str:
    return f"FEAZZZ1JZXW{n:06d}"


def _provider(
    platform: Platform, method: str, path: str, key: str | None = None, **body: Any
) -> Any:
    """The provider simulator asked directly (a support agent, a card holder, the test)."""
    sim = platform.settings.payments.simulator
    headers = {} if key is None else {"Idempotency-Key": key}
    try:
        with httpx.Client(base_url=f"http://{sim.host}:{sim.port}", timeout=10) as client:
            reply = client.request(method, path, json=body or None, headers=headers)
    except httpx.TransportError:
        return None
    assert reply.status_code == 200, reply.text
    return reply.json()


def owner_of(platform: Platform, car: str) -> dict[str, str]:
    return user_token(platform.settings, f"owner-{car[-4:]}", UserRole.OWNER, [car])


def buy(platform: Platform, car: str, key: str, feature: str = BOOST) -> httpx.Response:
    """As a client should: a 503 (the API still reading, Kafka slow) is asked again after its
    Retry-After, with the same idempotency key."""
    body = {"feature": feature, "idempotency_key": key}
    with platform.client(owner_of(platform, car)) as client:
        for _ in range(20):
            reply = client.post(f"/v1/vehicles/{car}/purchases", json=body)
            if reply.status_code != 503:
                return reply
            time.sleep(min(1.0, float(reply.headers.get("retry-after", "1"))))
    return reply


def purchase(platform: Platform, purchase_id: str) -> dict[str, Any]:
    with platform.client() as client:
        reply = client.get(f"/v1/purchases/{purchase_id}")
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body


def wait_purchase(
    platform: Platform, purchase_id: str, states: set[str], timeout: float = 30
) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def reached() -> bool:
        found.update(purchase(platform, purchase_id))
        return found["state"] in states

    eventually(reached, timeout, f"purchase {purchase_id} in {states}")
    return found


def ledger_of(platform: Platform, purchase_id: str) -> dict[str, list[dict[str, Any]]]:
    ledger = _provider(platform, "GET", "/v1/test/ledger")
    return {
        kind: [entry for entry in ledger[kind] if entry.get("purchase_id") == purchase_id]
        for kind in ("charges", "refunds", "disputes", "declines")
    }


def records(platform: Platform, topic: KafkaTopic) -> list[Any]:
    name = platform.settings.topic_map()[topic]
    return read_topic(KafkaClients.of(platform.settings), name)


def feature_commands(platform: Platform, car: str) -> list[Command]:
    commands = []
    for record in records(platform, KafkaTopic.COMMANDS):
        if record.key() == car.encode() and b'"feature.' in (record.value() or b""):
            commands.append(decode(Command, record.value()))
    return commands


def parked(platform: Platform, car: str, **state: Any) -> VehicleAgent:
    """A car that connected once (the platform knows its model and firmware), now away."""
    agent = platform.garage.agent(car)
    for name, value in state.items():
        setattr(agent.state, name, value)
    platform.start_car(car)
    platform.stop_car(car)
    return agent


def test_bought_paid_and_turned_on_once_whatever_is_delivered_again(shop: Platform) -> None:
    car = shop.start_car(vin(1))
    first = buy(shop, vin(1), "winter")
    assert first.status_code == 201, first.text
    purchase_id = first.json()["purchase_id"]
    assert buy(shop, vin(1), "winter").json()["purchase_id"] == purchase_id  # a retry
    done = wait_purchase(shop, purchase_id, {"completed"})
    assert [step["state"] for step in done["history"]] == [
        "pending-payment",
        "activating",
        "completed",
    ]
    assert BOOST in car.state.features
    with shop.client(owner_of(shop, vin(1))) as client:
        features = {
            f["id"]: f for f in client.get(f"/v1/vehicles/{vin(1)}/features").json()["features"]
        }
    assert features[BOOST]["has"] is True
    assert features[BOOST]["can_buy"] is False

    # the provider's success event three times more, signed, then again after a kill -9
    intent = _provider(shop, "GET", f"/v1/payment_intents/{done['intent_id']}")
    event = {
        "id": f"evt_again_{purchase_id[:8]}",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {"object": intent},
    }
    raw = json.dumps(event).encode()
    secrets = webhook_secrets(shop.settings)

    def deliver(body: bytes, signature: str) -> int:
        with shop.client({}) as client:
            headers = {SIGNATURE_HEADER: signature, "content-type": "application/json"}
            return client.post("/v1/payments/webhook", content=body, headers=headers).status_code

    for _ in range(3):
        assert deliver(raw, sign_header(raw, secrets, int(time.time()))) == 200
    assert deliver(raw, sign_header(raw, ["whsec_forged"], int(time.time()))) == 400
    processor = shop.service("purchases")
    old_pid = processor.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    eventually(lambda: processor.running and processor.pid != old_pid, 20, "processor restarted")
    assert deliver(raw, sign_header(raw, secrets, int(time.time()))) == 200
    time.sleep(1.0)  # what the restarted processor and activator would do, they have done

    ledger = ledger_of(shop, purchase_id)
    assert len(ledger["charges"]) == 1
    assert ledger["refunds"] == []
    entitlements = [
        decode(Entitlement, r.value())
        for r in records(shop, KafkaTopic.ENTITLEMENTS)
        if r.key() == f"{vin(1)}/{BOOST}".encode()
    ]
    assert [(e.active, e.version) for e in entitlements] == [(True, 1)]
    activations = {c.command_id for c in feature_commands(shop, vin(1))}
    assert activations == {feature_command_id(entitlements[0])}
    assert car.executor.executed == 1
    assert purchase(shop, purchase_id)["history"] == done["history"]


def test_a_refund_before_the_car_took_it_leaves_the_feature_off(shop: Platform) -> None:
    car = parked(shop, vin(2))
    purchase_id = buy(shop, vin(2), "k").json()["purchase_id"]
    paid = wait_purchase(shop, purchase_id, {"activating"})
    refund = _provider(
        shop,
        "POST",
        "/v1/refunds",
        key="support-desk-1",
        payment_intent=paid["intent_id"],
        reason="the customer changed their mind",
    )
    assert refund["status"] == "succeeded"
    refunded = wait_purchase(shop, purchase_id, {"refunded"})
    assert refunded["reason"].startswith("refunded")
    shop.start_car(vin(2))

    def off_for_good() -> bool:
        names = [c.name for c in feature_commands(shop, vin(2))]
        return CommandName.FEATURE_DEACTIVATE in names and car.executor.executed >= 1

    eventually(off_for_good, 20, "the feature turned off at the car")
    eventually(lambda: BOOST not in car.state.features, 10, "the feature off")
    assert len(ledger_of(shop, purchase_id)["charges"]) == 1
    assert len(ledger_of(shop, purchase_id)["refunds"]) == 1


def test_a_car_away_past_the_activation_time_gets_the_money_back(shop: Platform) -> None:
    car = parked(shop, vin(3))
    purchase_id = buy(shop, vin(3), "k").json()["purchase_id"]
    refunded = wait_purchase(shop, purchase_id, {"refunded"}, timeout=ACTIVATION_TTL_S + 25)
    steps = [step["state"] for step in refunded["history"]]
    assert steps == ["pending-payment", "activating", "refunding", "refunded"]
    assert (
        "expired" in refunded["history"][2]["reason"]
        or "not turned on" in (refunded["history"][2]["reason"])
    )
    ledger = ledger_of(shop, purchase_id)
    assert (len(ledger["charges"]), len(ledger["refunds"])) == (1, 1)
    shop.start_car(vin(3))
    time.sleep(1.5)
    assert BOOST not in car.state.features


def test_a_car_that_cannot_take_the_feature_refuses_it_and_is_refunded(shop: Platform) -> None:
    car = shop.garage.agent(vin(4))
    car.state.equipment = frozenset({"heated-seats"})  # no hardware for the boost
    shop.start_car(vin(4))
    purchase_id = buy(shop, vin(4), "k").json()["purchase_id"]
    refunded = wait_purchase(shop, purchase_id, {"refunded"})
    assert refunded["history"][2]["reason"].startswith("activation rejected: not-equipped")
    assert "not-equipped" in refunded["history"][2]["reason"]
    assert BOOST not in car.state.features
    assert len(ledger_of(shop, purchase_id)["refunds"]) == 1


def test_an_incompatible_car_or_a_declined_card_is_never_charged(shop: Platform) -> None:
    parked(shop, vin(5), model="fl-van")
    before = _provider(shop, "GET", "/v1/test/ledger")
    refused = buy(shop, vin(5), "k")
    assert refused.status_code == 422
    assert refused.json()["error"] == "incompatible"
    assert "fl-van" in refused.json()["detail"]
    after = _provider(shop, "GET", "/v1/test/ledger")
    assert (after["charges"], after["declines"]) == (before["charges"], before["declines"])

    parked(shop, vin(6))
    _provider(shop, "POST", "/v1/test/chaos", decline_p=1.0)
    try:
        purchase_id = buy(shop, vin(6), "k").json()["purchase_id"]
        failed = wait_purchase(shop, purchase_id, {"failed"})
    finally:
        _provider(shop, "POST", "/v1/test/chaos", decline_p=0.0)
    assert failed["reason"].startswith("payment declined")
    assert ledger_of(shop, purchase_id)["charges"] == []
    assert not any(
        r.key() == f"{vin(6)}/{BOOST}".encode() for r in records(shop, KafkaTopic.ENTITLEMENTS)
    )


def test_a_subscription_renews_each_period_and_stops_when_cancelled(shop: Platform) -> None:
    car = shop.start_car(vin(7))
    purchase_id = buy(shop, vin(7), "monthly", feature="quick-seats").json()["purchase_id"]
    first = wait_purchase(shop, purchase_id, {"completed"})
    first_until = car.state.feature_until["quick-seats"]
    assert abs(first_until - first["paid_until"]) < 1000

    def renewed() -> bool:
        return purchase(shop, purchase_id)["period"] >= 2

    eventually(renewed, 15, "the second period paid")
    assert len(ledger_of(shop, purchase_id)["charges"]) >= 2
    eventually(
        lambda: car.state.feature_until.get("quick-seats", 0) > first_until,
        10,
        "the car told the new end of its paid period",
    )
    with shop.client(owner_of(shop, vin(7))) as client:
        cancel = client.post(f"/v1/purchases/{purchase_id}/cancel")
    assert cancel.status_code == 202, cancel.text
    charged = len(ledger_of(shop, purchase_id)["charges"])
    ended = wait_purchase(shop, purchase_id, {"ended"}, timeout=15)
    assert ended["reason"] == "subscription over: cancelled"
    eventually(lambda: "quick-seats" not in car.state.features, 10, "seats off at the car")
    assert len(ledger_of(shop, purchase_id)["charges"]) == charged <= 3
    assert ledger_of(shop, purchase_id)["refunds"] == []


def test_a_sale_ends_the_sellers_subscription_and_the_car_keeps_its_boost(shop: Platform) -> None:
    car = shop.start_car(vin(8))
    boost = buy(shop, vin(8), "boost").json()["purchase_id"]
    seats = buy(shop, vin(8), "seats", feature="quick-seats").json()["purchase_id"]
    wait_purchase(shop, boost, {"completed"})
    wait_purchase(shop, seats, {"completed"})
    buyer = user_token(shop.settings, "buyer-8", UserRole.OWNER, [])
    with shop.client() as client:
        sale = client.post(f"/v1/vehicles/{vin(8)}/owner", json={"owner": "buyer-8"})
    assert sale.status_code == 200, sale.text
    ended = wait_purchase(shop, seats, {"ended"})
    assert "changed hands" in ended["reason"]
    eventually(lambda: "quick-seats" not in car.state.features, 10, "seats off at the car")
    assert BOOST in car.state.features
    assert purchase(shop, boost)["state"] == "completed"
    with shop.client(buyer) as client:
        features = {
            f["id"]: f for f in client.get(f"/v1/vehicles/{vin(8)}/features").json()["features"]
        }
        mine = client.get(f"/v1/vehicles/{vin(8)}/purchases").json()["purchases"]
    assert features[BOOST]["has"] is True
    assert [p["purchase_id"] for p in mine] == [boost]  # the seller's subscription is not shown


def processor_joined(shop: Platform) -> bool:
    """The processor's consumer (its static member id) is in its group: past its start."""
    group = shop.settings.purchases.group_id
    admin = KafkaClients.of(shop.settings).admin()
    described = admin.describe_consumer_groups([group])[group].result(10)
    return any(m.group_instance_id == f"{group}-1" for m in described.members)


def test_a_paused_processor_that_wakes_up_is_fenced_by_its_successor(shop: Platform) -> None:
    """A zombie: the processor stops (SIGSTOP: a long GC pause, a frozen VM), a successor with
    the same transactional id takes over; the old one, woken, can commit nothing and exits."""
    processor = shop.service("purchases")
    zombie = processor.process
    assert zombie is not None
    # paused before its loop (in its own start, which fences whoever held the id), it would wake
    # up as the rightful processor: pause it once it has joined its group
    eventually(lambda: processor_joined(shop), 30, "the processor in its consumer group")
    zombie.send_signal(signal.SIGSTOP)
    successor = subprocess.Popen(
        [sys.executable, "-m", "fleetlink", "--config", str(shop.config), "purchases", "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        car = shop.start_car(vin(9))
        purchase_id = buy(shop, vin(9), "k").json()["purchase_id"]
        wait_purchase(shop, purchase_id, {"completed"}, timeout=40)  # the successor's work
        assert BOOST in car.state.features
        zombie.send_signal(signal.SIGCONT)
        eventually(lambda: zombie.poll() is not None, 30, "the woken zombie fenced and gone")
        assert zombie.returncode != 0
    finally:
        zombie.send_signal(signal.SIGCONT)
        successor.kill()
        successor.wait(10)
    # the supervisor's fresh one fences the successor in turn and carries on alone
    eventually(lambda: processor.running and processor.process is not zombie, 20, "restarted")
    again = buy(shop, vin(9), "seats", feature="quick-seats").json()["purchase_id"]
    wait_purchase(shop, again, {"completed"}, timeout=40)
    assert len(ledger_of(shop, purchase_id)["charges"]) == 1
