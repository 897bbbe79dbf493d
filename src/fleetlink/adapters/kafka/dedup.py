"""Drop records already seen, by the message id header: at-least-once becomes effectively once.

Uplink delivery is at-least-once: a vehicle resends after a reconnect, a crashed gateway worker's
messages come again. Consumers that must not count twice pass each record through this helper.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from fleetlink.adapters.kafka.headers import header_value
from fleetlink.contracts.headers import MESSAGE_ID


def message_id(headers: Sequence[tuple[str, bytes | None]] | None) -> str | None:
    """The ``fl.msg_id`` header of a Kafka record, if it has one."""
    value = header_value(headers, MESSAGE_ID)
    return None if value is None else value.decode()


class Deduplicator:
    """Remembers the last ``capacity`` message ids (least recently seen are forgotten first)."""

    def __init__(self, capacity: int = 1_000_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self.duplicates = 0

    def first_time(self, message_id: str) -> bool:
        """True the first time an id is seen (within capacity); False for a duplicate."""
        if message_id in self._seen:
            self._seen.move_to_end(message_id)
            self.duplicates += 1
            return False
        self._seen[message_id] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)
