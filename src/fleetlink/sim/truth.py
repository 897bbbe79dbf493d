"""The simulator's ground truth of what its cars sent, and the detector that checks Kafka for it.

Every car sends messages 1..last per boot (each stamped ``fl-boot`` / ``fl-seq``), so what must be
in Kafka is known exactly, a lost tail included; a check against min..max of what Kafka holds
would miss that. Records and dead letters both count: a dead letter is kept data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol

import msgspec

from fleetlink.contracts import headers as h
from fleetlink.contracts.delivery import BOOT_PROPERTY, SEQ_PROPERTY, stamp_of, to_ranges

# VIN -> boot id -> the last seq that boot used
Truth = dict[str, dict[str, int]]


class _Record(Protocol):
    def headers(self) -> Sequence[tuple[str, bytes | None]] | None: ...


class Gaps(msgspec.Struct):
    """What the detector found: missing messages per car as ``(boot, first, last)`` ranges."""

    expected: int
    found: int
    missing: int
    duplicates: int
    unexpected: int  # stamps no car of the truth sent (another run, another fleet)
    cars: int
    cars_missing: int
    missing_ranges: dict[str, list[tuple[str, int, int]]]


def stamps_in(records: Iterable[_Record]) -> Iterator[tuple[str, str, int]]:
    """``(vin, boot, seq)`` of every stamped record; the VIN from its MQTT topic header."""
    for record in records:
        properties: list[tuple[str, str]] = []
        topic = ""
        for name, value in record.headers() or ():
            if value is None:
                continue
            if name in (BOOT_PROPERTY, SEQ_PROPERTY):
                properties.append((name, value.decode(errors="replace")))
            elif name == h.MQTT_TOPIC:
                topic = value.decode(errors="replace")
        stamp = stamp_of(topic, properties)
        if stamp is not None:
            yield stamp.vin, stamp.boot, stamp.seq


def compare(truth: Mapping[str, Mapping[str, int]], seen: Iterable[tuple[str, str, int]]) -> Gaps:
    """Which of the messages of ``truth`` are not among ``seen``, and how many came twice."""
    found: set[tuple[str, str, int]] = set()
    duplicates = unexpected = 0
    for stamp in seen:
        vin, boot, seq = stamp
        last = truth.get(vin, {}).get(boot)
        if last is None or not 1 <= seq <= last:
            unexpected += 1
        elif stamp in found:
            duplicates += 1
        else:
            found.add(stamp)
    missing_ranges: dict[str, list[tuple[str, int, int]]] = {}
    expected = 0
    for vin, boots in truth.items():
        for boot, last in boots.items():
            expected += last
            lost = [seq for seq in range(1, last + 1) if (vin, boot, seq) not in found]
            if lost:
                ranges = [(boot, first, end) for first, end in to_ranges(lost)]
                missing_ranges.setdefault(vin, []).extend(ranges)
    return Gaps(
        expected=expected,
        found=len(found),
        missing=expected - len(found),
        duplicates=duplicates,
        unexpected=unexpected,
        cars=len(truth),
        cars_missing=len(missing_ranges),
        missing_ranges=missing_ranges,
    )
