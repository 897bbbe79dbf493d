"""The uplink's Kafka side: write each routed record until Kafka has it, then say so.

Never gives up on a record: a failed delivery is retried (the producer's own timeout is off, so
Kafka coming back resumes the flow); a record Kafka refuses for good becomes a dead letter with
the reason. ``on_durable`` runs once per message when its record or its dead letter is written:
the worker then acknowledges the MQTT message and confirms it to its car.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.consume import is_fatal
from fleetlink.contracts.codec import DlqReason
from fleetlink.contracts.delivery import Stamp
from fleetlink.gateway.acks import Slot
from fleetlink.gateway.metrics import GatewayMetrics, Tally
from fleetlink.ingest.routing import Record, Router

# Errors that will not go away by retrying this record: it goes to the DLQ instead.
_RECORD_REJECTED = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
    }
)
_RETRY_AFTER_S = 1.0
_AWAITING_KAFKA_S = 0.002  # the longest a delivery report waits while MQTT is quiet
# paho's thread serves the reports while it runs; the main loop does when it stopped (MQTT
# down, reconnecting, stopping) for longer than this
_NETWORK_THREAD_SERVES_S = 0.2

Durable = Callable[[Record, Slot | None, float, Stamp | None], None]


class RecordWriter:
    """One producer; ``produce`` from any thread; delivery reports served by paho's network
    thread (``serve_between_reads``) while it runs, else by the main loop (``serve``)."""

    def __init__(
        self,
        kafka: KafkaClients,
        producer_options: Mapping[str, Any],
        client_id: str,
        router: Router,
        metrics: GatewayMetrics,
        log: logging.Logger,
        on_durable: Durable,
    ) -> None:
        self.router = router
        self.metrics = metrics
        self.log = log
        self._on_durable = on_durable
        self._produced = Tally(metrics.produced)
        self._dead_letters = Tally(metrics.dlq)
        self._retry: deque[tuple[float, Record, Slot | None, float, Stamp | None]] = deque()
        self.kafka_up = True
        self.fatal: str | None = None
        self._polling = threading.Lock()  # one thread serves delivery reports at a time
        self._served_between_reads = -math.inf
        self.producer = kafka.producer(
            log=log,
            extra={"client.id": client_id, "error_cb": self._kafka_error},
            **producer_options,
        )

    def produce(
        self, record: Record, slot: Slot | None, started: float, stamp: Stamp | None
    ) -> None:
        def on_delivery(error: KafkaError | None, _message: Any) -> None:
            self._delivered(error, record, slot, started, stamp)

        while True:
            try:
                self.producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=record.headers,
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                self.producer.poll(0.05)  # the local queue is full: let deliveries drain it
            except KafkaException as exc:  # refused before sending, e.g. larger than allowed
                error = exc.args[0]
                if record.dlq_reason is not None:
                    self.fatal = f"cannot write a dead letter: {error.str()}"
                    return
                record = self.router.reject(record, DlqReason.KAFKA_REJECTED, error.str())

    def _delivered(
        self,
        error: KafkaError | None,
        record: Record,
        slot: Slot | None,
        started: float,
        stamp: Stamp | None,
    ) -> None:
        if error is None:
            self.kafka_up = True
            if record.dlq_reason is not None:
                self._dead_letters.add(record.dlq_reason.value)
            else:
                self._produced.add(record.mapping)
            self.metrics.child("delivery_seconds", record.mapping).observe(
                time.monotonic() - started
            )
            self._on_durable(record, slot, started, stamp)
            return
        self.metrics.child("kafka_errors", error.name()).inc()
        if is_fatal(error):
            self.fatal = f"fatal Kafka error: {error.str()}"
            return
        if record.dlq_reason is None and error.code() in _RECORD_REJECTED:
            self.log.warning(
                "kafka rejected a record; sending it to the DLQ",
                extra={"topic": record.topic, "error": error.str()},
            )
            letter = self.router.reject(record, DlqReason.KAFKA_REJECTED, error.str())
            self.produce(letter, slot, started, stamp)
            return
        self.log.warning("kafka delivery failed; retrying", extra={"error": error.str()})
        self._retry.append((time.monotonic() + _RETRY_AFTER_S, record, slot, started, stamp))

    def _kafka_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            if self.kafka_up:
                self.log.warning("kafka unreachable; holding acknowledgements")
            self.kafka_up = False
            self.metrics.kafka_up.set(0)
        elif is_fatal(error):
            self.fatal = f"fatal Kafka error: {error.str()}"

    def serve(self, timeout: float) -> float:
        """Deliver reports for up to ``timeout`` seconds (unless paho's thread serves them),
        produce what is due again; returns the clock."""
        if time.monotonic() - self._served_between_reads > _NETWORK_THREAD_SERVES_S:
            if self._polling.acquire(blocking=False):
                try:
                    self.producer.poll(timeout)
                finally:
                    self._polling.release()
        else:
            time.sleep(timeout)
        now = time.monotonic()
        retry = self._retry
        while retry and retry[0][0] <= now:
            _due, record, slot, started, stamp = retry.popleft()
            self.produce(record, slot, started, stamp)
        return now

    def serve_between_reads(self) -> float:
        """Serve the delivery reports that are ready, from paho's network thread between two
        reads: the PUBACKs they release are then written by the thread that writes anyway, with
        no wake-up across threads. Returns how long that thread may wait for the socket."""
        if self._polling.acquire(blocking=False):
            try:
                self.producer.poll(0)
            finally:
                self._polling.release()
            self._served_between_reads = time.monotonic()
        # while records are at Kafka, look again soon; else the socket alone wakes the thread
        return _AWAITING_KAFKA_S if len(self.producer) else 1.0

    @property
    def retrying(self) -> int:
        return len(self._retry)

    def flush_metrics(self) -> None:
        self._produced.flush()
        self._dead_letters.flush()
        if self.kafka_up:
            self.metrics.kafka_up.set(1)
