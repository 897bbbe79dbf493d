"""Event time of one shard, pure: a watermark over the app's input partitions, and the inputs
waiting for it.

Each input partition is read in time order, but one may run ahead of another (an instance that
restarted and replays, an accelerated simulation), so the shard's clock is the event time every
one of its ``sources`` has reached, moved on by the ticks each of them carries. Inputs wait for
it in buckets of one second of event time (a value of their own each: none grows with the
backlog of the others) and come out in event-time order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

_CLOCK: Final = "clock"
_SOURCES: Final = "sources"
_WAITING: Final = "pending"  # the seconds that have a bucket


class Store(Protocol):
    """The part of Quix's ``State`` the logic uses."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...
    def delete(self, key: str) -> None: ...


class EventTime:
    def __init__(self, store: Store, sources: int) -> None:
        self._store = store
        self._sources = sources

    def clock(self) -> int:
        """The watermark (0 until every source was heard)."""
        return int(self._store.get(_CLOCK, 0))

    def advance(self, ts: int, src: int) -> int:
        """Source ``src`` has reached ``ts``; the watermark now."""
        reached: dict[str, int] = self._store.get(_SOURCES, {})
        if ts <= reached.get(str(src), 0):
            return self.clock()
        reached[str(src)] = ts
        self._store.set(_SOURCES, reached)
        clock = max(self.clock(), min(reached.get(str(n), 0) for n in range(self._sources)))
        self._store.set(_CLOCK, clock)
        return clock

    def hold(self, item: Mapping[str, Any]) -> None:
        """Keep an input (with its ``ts``) until the watermark passes it."""
        second = int(item["ts"]) // 1000
        self._store.set(f"p|{second}", [*self._store.get(f"p|{second}", []), dict(item)])
        seconds: list[int] = self._store.get(_WAITING, [])
        if second not in seconds:
            self._store.set(_WAITING, sorted([*seconds, second]))

    def due(self, clock: int) -> list[dict[str, Any]]:
        """The inputs held at or before ``clock``, taken out, in event-time order."""
        seconds: list[int] = self._store.get(_WAITING, [])
        due: list[dict[str, Any]] = []
        kept = [second for second in seconds if second > clock // 1000]
        for second in seconds[: len(seconds) - len(kept)]:
            items: list[dict[str, Any]] = self._store.get(f"p|{second}", [])
            later = [item for item in items if int(item["ts"]) > clock]
            due += [item for item in items if int(item["ts"]) <= clock]
            if later:
                self._store.set(f"p|{second}", later)
                kept.insert(0, second)
            else:
                self._store.delete(f"p|{second}")
        if len(kept) != len(seconds):
            self._store.set(_WAITING, kept)
        return sorted(
            due,
            key=lambda item: (int(item["ts"]), item["t"], str(item.get("msg_id", item["vin"]))),
        )
