"""Helpers of the edge-cloud tests: a run's own topics on both sides, keyed records with the
platform's headers."""

from __future__ import annotations

import uuid
from typing import Any

from fleetlink.adapters.kafka.admin import ensure_topics
from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.contracts import headers as h
from fleetlink.contracts.topics import PRODUCTION_TOPICS, Site, TopicMap
from fleetlink.stack import LocalStack


def run_topics(stack: LocalStack) -> TopicMap:
    """This test's own topics, made on both sides as ``topics ensure`` makes them."""
    topics = PRODUCTION_TOPICS.prefixed(f"ec{uuid.uuid4().hex[:8]}")
    for site in Site:
        ensure_topics(KafkaClients.at(stack.bootstrap_servers(site)), topics, partitions=3)
    return topics


def send(
    stack: LocalStack, site: Site, topic: str, count: int, vins: int = 7, producer: Any = None
) -> list[str]:
    """``count`` records keyed by VIN with the platform's headers; their ids in send order."""
    producer = producer or KafkaClients.at(stack.bootstrap_servers(site)).producer()
    ids = []
    for seq in range(count):
        record_id = uuid.uuid4().hex
        producer.produce(
            topic,
            key=f"VIN{seq % vins:014d}".encode(),
            value=f'{{"seq": {seq}}}'.encode(),
            headers=[(h.MESSAGE_ID, record_id.encode()), (h.SOURCE, b"mqtt"), ("seq", str(seq))],
        )
        ids.append(record_id)
    assert producer.flush(30) == 0
    return ids
