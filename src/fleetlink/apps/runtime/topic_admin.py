"""Quix Streams' topic admin, without its second of sleep per topic.

Quix creates each internal topic (a changelog per state store, a repartition topic per
``group_by``) on its own when the app is built, and confirms it after sleeping a whole second
first: an app with five internal topics took five seconds longer to start the first time than
Kafka needed. This admin waits on Kafka's own answer instead, then until the broker's metadata
shows the new topics with a leader for every partition (the controller answers before the broker
knows them, and Quix reads the topic back at once); otherwise it does what Quix's does (a topic
that exists already, or was just made by another instance, is fine).
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic
from quixstreams.models.topics import Topic
from quixstreams.models.topics.admin import TopicAdmin
from quixstreams.models.topics.exceptions import CreateTopicFailure


class PromptTopicAdmin(TopicAdmin):
    def create_topics(
        self, topics: list[Topic], timeout: float = 30, finalize_timeout: float = 60
    ) -> None:
        existing = self.list_topics(timeout=timeout)
        missing = [topic for topic in topics if topic.name not in existing]
        if not missing:
            return
        futures = self.admin_client.create_topics(
            [_new_topic(topic) for topic in missing], request_timeout=timeout
        )
        failures: dict[str, str] = {}
        for name, future in futures.items():
            try:
                future.result(finalize_timeout)
            except KafkaException as failure:
                error = failure.args[0]
                if error.name() != "TOPIC_ALREADY_EXISTS":  # another instance was quicker
                    failures[name] = error.str()
        if failures:
            raise CreateTopicFailure(f"Failed to create topics: {failures}")
        self._await_visible([topic.name for topic in missing], finalize_timeout)

    def _await_visible(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CreateTopicFailure(
                    f"Topics created but not visible after {timeout} s: {names}"
                )
            known = self.list_topics(timeout=max(left, 0.1))
            if all(_ready(known.get(name)) for name in names):
                return
            time.sleep(min(0.05, left))


def _ready(metadata: Any) -> bool:
    return (
        metadata is not None
        and metadata.error is None
        and bool(metadata.partitions)
        and all(p.leader >= 0 for p in metadata.partitions.values())
    )


def _new_topic(topic: Topic) -> Any:
    config = topic.create_config
    if config is None:
        return NewTopic(topic=topic.name)
    return NewTopic(
        topic=topic.name,
        num_partitions=config.num_partitions,
        replication_factor=config.replication_factor,
        config=config.extra_config,
    )
