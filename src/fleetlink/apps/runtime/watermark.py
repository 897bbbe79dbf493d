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
_TAKEN: Final = "taken"  # the seconds that have a bucket of inputs already given out


class Store(Protocol):
    """The part of Quix's ``State`` the logic uses."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...
    def delete(self, key: str) -> None: ...


class EventTime:
    """``once_within_ms``: an input held again that long after one like it came out (a replay
    after a crash: at-least-once repeats what was not yet committed) comes out no second time."""

    def __init__(self, store: Store, sources: int, once_within_ms: int | None = None) -> None:
        self._store = store
        self._sources = sources
        self._once_within_ms = once_within_ms

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
        due.sort(key=lambda item: (int(item["ts"]), item["t"], _identity(item)))
        return due if self._once_within_ms is None else self._first_times(due, clock)

    def _first_times(self, due: list[dict[str, Any]], clock: int) -> list[dict[str, Any]]:
        """The inputs not given out before, remembered (by second of event time) until
        ``once_within_ms`` behind ``clock``."""
        assert self._once_within_ms is not None
        seconds: list[int] = self._store.get(_TAKEN, [])
        horizon = (clock - self._once_within_ms) // 1000
        for second in [s for s in seconds if s < horizon]:
            self._store.delete(f"t|{second}")
        seconds = [s for s in seconds if s >= horizon]
        buckets: dict[int, list[str]] = {}
        first: list[dict[str, Any]] = []
        for item in due:
            second = int(item["ts"]) // 1000
            if second not in buckets:
                buckets[second] = self._store.get(f"t|{second}", [])
            identity = "|".join((str(item["t"]), str(item["ts"]), _identity(item)))
            if identity in buckets[second]:
                continue
            buckets[second].append(identity)
            first.append(item)
        for second, taken in buckets.items():
            self._store.set(f"t|{second}", taken)
        self._store.set(_TAKEN, sorted({*seconds, *buckets}))
        return first


def _identity(item: Mapping[str, Any]) -> str:
    return str(item.get("msg_id") or item.get("vin"))
