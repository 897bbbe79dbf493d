"""The command tracker process: follows every command through its lifecycle on Kafka.

Reads ``fleet.commands`` (new commands: ``queued``), ``fleet.command-dispatch`` (the downlink's
``sent``, ``cancelled``, ``expired``), ``fleet.command-responses`` (the vehicles' answers),
``fleet.presence`` and ``fleet.telemetry`` (only for vehicles with a command whose effect it
shows); feeds the pure ``CommandBook``; writes every transition to ``fleet.command-status``, of
which it is the only writer, and ends overdue commands once a second.

Durable state: every status record carries the whole command, so the compacted status topic is
the tracker's changelog. On start it reads that topic to its end and rebuilds the book, then
resumes its inputs from the offsets its consumer group committed; input offsets are committed
only after the transitions they caused are in Kafka. Inputs read twice change nothing (the book
moves forward only).
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import KafkaException, Message

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.adapters.kafka.consume import take
from fleetlink.adapters.kafka.headers import header_value
from fleetlink.adapters.kafka.reader import read_topic
from fleetlink.adapters.kafka.skips import PoisonGuard, SkippedRecords
from fleetlink.commands.book import CommandBook
from fleetlink.contracts import headers
from fleetlink.contracts.codec import DlqReason, UndecodableError, decode, decode_text, encode
from fleetlink.contracts.models import (
    Command,
    CommandResponse,
    CommandState,
    Presence,
    PresenceStatus,
    Telemetry,
    Transition,
)
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.contracts.vin import is_valid_vin
from fleetlink.settings import Settings

_COMMIT_EVERY_S = 1.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Tracker:
    def __init__(self, settings: Settings, log: logging.Logger) -> None:
        topics = settings.topic_map()
        tracker = settings.tracker
        self._commands = topics[KafkaTopic.COMMANDS]
        self._status = topics[KafkaTopic.COMMAND_STATUS]
        self._dispatch = topics[KafkaTopic.COMMAND_DISPATCH]
        self._responses = settings.routed_topic(KafkaTopic.COMMAND_RESPONSES)
        self._presence = settings.routed_topic(KafkaTopic.PRESENCE)
        self._telemetry = settings.routed_topic(KafkaTopic.TELEMETRY)
        self.book = CommandBook(
            grace_ms=int(tracker.response_grace_s * 1000),
            reconcile_window_ms=int(tracker.reconcile_window_s * 1000),
        )
        self._log = log
        self._settings = settings
        self._kafka = KafkaClients.of(settings)
        self._consumer = self._kafka.consumer(
            tracker.group_id,
            log=log,
            extra={
                # static membership: a restarted tracker resumes at once (one tracker per group)
                "group.instance.id": f"{tracker.group_id}-1",
                "session.timeout.ms": 10_000,
                "auto.offset.reset": "earliest",
            },
        )
        self._producer = self._kafka.producer(
            log=log, linger_ms=1, compression=settings.gateway.compression, message_timeout_ms=0
        )
        self._next_expiry = 0.0
        self._next_commit = 0.0
        self._uncommitted = False
        self.ready = threading.Event()
        self.skipped = SkippedRecords(log)
        self._guard = PoisonGuard.of(settings, f"{tracker.group_id}.tracker", self._producer, log)

    def _restore(self) -> None:
        latest: dict[str, Transition] = {}
        # with the cluster's credentials: a bare bootstrap address fails against SASL or TLS
        for record in read_topic(self._kafka, self._status):
            try:
                step = decode(Transition, record.value())
            except UndecodableError as unreadable:
                self.skipped.skip(record, unreadable)
                continue
            latest[step.command_id] = step
        for step in latest.values():
            self.book.restore(step)
        self.book.forget(now_ms())
        self._log.info("tracker state restored", extra={"commands": len(self.book.records)})

    def _write(self, transitions: list[Transition]) -> None:
        for step in transitions:
            self._producer.produce(self._status, key=step.command_id, value=encode(step))

    def _apply(self, message: Message) -> list[Transition]:
        if self._guard.poisoned(message):
            return []
        try:
            steps = self._read(message)
        except UndecodableError as unreadable:
            self.skipped.skip(message, unreadable)
            steps = []
        self._guard.done()
        return steps

    def _read(self, message: Message) -> list[Transition]:
        """The transitions one input record causes; ``UndecodableError`` when unreadable."""
        topic, value = message.topic(), message.value()
        # every input but the responses (keyed by command id) is keyed by VIN
        key = decode_text(message.key(), "key")
        if topic == self._telemetry:
            if not self.book.watching(key):
                return []
            telemetry = decode(Telemetry, value)
            return self.book.telemetry(key, telemetry.signals, telemetry.ts)
        if topic == self._dispatch:
            return self.book.dispatched(decode(Transition, value), now_ms())
        if topic == self._responses:
            return self.book.answered(key, decode(CommandResponse, value), now_ms())
        if not is_valid_vin(key):
            raise UndecodableError(DlqReason.INVALID_KEY, f"key {key[:40]!r} is not a VIN")
        if topic == self._commands:
            if header_value(message.headers(), headers.RECORD_KIND) == b"cancel":
                return []  # the downlink decides and reports it
            command = decode(Command, value)
            return self.book.submit(
                command_id=command.command_id,
                vin=key,
                name=command.name,
                params=dict(command.params),
                created_at=command.issued_at,
                expires_at=command.expires_at,
                idempotency_key=_idempotency_key(message),
                actor=command.actor,
                grant_id=command.grant_id,
            )
        presence = decode(Presence, value)
        online = presence.status == PresenceStatus.ONLINE
        return self.book.presence(key, online, now_ms())

    def step(self, timeout: float = 0.1) -> None:
        for message in take(self._consumer, 1000, timeout):
            if message.error() is None:
                self._write(self._apply(message))
                self._uncommitted = True
        now = time.monotonic()
        if now >= self._next_expiry:
            self._next_expiry = now + 1.0
            self._write(self.book.expire(now_ms()))
            self.book.forget(now_ms())
        self._producer.poll(0)
        if self._uncommitted and now >= self._next_commit:
            self._commit()

    def _commit(self) -> None:
        """Input offsets, once what they caused is in Kafka."""
        self._next_commit = time.monotonic() + _COMMIT_EVERY_S
        if self._producer.flush(5) > 0:
            return  # Kafka is slow or away: commit later, never ahead of the output
        try:
            self._consumer.commit(asynchronous=False)
            self._uncommitted = False
        except KafkaException as error:
            self._log.warning("tracker commit failed", extra={"error": str(error)})

    def run(self, stop: threading.Event) -> None:
        self._restore()
        inputs = [self._commands, self._dispatch, self._responses, self._presence]
        inputs.append(self._telemetry)
        if self._responses is None:
            self._log.warning("no command-responses mapping: answers never reach the tracker")
        self._consumer.subscribe([topic for topic in inputs if topic is not None])
        self.ready.set()
        self._log.info("tracker started", extra={"group": self._settings.tracker.group_id})
        try:
            while not stop.is_set():
                try:
                    self.step()
                except KafkaException as error:
                    self._log.warning("tracker Kafka error", extra={"error": str(error)})
                    time.sleep(0.5)
            if self._uncommitted:
                self._commit()
        finally:
            self._producer.flush(10)
            self._consumer.close()

    def state_of(self, command_id: str) -> CommandState | None:
        record = self.book.records.get(command_id)
        return None if record is None else record.state


def _idempotency_key(message: Message) -> str | None:
    value = header_value(message.headers(), headers.IDEMPOTENCY_KEY)
    return None if value is None else value.decode(errors="replace")
