"""A consumer's fatal error ends its caller, however librdkafka reports it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from confluent_kafka import KafkaError

from fleetlink.adapters.kafka.consume import FatalConsumerError, is_fatal, usable


@dataclass
class Polled:
    """What ``Consumer.poll`` returns, as far as ``usable`` reads it."""

    problem: KafkaError | None = None

    def error(self) -> KafkaError | None:
        return self.problem


def test_a_fenced_static_member_is_fatal_though_its_error_says_not() -> None:
    # what consumer_poll returns after FENCED_INSTANCE_ID: code _FATAL, fatal() False
    fenced = KafkaError(KafkaError._FATAL, "Static consumer fenced by other consumer")
    assert fenced.fatal() is False
    assert is_fatal(fenced)
    with pytest.raises(FatalConsumerError, match="fenced"):
        usable([Polled(), Polled(fenced)])  # type: ignore[list-item]


def test_a_passing_error_is_skipped_and_records_kept() -> None:
    record, end = Polled(), Polled(KafkaError(KafkaError._PARTITION_EOF))
    assert not is_fatal(KafkaError(KafkaError._TRANSPORT))
    assert usable([record, end]) == [record]  # type: ignore[list-item]
