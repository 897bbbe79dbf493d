"""Produce from asyncio code and await the Kafka acknowledgement (HTTP ingest answers after it)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Producer

from fleetlink.errors import FleetlinkError


class KafkaUnavailableError(FleetlinkError):
    """Kafka did not acknowledge in time, or refused the record."""


class Delivered:
    __slots__ = ("offset", "partition", "topic")

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset


class AsyncDeliveries:
    """A producer whose delivery reports resolve asyncio futures; a thread serves ``poll``."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._producer = Producer(dict(config))
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="kafka-deliveries", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._running:
            self._producer.poll(0.05)

    async def produce(
        self,
        topic: str,
        value: bytes | None,  # None: a tombstone
        key: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> Delivered:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Delivered] = loop.create_future()

        def settle(error: KafkaError | None, message: Any) -> None:
            if error is not None:
                outcome: Delivered | Exception = KafkaUnavailableError(error.str())
            else:
                outcome = Delivered(message.topic(), message.partition(), message.offset())
            loop.call_soon_threadsafe(_resolve, future, outcome)

        try:
            self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=settle)
        except BufferError:
            raise KafkaUnavailableError("the local send queue is full") from None
        return await future

    def close(self, timeout: float = 5.0) -> None:
        self._producer.flush(timeout)
        self._running = False
        self._thread.join(timeout)


def _resolve(future: asyncio.Future[Delivered], outcome: Delivered | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
