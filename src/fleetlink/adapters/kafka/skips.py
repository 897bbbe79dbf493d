"""Kafka records a consumer cannot use: skipped with a reason, counted, logged, never fatal.

A record that cannot be read stays where it is in its topic (nothing is lost), the consumer
moves on. A record its consumer died on again and again (poison) is also copied to the
dead-letter topic, with where it came from, so an operator finds it there beside the rest.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Final, Self

from confluent_kafka import Message, Producer

from fleetlink.adapters.runtime.faults import FaultHook
from fleetlink.adapters.runtime.poison import PoisonJournal, digest
from fleetlink.contracts import headers as h
from fleetlink.contracts.codec import DlqReason, UndecodableError
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings import Settings

_LOG_EVERY_S: Final = 1.0  # per topic and reason: a topic full of garbage must not flood the log

Headers = list[tuple[str, bytes]]


class SkippedRecords:
    def __init__(
        self, log: logging.Logger, on_skip: Callable[[str, str], None] | None = None
    ) -> None:
        self._log = log
        self._on_skip = on_skip
        self.counts: Counter[tuple[str, str]] = Counter()
        self._logged_at: dict[tuple[str, str], float] = {}

    def skip(self, message: Message, error: UndecodableError) -> None:
        topic = message.topic() or "?"
        pair = (topic, error.reason.value)
        self.counts[pair] += 1
        if self._on_skip is not None:
            self._on_skip(*pair)
        now = time.monotonic()
        if now - self._logged_at.get(pair, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            self._logged_at[pair] = now
            self._log.warning(
                "unreadable record skipped",
                extra={
                    "topic": topic,
                    "partition": message.partition(),
                    "offset": message.offset(),
                    "reason": error.reason.value,
                    "detail": error.detail[:300],
                    "skipped": self.counts[pair],
                },
            )

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def record_digest(message: Message) -> bytes:
    """The poison journal's name of a record: where it is, which never changes."""
    where = f"{message.topic()}/{message.partition()}/{message.offset()}"
    return digest(where.encode())


def dead_letter_headers(message: Message, reason: DlqReason, detail: str) -> Headers:
    """The record's own headers, then the reason and where it came from."""
    own = [(name, value or b"") for name, value in message.headers() or ()]
    return [
        *own,
        (h.DLQ_REASON, reason.value.encode()),
        (h.DLQ_DETAIL, detail[:512].encode(errors="replace")),
        (h.SOURCE_TOPIC, (message.topic() or "").encode()),
        (h.SOURCE_PARTITION, str(message.partition()).encode()),
        (h.SOURCE_OFFSET, str(message.offset()).encode()),
    ]


class PoisonGuard:
    """Around each record a consumer handles: a poison record goes to the dead-letter topic
    instead, every other one is noted in the journal until ``done``."""

    def __init__(
        self,
        journal: PoisonJournal,
        faults: FaultHook,
        producer: Producer,
        dlq_topic: str,
        log: logging.Logger,
        who: str = "the consumer",
    ) -> None:
        self._who = who
        self._journal = journal
        self._faults = faults
        self._producer = producer
        self._dlq_topic = dlq_topic
        self._log = log

    @classmethod
    def of(cls, settings: Settings, name: str, producer: Producer, log: logging.Logger) -> Self:
        """The guard of the consumer ``name`` (unique per process identity), as configured."""
        journal = PoisonJournal.of(settings, name, log)
        faults = FaultHook(settings.runtime.crash_on)
        dlq_topic = settings.topic_map()[KafkaTopic.DLQ]
        return cls(journal, faults, producer, dlq_topic, log, who=name)

    def poisoned(self, message: Message) -> bool:
        """True when ``message`` was dead-lettered as poison; else it is now in hand."""
        key = record_digest(message)
        if not self._journal.is_poison(key):
            self._journal.holding(key)
            self._faults.check(message.value())
            return False
        crashes = self._journal.crashes(key)
        detail = f"{self._who} died {crashes} times handling it"
        self._log.error(
            "poison record dead-lettered",
            extra={"topic": message.topic(), "offset": message.offset(), "crashes": crashes},
        )
        headers = dead_letter_headers(message, DlqReason.POISON, detail)
        self._producer.produce(
            self._dlq_topic, key=message.key(), value=message.value(), headers=headers
        )
        return True

    def done(self) -> None:
        self._journal.done()
