"""The topic admin returns only once the broker's metadata shows what it created (the demo's
parking app died reading back a repartition topic the controller had made a moment before)."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest
from quixstreams.models.topics import Topic
from quixstreams.models.topics.exceptions import CreateTopicFailure

from fleetlink.apps.runtime.topic_admin import PromptTopicAdmin


class LaggingMetadata:
    """An admin client whose created topics appear in the metadata after ``lag`` reads, first
    without a leader."""

    def __init__(self, lag: int) -> None:
        self.lag = lag
        self.created: dict[str, int] = {}
        self.reads = 0

    def create_topics(
        self, new_topics: list[Any], request_timeout: float
    ) -> dict[str, Future[None]]:
        futures: dict[str, Future[None]] = {}
        for topic in new_topics:
            self.created[topic.topic] = self.reads
            futures[topic.topic] = Future()
            futures[topic.topic].set_result(None)
        return futures

    def list_topics(self, timeout: float) -> Any:
        self.reads += 1
        topics = {}
        for name, at in self.created.items():
            age = self.reads - at
            if age > self.lag:
                leader = 1 if age > self.lag + 1 else -1
                partition = SimpleNamespace(leader=leader)
                topics[name] = SimpleNamespace(error=None, partitions={0: partition})
        return SimpleNamespace(topics=topics)

    def visible(self, name: str) -> bool:
        return self.reads - self.created[name] > self.lag + 1


def admin_over(client: LaggingMetadata) -> PromptTopicAdmin:
    admin = PromptTopicAdmin(broker_address="127.0.0.1:1")
    admin._inner_admin = client  # type: ignore[assignment]
    return admin


def test_create_returns_once_the_topic_has_a_leader_in_the_metadata() -> None:
    client = LaggingMetadata(lag=3)
    admin_over(client).create_topics([Topic("repartition__x")], timeout=1, finalize_timeout=5)
    assert client.visible("repartition__x")


def test_a_topic_that_never_shows_is_a_clear_failure() -> None:
    client = LaggingMetadata(lag=10**9)
    with pytest.raises(CreateTopicFailure, match="not visible"):
        admin_over(client).create_topics([Topic("never")], timeout=1, finalize_timeout=0.3)
