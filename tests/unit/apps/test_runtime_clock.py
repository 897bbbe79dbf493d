"""Shard keys land where Kafka puts them; event time cannot run far ahead of Kafka's."""

from __future__ import annotations

import pytest

from fleetlink.apps.runtime.clock import (
    event_time,
    murmur2,
    partition_of,
    shard_keys,
    shard_of,
)

# Kafka's own vectors (clients' UtilsTest.testMurmur2), as signed Java ints
KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), KAFKA_MURMUR2.items())
def test_murmur2_is_kafkas(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected & 0xFFFFFFFF


@pytest.mark.parametrize("partitions", [1, 2, 6, 12, 50])
def test_one_shard_key_per_partition(partitions: int) -> None:
    keys = shard_keys(partitions)
    assert len(set(keys)) == partitions
    assert [partition_of(key.encode(), partitions) for key in keys] == list(range(partitions))


def test_a_place_always_gets_the_same_shard() -> None:
    assert shard_of("881f1d48b7fffff", 6) == shard_of("881f1d48b7fffff", 6)
    assert {shard_of(f"cell-{i}", 6) for i in range(200)} == set(shard_keys(6))


def test_event_time_is_the_payloads_but_not_far_ahead_of_kafkas() -> None:
    assert event_time(1_000, 5_000, 2_000) == 1_000  # late is fine: grace decides
    assert event_time(6_500, 5_000, 2_000) == 6_500
    assert event_time(99_000, 5_000, 2_000) == 7_000  # a clock far ahead is clamped
    assert event_time(None, 5_000, 2_000) == 5_000
