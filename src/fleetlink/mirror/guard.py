"""Pure judges of a replication flow: records that expired at the source before MirrorMaker 2
copied them, and a lag past its bound.

MM2 stores, for each source partition, the offset of the last record it copied (on the target,
in its offsets topic). When the source's retention deletes records MM2 has not copied yet (a cut
link longer than the retention), MM2's consumer finds its position gone, resets to the earliest
record left and carries on without a word: those records are lost. ``RetentionGuard`` sees it
as the source's first offset passing the position MM2 needed at the last check that could read
the source. Exact while the retention is much longer than MM2's offset flush interval; records
MM2 copied but had not yet stored when retention took them would be counted too. After a loss,
the partition is judged again once MM2 has stored a position past it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import msgspec


class SourcePartition(NamedTuple):
    topic: str
    partition: int


class Expired(msgspec.Struct, frozen=True):
    """Offsets ``first`` to ``last`` of a source partition expired before they crossed (an
    upper bound: transaction markers take offsets too)."""

    topic: str
    partition: int
    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


class RetentionGuard:
    """Where MM2 stands per source partition, checked against the source's first offsets."""

    def __init__(self) -> None:
        self._next: dict[SourcePartition, int] = {}  # the next offset MM2 will copy
        self._checked: dict[SourcePartition, int] = {}  # that, at the last check
        self._resume_after: dict[SourcePartition, int] = {}  # judged again once MM2 is past

    def copied(self, partition: SourcePartition, last_offset: int) -> None:
        """MM2 stored ``last_offset`` as copied (its offsets topic)."""
        self._next[partition] = max(self._next.get(partition, 0), last_offset + 1)

    def partitions(self) -> list[SourcePartition]:
        return list(self._next)

    def pending(self, ends: Mapping[SourcePartition, int]) -> int:
        """Records at the source MM2 has not copied yet (as far as it has stored)."""
        return sum(max(0, end - self._next[p]) for p, end in ends.items() if p in self._next)

    def check(self, firsts: Mapping[SourcePartition, int]) -> list[Expired]:
        """``firsts``: the source's first offset of each partition it answered for."""
        expired = []
        for partition, first in firsts.items():
            stored = self._next.get(partition)
            needed = self._checked.get(partition)
            if needed is not None and first > needed:
                expired.append(Expired(partition.topic, partition.partition, needed, first - 1))
                # MM2 goes on from the first offset left; until it has stored a position past
                # it, what retention takes next may have been copied already: not judged
                self._checked.pop(partition)
                self._resume_after[partition] = first
            elif stored is not None and stored > self._resume_after.get(partition, -1):
                self._resume_after.pop(partition, None)
                self._checked[partition] = stored
        return expired


class LagAlarm:
    """Raised when the lag passes ``bound_s``, cleared when it is back under it."""

    def __init__(self, bound_s: float) -> None:
        self.bound_s = bound_s
        self.raised_since: float | None = None

    def observe(self, lag_s: float | None, now: float) -> str | None:
        """``raised`` or ``cleared`` on a change, else None; an unknown lag changes nothing."""
        if lag_s is None:
            return None
        if lag_s > self.bound_s and self.raised_since is None:
            self.raised_since = now - lag_s
            return "raised"
        if lag_s <= self.bound_s and self.raised_since is not None:
            self.raised_since = None
            return "cleared"
        return None
