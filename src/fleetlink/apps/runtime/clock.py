"""Event time and shard keys of the stream apps, pure.

Quix Streams has no timers: state expires only when a record of its key arrives. The apps
therefore keep each partition's state under one *shard key* that the murmur2 partitioner (Kafka's,
which Quix uses) maps to that partition, and fan every tick out to all shard keys: a tick
reaches every partition of a repartition topic and sweeps everything stored there.
"""

from __future__ import annotations

import zlib
from functools import cache
from typing import Final

_SEED: Final = 0x9747B28C
_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (``org.apache.kafka.common.utils.Utils.murmur2``), unsigned."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    for i in range(0, length - length % 4, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length - length % 4
    extra = length % 4
    if extra == 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (and librdkafka's ``murmur2``) picks."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@cache
def shard_keys(partitions: int) -> tuple[str, ...]:
    """One key per partition: ``shard_keys(n)[p]`` is written to partition ``p`` of ``n``."""
    keys: dict[int, str] = {}
    candidate = 0
    while len(keys) < partitions:
        key = f"shard-{candidate}"
        keys.setdefault(partition_of(key.encode(), partitions), key)
        candidate += 1
    return tuple(keys[p] for p in range(partitions))


def shard_of(place: str, partitions: int) -> str:
    """The shard key of a place (any stable text, e.g. an H3 cell)."""
    return shard_keys(partitions)[zlib.crc32(place.encode()) % partitions]


def event_time(payload_ts: int | None, record_ts: int, max_ahead_ms: int) -> int:
    """The time a record happened: the vehicle's ``ts``, but never more than ``max_ahead_ms``
    after the Kafka timestamp, so one car whose clock runs ahead cannot move time on for
    everyone in its partition. A record without ``ts`` happened when Kafka got it."""
    if payload_ts is None:
        return record_ts
    return min(payload_ts, record_ts + max_ahead_ms)
