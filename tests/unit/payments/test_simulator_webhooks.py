"""The payment simulator's webhooks: at least once (retries, giving up), duplicates with the
same id, reordering, and an endpoint down; each attempt signed anew."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx

from fleetlink.payments.signature import SIGNATURE_HEADER, verify
from tests.unit.payments.sim_support import SECRETS, Receiver, Sim, run, simulator


class TickingClock:
    """A clock a second further on at each reading: every signature has its own time."""

    def __init__(self) -> None:
        self.now = 1_764_000_000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def test_failed_deliveries_are_retried_until_taken(tmp_path: Path) -> None:
    async def scenario(sim: Sim) -> None:
        await sim.pay()
        hooks = (await sim.settled(2))["webhooks"]
        assert (hooks["attempts"], hooks["delivered"], hooks["failed_for_good"]) == (6, 2, 0)

    # 500, 500, then 200 for each event
    receiver = run(tmp_path, scenario, clock=TickingClock(), fail=2)
    assert sorted(receiver.types()) == ["charge.succeeded", "payment_intent.succeeded"]
    assert set(receiver.tries.values()) == {3}
    # each attempt signed anew, with its own time (as Stripe does): a retry is never stale
    stamps = []
    for request in receiver.requests:
        header = request.headers[SIGNATURE_HEADER]
        stamp = int(header.split(",")[0].removeprefix("t="))
        assert verify(request.content, header, SECRETS, now_s=stamp, tolerance_s=0) == stamp
        stamps.append(stamp)
    assert len(set(stamps)) == 6


def refused() -> httpx.Response:
    raise httpx.ConnectError("connection refused")


def test_unreachable_endpoints_are_retried_and_given_up(tmp_path: Path) -> None:
    receiver = Receiver(fail=99, error=refused)

    async def main() -> None:
        async with simulator(tmp_path, receiver, max_attempts=3) as sim:
            await sim.pay()
            hooks = (await sim.settled(2))["webhooks"]
            assert (hooks["attempts"], hooks["delivered"], hooks["failed_for_good"]) == (6, 0, 2)

    asyncio.run(main())
    assert len(receiver.requests) == 6


def test_duplicates_carry_the_same_event_id(tmp_path: Path) -> None:
    async def scenario(sim: Sim) -> None:
        await sim.pay()
        hooks = (await sim.settled(2))["webhooks"]
        assert (hooks["events"], hooks["duplicates_sent"], hooks["delivered"]) == (2, 2, 4)

    receiver = run(tmp_path, scenario, duplicate_p=1.0)
    assert sorted(Counter(event["id"] for event in receiver.delivered).values()) == [2, 2]


def test_reordering_lets_a_later_event_overtake(tmp_path: Path) -> None:
    async def scenario(sim: Sim) -> None:
        await sim.pay()
        await sim.settled(2)

    # made in this order: charge.succeeded, then payment_intent.succeeded
    assert run(tmp_path, scenario).types() == ["charge.succeeded", "payment_intent.succeeded"]
    assert run(tmp_path, scenario, reorder_p=1.0).types() == [
        "payment_intent.succeeded",
        "charge.succeeded",
    ]


def test_while_down_attempts_fail_without_a_call(tmp_path: Path) -> None:
    async def scenario(sim: Sim) -> None:
        knobs = (await sim.client.post("/v1/test/chaos", json={"down_for_s": 3600})).json()
        assert 3599 < knobs["down_for_s"] <= 3600
        await sim.pay()
        await sim.until(lambda ledger: ledger["webhooks"]["attempts"] >= 6, idle=False)
        assert sim.receiver.requests == []  # the failed attempts never reached it
        await sim.client.post("/v1/test/chaos", json={"down_for_s": 0})  # back up
        hooks = (await sim.settled(2))["webhooks"]
        assert hooks["delivered"] == 2

    receiver = run(tmp_path, scenario, max_attempts=1000)
    assert len(receiver.requests) == 2


def test_down_from_the_start_and_given_up(tmp_path: Path) -> None:
    async def scenario(sim: Sim) -> None:
        await sim.pay()
        hooks = (await sim.settled(2))["webhooks"]
        assert (hooks["attempts"], hooks["failed_for_good"]) == (4, 2)

    assert run(tmp_path, scenario, down_for_s=60, max_attempts=2).requests == []
