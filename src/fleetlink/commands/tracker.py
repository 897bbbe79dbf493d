"""The command tracker process: follows every command through its lifecycle on Kafka.

Reads ``fleet.commands`` (new commands: ``queued``), ``fleet.command-status`` (the downlink's
``sent``), ``fleet.command-responses`` (the vehicles' answers) and ``fleet.presence``; feeds the
pure ``CommandBook``; writes every transition it causes to ``fleet.command-status`` (key command
id) and ends overdue commands once a second.

Not yet durable: after a restart the book starts empty (rebuilding it from the compacted status
topic is the next step of the commands issue).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import msgspec
from confluent_kafka import Consumer, Message, Producer

from fleetlink.commands.book import RESPONSE_GRACE_MS, CommandBook
from fleetlink.config import Settings
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import (
    Command,
    CommandResponse,
    CommandState,
    Presence,
    PresenceStatus,
    Transition,
)
from fleetlink.kafka.producer import reliable_producer_config


def _mapping_topic(settings: Settings, name: str, default: str) -> str:
    return next((r.kafka_topic for r in settings.gateway.mappings if r.name == name), default)


class Tracker:
    def __init__(
        self, settings: Settings, log: logging.Logger, *, grace_ms: int = RESPONSE_GRACE_MS
    ) -> None:
        gateway = settings.gateway
        self._commands = gateway.commands_topic
        self._status = gateway.command_status_topic
        self._responses = _mapping_topic(settings, "command-responses", "fleet.command-responses")
        self._presence = _mapping_topic(settings, "presence", "fleet.presence")
        self.book = CommandBook(grace_ms=grace_ms)
        self._log = log
        self._consumer = Consumer(
            {
                **settings.kafka_client_config(),
                "group.id": f"fleetlink-tracker-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "logger": log,
            }
        )
        self._consumer.subscribe([self._commands, self._status, self._responses, self._presence])
        self._producer = Producer(
            reliable_producer_config(
                settings.kafka_client_config(),
                linger_ms=gateway.linger_ms,
                compression=gateway.compression,
                message_timeout_ms=0,
            )
            | {"logger": log}
        )
        self._next_expiry = 0.0

    def _write(self, transitions: list[Transition]) -> None:
        for step in transitions:
            self._producer.produce(self._status, key=step.command_id, value=encode(step))

    def _apply(self, message: Message) -> list[Transition]:
        topic, key, value = message.topic(), message.key(), message.value()
        now = time.time_ns() // 1_000_000
        try:
            if topic == self._commands:
                command = msgspec.json.decode(value, type=Command)
                _record, steps = self.book.submit(
                    command_id=command.command_id,
                    vin=key.decode(),
                    name=command.name,
                    params=dict(command.params),
                    ttl_ms=command.expires_at - command.issued_at,
                    now=command.issued_at,
                )
                return steps
            if topic == self._status:
                step = msgspec.json.decode(value, type=Transition)
                if step.state == CommandState.SENT:
                    self.book.sent(step.command_id, step.ts)  # the downlink wrote it already
                return []
            if topic == self._responses:
                answer = msgspec.json.decode(value, type=CommandResponse)
                return self.book.answered(key.decode(), answer, now)
            presence = msgspec.json.decode(value, type=Presence)
            return self.book.presence(key.decode(), presence.status == PresenceStatus.ONLINE, now)
        except (msgspec.MsgspecError, AttributeError) as error:
            self._log.warning(
                "unreadable record skipped", extra={"topic": topic, "error": str(error)}
            )
            return []

    def step(self, timeout: float = 0.2) -> None:
        for message in self._consumer.consume(num_messages=500, timeout=timeout):
            if message.error() is None:
                self._write(self._apply(message))
        if time.monotonic() >= self._next_expiry:
            self._next_expiry = time.monotonic() + 1.0
            self._write(self.book.expire(time.time_ns() // 1_000_000))
        self._producer.poll(0)

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.step()
        finally:
            self._producer.flush(10)
            self._consumer.close()

    def state_of(self, command_id: str) -> CommandState | None:
        record = self.book.records.get(command_id)
        return None if record is None else record.state
