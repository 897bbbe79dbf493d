"""Quix Streams' topic admin, without its second of sleep per topic.

Quix creates each internal topic (a changelog per state store, a repartition topic per
``group_by``) on its own when the app is built, and confirms it after sleeping a whole second
first: an app with five internal topics took five seconds longer to start the first time than
Kafka needed. This admin waits on Kafka's own answer instead; otherwise it does what Quix's does
(a topic that exists already, or was just made by another instance, is fine).
"""

from __future__ import annotations

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
