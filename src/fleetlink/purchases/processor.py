"""The purchase processor process (``fleetlink purchases run``), in the cloud.

Reads ``fleet.payments`` (the API's requests and the provider's events), the activation
commands' ``fleet.command-status`` and the cars' ``feature-state`` events; feeds the pure
``PurchaseBook``; writes ``fleet.purchases`` and ``fleet.entitlements``, of which it is the only
writer, in Kafka transactions that also commit its input offsets: a batch is applied whole or
not at all, whatever crashes when.

The transactional id is stable (``purchases.transactional_id``): a restarted processor fences
its killed predecessor at ``init_transactions`` and aborts what it left open, so readers wait
for that at most the (short) transaction timeout. On start it reads its own two output topics
to their end (read_committed) and resumes its inputs from the committed offsets: state and
offsets come from the same transactions, so they agree. A failed transaction ends the process
(its supervisor restarts it) rather than guess which of its state is still true.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.consume import take, usable
from fleetlink.adapters.kafka.headers import header_value
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.kafka.skips import PoisonGuard, SkippedRecords, dead_letter_headers
from fleetlink.contracts import headers
from fleetlink.contracts.codec import DlqReason, UndecodableError, decode, decode_text, encode
from fleetlink.contracts.models import Event, EventKind, Transition
from fleetlink.contracts.purchases import (
    Entitlement,
    OwnerChanged,
    PaymentRecord,
    Purchase,
    PurchaseRequested,
    SubscriptionCancelled,
)
from fleetlink.contracts.topics import KafkaTopic, MqttTopic
from fleetlink.errors import FleetlinkError
from fleetlink.purchases.book import PurchaseBook, UnroutableEventError
from fleetlink.purchases.outcome import Outcome
from fleetlink.settings import Settings

_TXN_CALL_TIMEOUT_S = 30.0
_SESSION_TIMEOUT_MS = 10_000  # the consumer's; a processor frozen longer may have a successor


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class TransactionFailedError(FleetlinkError):
    """A transaction that could not commit: the process restarts from what Kafka holds."""


class ProcessorPausedError(FleetlinkError):
    """The process stood still longer than its group session (a long GC pause, a frozen VM):
    a successor may own its partitions and its transactional id by now. An idle processor
    would not learn it was fenced before its next write, so it restarts at once."""


class LazyTransaction:
    """The transactional producer, begun by the first record written: a batch that writes
    nothing (most of what the processor reads concerns no purchase) costs no transaction."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.open = False

    def begin(self) -> None:
        if not self.open:
            self.producer.begin_transaction()
            self.open = True

    def produce(self, topic: str, **record: Any) -> None:
        self.begin()
        self.producer.produce(topic, **record)


class PurchaseProcessor:
    def __init__(self, settings: Settings, log: logging.Logger) -> None:
        topics = settings.topic_map()
        config = settings.purchases
        self._payments = topics[KafkaTopic.PAYMENTS]
        self._purchases = topics[KafkaTopic.PURCHASES]
        self._entitlements = topics[KafkaTopic.ENTITLEMENTS]
        self._status = topics[KafkaTopic.COMMAND_STATUS]
        self._events = topics[KafkaTopic.EVENTS]
        self._dlq = topics[KafkaTopic.DLQ]
        self.book = PurchaseBook(
            {feature.id: feature for feature in config.catalogue},
            activation_ttl_ms=config.activation_ttl_s * 1000,
            grace_ms=int(settings.tracker.response_grace_s * 1000),
            day_ms=int(config.day_s * 1000),
            renew_ahead_ms=int(config.renew_ahead_days * config.day_s * 1000),
            payment_timeout_ms=config.payment_timeout_s * 1000,
        )
        self._log = log
        self._settings = settings
        self._kafka = KafkaClients.of(settings)
        timeout_ms = int(config.transaction_timeout_s * 1000)
        self._consumer = self._kafka.consumer(
            config.group_id,
            log=log,
            extra={
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "group.instance.id": f"{config.group_id}-1",  # one processor: resume at once
                "session.timeout.ms": _SESSION_TIMEOUT_MS,
            },
        )
        self._producer = self._kafka.producer(
            log=log,
            linger_ms=1,
            compression=settings.gateway.compression,
            message_timeout_ms=timeout_ms,  # librdkafka: at most the transaction's timeout
            extra={
                "transactional.id": config.transactional_id,
                "transaction.timeout.ms": timeout_ms,
            },
        )
        self._txn = LazyTransaction(self._producer)
        self._next_expiry = 0.0
        self._offsets_due = False  # records read since the last commit
        self._last_step = time.monotonic()  # when the last step ended
        self._next_offsets = 0.0
        self.ready = threading.Event()
        self.skipped = SkippedRecords(log)
        # the guard's dead letters go into the batch's transaction
        guard_producer = cast(Producer, self._txn)
        self._guard = PoisonGuard.of(settings, f"{config.group_id}.processor", guard_producer, log)
        self.transactions = 0

    # start --------------------------------------------------------------------------------------

    def _restore(self) -> None:
        for record in read_topic(self._kafka, self._purchases):
            try:
                self.book.restore(decode(Purchase, record.value()))
            except UndecodableError as unreadable:
                self.skipped.skip(record, unreadable)
        for record in read_topic(self._kafka, self._entitlements):
            try:
                self.book.restore_entitlement(decode(Entitlement, record.value()))
            except UndecodableError as unreadable:
                self.skipped.skip(record, unreadable)
        self._log.info(
            "purchases restored",
            extra={
                "purchases": len(self.book.purchases),
                "entitlements": len(self.book.entitlements),
            },
        )

    # one input ----------------------------------------------------------------------------------

    def _read(self, message: Message) -> Outcome:
        """What one input record causes; ``UndecodableError`` when it cannot be used."""
        topic, value = message.topic(), message.value()
        if topic == self._payments:
            record: Any = decode(PaymentRecord, value)  # type: ignore[arg-type]
            if isinstance(record, PurchaseRequested):
                return self.book.requested(record, now_ms())
            if isinstance(record, SubscriptionCancelled):
                return self.book.cancelled(record, now_ms())
            if isinstance(record, OwnerChanged):
                return self.book.owner_changed(record, now_ms())
            try:
                return self.book.provider(record, now_ms())
            except UnroutableEventError as error:
                raise UndecodableError(DlqReason.SCHEMA, str(error)) from None
        if topic == self._status:
            # keyed by command id: only the activations of purchases are decoded
            if not self.book.activation_known(decode_text(message.key(), "key (command id)")):
                return Outcome()
            return self.book.command_status(decode(Transition, value), now_ms())
        mqtt_topic = header_value(message.headers(), headers.MQTT_TOPIC) or b""
        parsed = MqttTopic.parse_vehicle_topic(mqtt_topic.decode(errors="replace"))
        if parsed is None or parsed.detail != EventKind.FEATURE_STATE:
            return Outcome()
        event = decode(Event, value)
        return self.book.feature_state(parsed.vin, event.data, now_ms())

    def _apply(self, message: Message) -> Outcome:
        if self._guard.poisoned(message):
            return Outcome()
        try:
            outcome = self._read(message)
        except UndecodableError as unreadable:
            self.skipped.skip(message, unreadable)
            if message.topic() == self._payments:  # the provider's word is never dropped
                self._dead_letter(message, unreadable)
            outcome = Outcome()
        self._guard.done()
        return outcome

    def _dead_letter(self, message: Message, error: UndecodableError) -> None:
        dead = dead_letter_headers(message, error.reason, error.detail)
        self._txn.produce(self._dlq, key=message.key(), value=message.value(), headers=dead)

    def _write(self, outcome: Outcome) -> None:
        for purchase in outcome.purchases:
            self._txn.produce(self._purchases, key=purchase.purchase_id, value=encode(purchase))
        for entitlement in outcome.entitlements:
            self._txn.produce(self._entitlements, key=entitlement.key, value=encode(entitlement))

    # the loop -----------------------------------------------------------------------------------

    def step(self, timeout: float = 0.1) -> None:
        """One batch of inputs (and the expiry check), in one transaction if it writes
        anything; the offsets of batches that wrote nothing are committed once a second."""
        try:
            self._step(timeout)
        finally:
            self._last_step = time.monotonic()

    def _step(self, timeout: float) -> None:
        messages = usable(take(self._consumer, 500, timeout))
        paused = time.monotonic() - self._last_step
        if paused > _SESSION_TIMEOUT_MS / 1000:  # outside a transaction: it would fail there
            raise ProcessorPausedError(
                f"the processor stood still for {paused:.0f} s, longer than its session: "
                "restarting, as another processor may have taken over"
            )
        self._offsets_due = self._offsets_due or bool(messages)
        for message in messages:
            self._write(self._apply(message))
        now = time.monotonic()
        if now >= self._next_expiry:
            self._next_expiry = now + 1.0
            self._write(self.book.expire(now_ms()))
        if not self._txn.open and not (self._offsets_due and now >= self._next_offsets):
            return
        self._txn.begin()
        if self._offsets_due:
            positions = self._consumer.position(self._consumer.assignment())
            metadata = self._consumer.consumer_group_metadata()
            self._transactional(
                "send_offsets",
                lambda: self._producer.send_offsets_to_transaction(
                    positions, metadata, _TXN_CALL_TIMEOUT_S
                ),
            )
        self._transactional(
            "commit", lambda: self._producer.commit_transaction(_TXN_CALL_TIMEOUT_S)
        )
        self._txn.open = False
        self._offsets_due = False
        self._next_offsets = now + 1.0
        self.transactions += 1

    def _transactional(self, what: str, call: Any) -> None:
        """Retry what may be retried; anything else ends the process (restart, fence, read
        back: the book in memory may hold what the aborted transaction never wrote)."""
        for _ in range(3):
            try:
                call()
                return
            except KafkaException as failure:
                error: KafkaError = failure.args[0]
                if error.retriable():
                    self._log.warning("transaction step retried", extra={"step": what})
                    continue
                if error.txn_requires_abort():
                    # if this fails too, the restart's init_transactions aborts it
                    with contextlib.suppress(KafkaException):
                        self._producer.abort_transaction(_TXN_CALL_TIMEOUT_S)
                raise TransactionFailedError(f"transaction {what} failed: {error.str()}") from None
        raise TransactionFailedError(f"transaction {what} kept failing")

    def run(self, stop: threading.Event) -> None:
        config = self._settings.purchases
        self._producer.init_transactions(_TXN_CALL_TIMEOUT_S)  # fences a predecessor first
        self._restore()
        self._consumer.subscribe([self._payments, self._status, self._events])
        self.ready.set()
        self._log.info(
            "purchase processor started",
            extra={"group": config.group_id, "transactional_id": config.transactional_id},
        )
        self._last_step = time.monotonic()
        try:
            while not stop.is_set():
                self.step()
        finally:
            self._consumer.close()
