"""Downlink: commands from Kafka (``fleet.commands``, key VIN) to the vehicles over MQTT.

A thread of the gateway worker. It follows ``fleet.presence`` and hands each command to the
broker while its vehicle is online, holding it otherwise (``commands.dispatch`` says why).
Published QoS 1 on ``vehicles/{vin}/commands/{id}`` with an MQTT 5 message expiry equal to the
remaining TTL, the response topic, and the command id as correlation data. What happened goes to
``fleet.command-dispatch`` for the tracker: ``sent`` once the broker acknowledged the publish,
``cancelled`` (by the client, or superseded) and ``expired`` for commands withheld.

A Kafka offset is committed only when its record is settled: published and acknowledged by the
broker, or withheld for good. After a crash the unsettled commands are read and published again;
the vehicle's at-most-once memory keeps a command from running twice.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from fleetlink.adapters.kafka.clients import KafkaClients, assign_from_start
from fleetlink.adapters.kafka.consume import take
from fleetlink.adapters.kafka.headers import header_value
from fleetlink.adapters.kafka.skips import PoisonGuard, SkippedRecords
from fleetlink.adapters.mqtt.vehicle_link import VehicleLink
from fleetlink.commands.dispatch import DispatchQueue, Outcome, Pending
from fleetlink.contracts import headers
from fleetlink.contracts.codec import DlqReason, UndecodableError, decode, decode_text, encode
from fleetlink.contracts.models import (
    Command,
    CommandCancel,
    CommandState,
    Presence,
    PresenceStatus,
)
from fleetlink.contracts.topics import KafkaTopic
from fleetlink.contracts.vin import is_valid_vin
from fleetlink.settings import Settings

_MAX_UNSETTLED = 50_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(eq=False)
class _Record:
    """One record of ``fleet.commands`` until its offset may be committed."""

    offset: int
    pending: Pending | None = None
    info: mqtt.MQTTMessageInfo | None = None
    withdrawn: bool = False

    @property
    def settled(self) -> bool:
        if self.pending is None or self.withdrawn:
            return True
        return self.info is not None and self.info.is_published()


class Downlink:
    def __init__(
        self,
        settings: Settings,
        link: VehicleLink,
        producer: Producer,
        client_id: str,
        log: logging.Logger,
        mqtt_connected: Callable[[], bool],
        on_skip: Callable[[str, str], None] | None = None,
    ) -> None:
        topics = settings.topic_map()
        self._link = link
        self._producer = producer
        self._commands_topic = topics[KafkaTopic.COMMANDS]
        self._dispatch_topic = topics[KafkaTopic.COMMAND_DISPATCH]
        self._presence_topic = settings.routed_topic(KafkaTopic.PRESENCE)
        self._log = log
        self._mqtt_connected = mqtt_connected
        self._queue = DispatchQueue(assume_online=self._presence_topic is None)
        self._partitions: dict[int, deque[_Record]] = {}
        self._records: dict[Pending, _Record] = {}
        self._awaiting_ack: list[_Record] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="downlink", daemon=True)
        self._skipped = SkippedRecords(log, on_skip)
        self._guard = PoisonGuard.of(settings, f"{client_id}.downlink", producer, log)
        kafka = KafkaClients.of(settings)
        self._consumer = kafka.consumer(
            f"{settings.gateway.client_id_prefix}-downlink",
            log=log,
            extra={
                "client.id": f"{client_id}-downlink",
                # static membership: a worker restarted under its id takes its partitions back
                # at once instead of after the session timeout of the dead member
                "group.instance.id": f"{client_id}-downlink",
                "session.timeout.ms": 10_000,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": True,
            },
        )
        self._presence = kafka.reader(f"{client_id}-presence", log=log)

    # lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._consumer.subscribe(
            [self._commands_topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        if self._presence_topic is None:
            self._log.warning("no presence mapping: commands go to every car at once, none is held")
        else:
            assign_from_start(self._presence, [self._presence_topic])
        self._thread.start()

    def stop(self) -> None:
        """Stop taking commands; commit what the broker acknowledged; close."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        deadline = time.monotonic() + 2.0
        while self._awaiting_ack and time.monotonic() < deadline:
            self._settle()
            time.sleep(0.02)
        try:
            self._settle(wait=True)
        except KafkaException as error:
            self._log.warning("downlink: last commit failed", extra={"error": str(error)})
        self._consumer.close()
        self._presence.close()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    @property
    def skipped(self) -> SkippedRecords:
        return self._skipped

    # the loop ----------------------------------------------------------------------------------

    def _run(self) -> None:
        next_expiry = 0.0
        while not self._stop.is_set():
            try:
                if self._mqtt_connected() and len(self._records) < _MAX_UNSETTLED:
                    messages = take(self._consumer, 200, 0.05)
                    self._follow_presence()  # as of now: the wait above may have been long
                    for message in messages:
                        self._handle(message)
                else:
                    self._follow_presence()
                    time.sleep(0.05)
                if time.monotonic() >= next_expiry:
                    next_expiry = time.monotonic() + 0.5
                    self._apply(self._queue.expire(now_ms()))
                self._settle()
            except KafkaException as error:  # the loop must outlive a Kafka outage
                self._log.warning("downlink Kafka error", extra={"error": str(error)})
                time.sleep(0.5)

    def _follow_presence(self) -> None:
        if self._presence_topic is None:
            return
        for message in take(self._presence, 1000, 0):
            if message.error() is not None or self._guard.poisoned(message):
                continue
            try:
                vin = decode_text(message.key(), "key (the VIN)")
                presence = decode(Presence, message.value())
            except UndecodableError as unreadable:
                self._skipped.skip(message, unreadable)
            else:
                online = presence.status == PresenceStatus.ONLINE
                self._apply(self._queue.presence(vin, online))
            self._guard.done()

    def _handle(self, message: Message) -> None:
        error = message.error()
        partition = message.partition()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                outcome = self._queue.caught_up(partition)
                if outcome.publish:
                    self._log.info(
                        "downlink caught up",
                        extra={"partition": partition, "released": len(outcome.publish)},
                    )
                self._apply(outcome)
            else:
                self._log.warning("downlink consume error", extra={"error": error.str()})
            return
        record = _Record(offset=message.offset())
        self._partitions.setdefault(partition, deque()).append(record)
        if self._guard.poisoned(message):
            return  # no pending command: settled, its offset is committed
        try:
            self._take(message, record)
        except UndecodableError as unreadable:
            self._skipped.skip(message, unreadable)
        self._guard.done()

    def _take(self, message: Message, record: _Record) -> None:
        vin = decode_text(message.key(), "key (the VIN)")
        if header_value(message.headers(), headers.RECORD_KIND) == b"cancel":
            cancel = decode(CommandCancel, message.value())
            self._apply(self._queue.cancel(vin, cancel.command_id, now_ms(), cancel.reason))
            return
        command = decode(Command, message.value())
        if not is_valid_vin(vin):
            raise UndecodableError(DlqReason.INVALID_KEY, f"key {vin[:40]!r} is not a VIN")
        record.pending = Pending(vin, command, partition=message.partition(), offset=record.offset)
        self._records[record.pending] = record
        self._apply(self._queue.command(record.pending, now_ms()))

    def _apply(self, outcome: Outcome) -> None:
        for item in outcome.withdrawn:
            record = self._records.get(item)
            if record is not None:
                record.withdrawn = True
        for report in outcome.reports:
            self._producer.produce(
                self._dispatch_topic, key=report.command_id, value=encode(report)
            )
        for item in outcome.publish:
            self._publish(item)

    def _publish(self, item: Pending) -> None:
        record = self._records.get(item)
        if record is None:
            return
        command = item.command
        remaining_s = math.ceil((command.expires_at - now_ms()) / 1000)
        if remaining_s <= 0:
            record.withdrawn = True
            report = item.report(CommandState.EXPIRED, now_ms(), "ttl")
            self._producer.produce(
                self._dispatch_topic, key=report.command_id, value=encode(report)
            )
            return
        record.info = self._link.send_command(item.vin, command, remaining_s)
        self._awaiting_ack.append(record)

    def _settle(self, *, wait: bool = False) -> None:
        """Report what the broker acknowledged; commit each partition up to its first unsettled."""
        still_waiting = []
        for record in self._awaiting_ack:
            if record.info is not None and record.info.is_published():
                assert record.pending is not None
                sent = record.pending.report(CommandState.SENT, now_ms())
                self._producer.produce(
                    self._dispatch_topic, key=sent.command_id, value=encode(sent)
                )
            else:
                still_waiting.append(record)
        self._awaiting_ack = still_waiting
        offsets = []
        for partition, records in self._partitions.items():
            last = None
            while records and records[0].settled:
                done = records.popleft()
                last = done.offset
                if done.pending is not None:
                    self._records.pop(done.pending, None)
            if last is not None:
                offsets.append(TopicPartition(self._commands_topic, partition, last + 1))
        if offsets:
            self._consumer.commit(offsets=offsets, asynchronous=not wait)

    # rebalancing (called inside consume) -------------------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._log.info("downlink partitions assigned", extra={"partitions": _numbers(partitions)})
        self._queue.assigned({p.partition for p in partitions})

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {p.partition for p in partitions}
        self._log.info("downlink partitions revoked", extra={"partitions": sorted(gone)})
        self._settle()
        self._queue.revoked(gone)
        for partition in gone:
            for record in self._partitions.pop(partition, deque()):
                if record.pending is not None:
                    self._records.pop(record.pending, None)


def _numbers(partitions: list[TopicPartition]) -> list[int]:
    return sorted(p.partition for p in partitions)
