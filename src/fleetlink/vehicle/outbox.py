"""Messages waiting to be sent: in order, kept while offline, flushed on reconnect as resent."""

from __future__ import annotations

from collections import deque

import msgspec


class Pending(msgspec.Struct, frozen=True):
    topic: str
    payload: bytes
    retain: bool = False


class Outbox:
    """A bounded FIFO; when full the oldest telemetry goes first and is counted, never silently."""

    def __init__(self, capacity: int = 50_000) -> None:
        self._queue: deque[Pending] = deque()
        self._capacity = capacity
        self.dropped = 0

    def put(self, message: Pending) -> None:
        if len(self._queue) >= self._capacity:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(message)

    def peek(self) -> Pending | None:
        return self._queue[0] if self._queue else None

    def pop(self) -> Pending:
        """Remove the head once the broker acknowledged it."""
        return self._queue.popleft()

    def __len__(self) -> int:
        return len(self._queue)
