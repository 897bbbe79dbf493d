"""PUBACKs in the order the PUBLISH packets arrived, each only after its Kafka delivery.

MQTT requires acknowledgements in arrival order; Kafka delivery reports come back per partition,
so a message whose record landed early waits for the ones that arrived before it. A reconnect
starts a new generation: packet ids of the old connection are never acknowledged on the new one
(the broker redelivers those messages instead).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable


class Slot:
    """One received message waiting for its Kafka delivery."""

    __slots__ = ("delivered", "generation", "mid", "qos")

    def __init__(self, mid: int, qos: int, generation: int) -> None:
        self.mid = mid
        self.qos = qos
        self.generation = generation
        self.delivered = False


class OrderedAcks:
    def __init__(self) -> None:
        self._pending: deque[Slot] = deque()
        self._generation = 0
        self._lock = threading.Lock()

    def new_connection(self) -> None:
        """Forget everything pending: it belongs to a connection that is gone."""
        with self._lock:
            self._generation += 1
            self._pending.clear()

    def track(self, mid: int, qos: int) -> Slot:
        with self._lock:
            slot = Slot(mid, qos, self._generation)
            self._pending.append(slot)
            return slot

    def complete(self, slot: Slot, acknowledge: Callable[[int, int], object]) -> int:
        """Mark ``slot`` delivered and ``acknowledge(mid, qos)`` every slot now ready, in order.

        The acknowledgements are sent under the lock, so a reconnect cannot slip in between.
        Returns how many were acknowledged.
        """
        with self._lock:
            if slot.generation != self._generation:
                return 0
            slot.delivered = True
            pending = self._pending
            count = 0
            while pending and pending[0].delivered:
                ready = pending.popleft()
                acknowledge(ready.mid, ready.qos)
                count += 1
            return count

    def __len__(self) -> int:
        return len(self._pending)
