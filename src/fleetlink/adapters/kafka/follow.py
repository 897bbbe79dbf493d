"""Follow topics from their beginning in a thread: the way every read model reads Kafka.

No consumer group: each process holds the whole picture. ``ready`` is set once every partition
was read to its end; a Kafka outage is waited out, never fatal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from confluent_kafka import KafkaException

from fleetlink.adapters.kafka.seams import PARTITION_EOF, RecordSource, SourceRecord
from fleetlink.adapters.kafka.skips import SkippedRecords

Handler = Callable[[list[SourceRecord]], None]
T = TypeVar("T")


class Listeners(Generic[T]):
    """Who hears a read model's news (live streams), called from its reading thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Callable[[list[T]], None]] = []

    def listen(self, listener: Callable[[list[T]], None]) -> Callable[[], None]:
        """Call ``listener`` with each batch of news; returns unlisten."""
        with self._lock:
            self._listeners.append(listener)

        def unlisten() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unlisten

    def tell(self, news: list[T]) -> None:
        if not news:
            return
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(news)


class TopicFollower:
    def __init__(
        self,
        source: RecordSource,
        topics: Sequence[str],
        handle: Handler,
        log: logging.Logger,
        *,
        name: str,
        batch: int = 1000,
    ) -> None:
        """``handle`` gets each batch of records read (errors and partition ends left out), in
        this follower's thread."""
        self._source = source
        self._topics = list(topics)
        self._handle = handle
        self._log = log
        self._batch = batch
        self._stop = threading.Event()
        self._unread: set[tuple[str, int]] = set()
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def alive(self) -> bool:
        """False once the thread has ended without being told to stop."""
        return self._thread.is_alive() or self._stop.is_set()

    def start(self) -> None:
        self._thread.start()

    def halt(self) -> None:
        """Tell the thread to stop without waiting for it."""
        self._stop.set()

    def stop(self) -> None:
        self.halt()
        if self._thread.is_alive():
            self._thread.join(5)
        self._source.close()

    def _assign(self) -> bool:
        partitions = self._source.start(self._topics, timeout=2)
        if partitions is None:
            return False  # Kafka away, or a topic not created yet
        self._unread = set(partitions)
        if not self._unread:
            self.ready.set()
        return True

    def _run(self) -> None:
        while not self._assign():
            if self._stop.wait(1.0):
                return
        while not self._stop.is_set():
            try:
                messages = self._source.take(self._batch, 0.1)
            except KafkaException as failure:  # a read model must outlive a Kafka outage
                self._log.warning("Kafka read error", extra={"error": str(failure)})
                self._stop.wait(0.5)
                continue
            records: list[SourceRecord] = []
            for message in messages:
                error = message.error()
                if error is None:
                    records.append(message)
                elif error.code() == PARTITION_EOF:
                    self._unread.discard((message.topic() or "", message.partition() or 0))
                else:
                    self._log.warning("Kafka consume error", extra={"error": error.str()})
            if records:
                self._handle(records)
            if not self._unread and not self.ready.is_set():
                self.ready.set()


class FollowedModel(Generic[T]):
    """A read model kept from topics followed from their beginning: the follower's thread
    hands each batch to ``_take`` under ``_lock`` (readers take it too; it is reentrant, so a
    model's own locked methods serve its ``_take``), and tells listeners the news it returns,
    out of the lock."""

    def __init__(
        self, source: RecordSource, topics: Sequence[str], log: logging.Logger, *, name: str
    ) -> None:
        self._lock = threading.RLock()
        self._listeners: Listeners[T] = Listeners()
        self.skipped = SkippedRecords(log)
        self._follower = TopicFollower(source, topics, self._take_batch, log, name=name)
        self.ready = self._follower.ready

    @property
    def alive(self) -> bool:
        return self._follower.alive

    def start(self) -> None:
        self._follower.start()

    def halt(self) -> None:
        self._follower.halt()

    def stop(self) -> None:
        self._follower.stop()

    def listen(self, listener: Callable[[list[T]], None]) -> Callable[[], None]:
        """Call ``listener`` with each batch of news (from the reading thread); returns
        unlisten."""
        return self._listeners.listen(listener)

    def _take_batch(self, records: list[SourceRecord]) -> None:
        with self._lock:
            news = self._take(records)
        self._listeners.tell(news)

    def _take(self, records: list[SourceRecord]) -> list[T]:
        """Apply a batch of records; the news listeners hear."""
        raise NotImplementedError


def stop_all(models: Sequence[FollowedModel[Any]]) -> None:
    """Stop read models together: each thread is told first, so the waits for their last
    reads overlap instead of adding up."""
    for model in models:
        model.halt()
    for model in models:
        model.stop()
