"""Tell each car which of its messages are durably in Kafka, batched per car and boot.

The worker adds a message's stamp once Kafka acknowledged its record (or its dead letter); every
``confirm_interval_s`` the main loop takes the batches and the vehicle link publishes one
``Delivered`` message per car and boot to ``vehicles/{vin}/delivered``. A shared subscription
spreads one car's messages over all workers, so each worker confirms the ones it wrote:
selective ranges, not a high-water mark.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import msgspec

from fleetlink.contracts.codec import encode
from fleetlink.contracts.delivery import Stamp, to_ranges
from fleetlink.contracts.models import Delivered

if TYPE_CHECKING:
    from fleetlink.gateway.metrics import GatewayMetrics

# ranges per MQTT message: about 20 KB at most, far below any broker's packet limit
MAX_RANGES_PER_MESSAGE = 1000


class Confirmation(msgspec.Struct, frozen=True):
    vin: str
    payload: bytes
    messages: int  # uplink messages it confirms
    oldest_received: float  # monotonic receipt time of the oldest of them


class Confirmations:
    """Stamps of messages now in Kafka, waiting for the next batch. Thread-safe: delivery
    reports are served by the main loop and, when the producer queue is full, by paho's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seqs: dict[tuple[str, str], list[int]] = {}
        self._oldest: dict[tuple[str, str], float] = {}

    def add(self, stamp: Stamp, received: float) -> None:
        key = (stamp.vin, stamp.boot)
        with self._lock:
            seqs = self._seqs.get(key)
            if seqs is None:
                self._seqs[key] = [stamp.seq]
                self._oldest[key] = received
            else:
                seqs.append(stamp.seq)

    def pending(self) -> int:
        """Messages in Kafka whose confirmation has not been sent yet."""
        with self._lock:
            return sum(len(seqs) for seqs in self._seqs.values())

    def publish(
        self, send: Callable[[str, bytes], object], metrics: GatewayMetrics, now: float
    ) -> None:
        """``send(vin, payload)`` what Kafka holds since the last batch (the vehicle link's
        ``confirm``), counted in ``metrics``."""
        for confirmation in self.take():
            send(confirmation.vin, confirmation.payload)
            metrics.confirmations.inc()
            metrics.confirmed.inc(confirmation.messages)
            metrics.confirm_seconds.observe(now - confirmation.oldest_received)

    def take(self, now_ms: int | None = None) -> list[Confirmation]:
        """Everything added since the last call, as messages to publish."""
        with self._lock:
            batches, oldest = self._seqs, self._oldest
            self._seqs, self._oldest = {}, {}
        ts = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        return [
            confirmation
            for (vin, boot), seqs in batches.items()
            for confirmation in _messages(vin, boot, seqs, oldest[(vin, boot)], ts)
        ]


def _messages(
    vin: str, boot: str, seqs: list[int], oldest: float, ts: int
) -> Iterator[Confirmation]:
    ranges = to_ranges(seqs)
    for start in range(0, len(ranges), MAX_RANGES_PER_MESSAGE):
        chunk = ranges[start : start + MAX_RANGES_PER_MESSAGE]
        count = sum(last - first + 1 for first, last in chunk)
        payload = encode(Delivered(ts=ts, boot=boot, ranges=chunk))
        yield Confirmation(vin, payload, count, oldest)
