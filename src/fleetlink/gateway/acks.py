"""PUBACKs in the order the PUBLISH packets arrived, each only after its Kafka delivery.

MQTT requires acknowledgements in arrival order; Kafka delivery reports come back per partition,
so a message whose record landed early waits for the ones that arrived before it. Deliveries are
marked and acknowledgements sent per round of delivery reports, not per message: one lock taken,
and one write (over TLS one record, one wake-up of the network thread) for the whole batch. A
reconnect starts a new generation: packet ids of the old connection are never acknowledged on
the new one (the broker redelivers those messages instead).
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


SendAcks = Callable[[list[tuple[int, int]]], object]


class OrderedAcks:
    def __init__(self) -> None:
        self._pending: deque[Slot] = deque()
        self._delivered: deque[Slot] = deque()  # reported by Kafka, not yet marked
        self._ready: list[tuple[int, int]] = []
        self._generation = 0
        self._lock = threading.Lock()

    def new_connection(self) -> None:
        """Forget everything pending or ready: it belongs to a connection that is gone."""
        with self._lock:
            self._generation += 1
            self._pending.clear()
            self._ready = []

    def track(self, mid: int, qos: int) -> Slot:
        with self._lock:
            slot = Slot(mid, qos, self._generation)
            self._pending.append(slot)
            return slot

    def complete(self, delivered: list[Slot]) -> int:
        """Mark the ``delivered`` slots (one round of delivery reports); every slot now at the
        head in order becomes ready to acknowledge. Returns how many became ready."""
        with self._lock:
            generation = self._generation
            for slot in delivered:
                if slot.generation == generation:
                    slot.delivered = True
            pending = self._pending
            ready = self._ready
            count = 0
            while pending and pending[0].delivered:
                head = pending.popleft()
                ready.append((head.mid, head.qos))
                count += 1
            return count

    def delivered(self, slot: Slot) -> None:
        """Kafka has ``slot``'s record (a delivery report; no lock: one per message)."""
        self._delivered.append(slot)

    def settle(self, send: SendAcks) -> int:
        """Mark what was delivered since the last call and ``send`` what is now ready; from
        either thread that serves delivery reports. Returns how many were sent."""
        delivered, slots = self._delivered, []
        while delivered:  # both threads may drain: pop until empty, never count first
            try:
                slots.append(delivered.popleft())
            except IndexError:
                break
        if slots:
            self.complete(slots)
        return self.send_ready(send)

    def send_ready(self, send: SendAcks) -> int:
        """``send([(mid, qos), ...])`` once for everything ready, in arrival order.

        Sent under the lock, so a reconnect cannot slip in between. Returns how many."""
        with self._lock:
            ready = self._ready
            if not ready:
                return 0
            self._ready = []
            send(ready)
            return len(ready)

    def __len__(self) -> int:
        """Messages received and not yet acknowledged."""
        with self._lock:
            return len(self._pending) + len(self._ready)
