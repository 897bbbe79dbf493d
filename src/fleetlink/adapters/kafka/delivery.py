"""Produce from asyncio code and await the Kafka acknowledgement (HTTP ingest answers after it)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
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
    """A producer whose delivery reports resolve asyncio futures; a thread serves ``poll``.

    The reports of one ``poll`` round are handed to each event loop in one call: a
    ``call_soon_threadsafe`` per report would wake the loop (a write to its self-pipe, a pass
    through its selector) once per record.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._producer = Producer(dict(config))
        self._settled: deque[tuple[asyncio.AbstractEventLoop, _Settled]] = deque()
        self._running = True
        self._thread = threading.Thread(target=self._serve, name="kafka-deliveries", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._running:
            self._producer.poll(0.05)
            self._hand_over()

    def _hand_over(self) -> None:
        settled = self._settled
        if not settled:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
        for _ in range(len(settled)):  # a deque: ``close`` may serve reports in another thread
            loop, outcome = settled.popleft()
            by_loop.setdefault(loop, []).append(outcome)
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a loop already closed awaits nothing
                loop.call_soon_threadsafe(_resolve_all, outcomes)

    async def produce(
        self,
        topic: str,
        value: bytes | None,  # None: a tombstone
        key: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> Delivered:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Delivered] = loop.create_future()
        settled = self._settled

        def settle(error: KafkaError | None, message: Any) -> None:
            if error is not None:
                outcome: Delivered | Exception = KafkaUnavailableError(error.str())
            else:
                outcome = Delivered(message.topic(), message.partition(), message.offset())
            settled.append((loop, (future, outcome)))

        try:
            self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=settle)
        except BufferError:
            raise KafkaUnavailableError("the local send queue is full") from None
        return await future

    def close(self, timeout: float = 5.0) -> None:
        self._producer.flush(timeout)
        self._running = False
        self._thread.join(timeout)
        self._hand_over()


_Settled = tuple["asyncio.Future[Delivered]", "Delivered | Exception"]


def _resolve_all(outcomes: list[_Settled]) -> None:
    for future, outcome in outcomes:
        if future.done():
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
