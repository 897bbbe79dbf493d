"""Simulated cars' records into Kafka in simulated time: through the gateway's own router (the
same records, headers and dead letters as over MQTT), each stamped with its simulated time as
its Kafka timestamp, like the payload's ``ts``. What every accelerated run writes with."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from confluent_kafka import KafkaError, Message

from fleetlink.adapters.kafka.clients import KafkaClients
from fleetlink.contracts.codec import encode
from fleetlink.contracts.delivery import BOOT_PROPERTY, SEQ_PROPERTY
from fleetlink.contracts.models import Event, SignalValue, Telemetry, Tick
from fleetlink.contracts.topics import KafkaTopic, MqttTopic
from fleetlink.errors import FleetlinkError
from fleetlink.ingest.routing import Inbound, Router
from fleetlink.settings import Settings

_BOOT: Final = "accelerated"
_MAX_QUEUED: Final = 20_000  # records the producer may hold before the simulation waits
_FLUSH_S: Final = 300


class SimWriter:
    def __init__(
        self, settings: Settings, clock_s: Callable[[], float], log: logging.Logger | None
    ) -> None:
        """``clock_s``: the simulated seconds since the start (the per-car rate limit's)."""
        self.topics = settings.topic_map()
        self._router = Router.from_settings(settings.gateway, self.topics, clock_s)
        kafka = KafkaClients.of(settings)
        self._producer = kafka.producer(linger_ms=20, log=log)
        ticks = self.topics[KafkaTopic.TICKS]
        metadata = kafka.admin().list_topics(ticks, timeout=30).topics[ticks]
        self._tick_partitions = sorted(metadata.partitions)
        self._seq: dict[str, int] = {}
        self.failed = 0  # records Kafka refused
        self.dead_letters = 0

    def telemetry(self, vin: str, signals: dict[str, SignalValue], now_ms: int) -> None:
        telemetry = Telemetry(ts=now_ms, seq=self._next(vin), signals=signals)
        self._send(vin, MqttTopic.telemetry(vin), encode(telemetry), now_ms)

    def event(self, vin: str, kind: str, now_ms: int, **fields: Any) -> None:
        """An event of ``kind`` (``data``, the place: ``Event``'s fields) at ``now_ms``."""
        event = Event(ts=now_ms, seq=self._next(vin), **fields)
        self._send(vin, MqttTopic.event(vin, kind), encode(event), now_ms)

    def tick(self, now_ms: int) -> None:
        tick = encode(Tick(ts=now_ms))
        for partition in self._tick_partitions:
            self.produce(self.topics[KafkaTopic.TICKS], tick, b"tick", [], now_ms, partition)

    def keep_pace(self) -> None:
        """Serve delivery reports; wait while Kafka is behind."""
        self._producer.poll(0)
        while len(self._producer) > _MAX_QUEUED:
            self._producer.poll(0.05)

    def flush(self) -> None:
        """Everything in Kafka, or an error: what the apps are scored on must all be there."""
        left = self._producer.flush(_FLUSH_S)
        if left or self.failed:
            raise FleetlinkError(
                f"{left} records not written to Kafka in {_FLUSH_S} s, {self.failed} refused"
            )

    def _next(self, vin: str) -> int:
        self._seq[vin] = self._seq.get(vin, 0) + 1
        return self._seq[vin]

    def _send(self, vin: str, topic: str, payload: bytes, now_ms: int) -> None:
        stamp = ((BOOT_PROPERTY, _BOOT), (SEQ_PROPERTY, str(self._seq[vin])))
        record = self._router.route(Inbound(topic, payload, 1, now_ms, user_properties=stamp))
        self.dead_letters += record.dlq_reason is not None
        self.produce(record.topic, record.value, record.key, record.headers, now_ms)

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        self.failed += error is not None

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: list[tuple[str, bytes]],
        now_ms: int,
        partition: int = -1,
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    topic,
                    value,
                    key=key,
                    partition=partition,
                    headers=headers,
                    timestamp=now_ms,
                    on_delivery=self._delivered,
                )
                break
            except BufferError:  # the producer's queue is full: let Kafka catch up
                self._producer.poll(0.1)
        self._producer.poll(0)
