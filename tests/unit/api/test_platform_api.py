"""The platform panel's figures without a broker: dead letters by reason from fleet.dlq,
vehicles online from fleet.presence, commands by state; only admins and viewers see it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fleetlink.contracts import headers as h
from fleetlink.contracts.topics import KafkaTopic
from tests.support.api import run, running_api


def test_dead_letters_by_reason_cars_online_and_who_may_look(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_api(tmp_path) as api:
            dlq = api.settings.topic_map()[KafkaTopic.DLQ]
            for reason in (b"schema", b"schema", b"poison"):
                api.kafka.append(dlq, b"{", b"WVWZZZ1JZXW000001", [(h.DLQ_REASON, reason)])
            api.kafka.append(dlq, b"{", b"x")  # no reason told: counted as unknown
            for _ in range(200):
                reply = await api.client.get("/v1/platform", headers=api.viewer)
                assert reply.status_code == 200, reply.text
                panel = reply.json()
                if sum(panel["dead_letters"].values()) == 4:
                    break
                await asyncio.sleep(0.02)
            assert panel["dead_letters"] == {"schema": 2, "poison": 1, "unknown": 1}
            assert panel["vehicles"] == {"online": 2, "known": 2}  # the hermetic fleet
            assert panel["topics"] == []
            assert panel["sampled_at"] is None
            owner = await api.client.get("/v1/platform", headers=api.owner)
            assert owner.status_code == 403
            assert (await api.client.get("/v1/platform")).status_code == 401

    run(scenario())
