"""Downlink: commands from Kafka (``fleet.commands``, key VIN) to the vehicles over MQTT.

Each command is published QoS 1 on ``vehicles/{vin}/commands/{id}`` with an MQTT 5 message
expiry equal to its remaining TTL (the broker drops it when it is too late), the response topic
and the command id as correlation data. The Kafka offset is committed only after the broker
acknowledged the publish, and a ``sent`` transition goes to ``fleet.command-status``. After a
crash the command is published again; the vehicle's at-most-once memory keeps it from running
twice. A command already expired is not published (the tracker reports it expired).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import msgspec
import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, Producer, TopicPartition
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetlink.config import Settings
from fleetlink.contracts.codec import encode
from fleetlink.contracts.models import Command, CommandState, Transition
from fleetlink.contracts.topics import MqttTopic
from fleetlink.contracts.vin import is_valid_vin

_decoder = msgspec.json.Decoder(Command)


@dataclass
class _InFlight:
    partition: int
    offset: int
    info: mqtt.MQTTMessageInfo | None  # None: nothing to publish (expired or invalid)
    transition: Transition | None


class Downlink:
    def __init__(
        self,
        settings: Settings,
        client: mqtt.Client,
        producer: Producer,
        client_id: str,
        log: logging.Logger,
    ) -> None:
        gateway = settings.gateway
        self._client = client
        self._producer = producer
        self._status_topic = gateway.command_status_topic
        self._log = log
        self._consumer = Consumer(
            {
                **settings.kafka_client_config(),
                "group.id": f"{gateway.client_id_prefix}-downlink",
                "client.id": f"{client_id}-downlink",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "logger": log,
            }
        )
        self._consumer.subscribe([gateway.commands_topic])
        self._in_flight: list[_InFlight] = []
        self.published = 0

    def step(self, mqtt_connected: bool) -> None:
        """Take new commands (while connected) and commit those the broker acknowledged."""
        if mqtt_connected and len(self._in_flight) < 1000:
            for message in self._consumer.consume(num_messages=100, timeout=0):
                if message.error() is None:
                    self._in_flight.append(self._publish(message))
        self._settle()

    def _publish(self, message: object) -> _InFlight:
        partition, offset = message.partition(), message.offset()  # type: ignore[attr-defined]
        key = message.key()  # type: ignore[attr-defined]
        vin = key.decode() if key else ""
        try:
            command = _decoder.decode(message.value())  # type: ignore[attr-defined]
        except msgspec.MsgspecError as error:
            self._log.warning("invalid command record skipped", extra={"error": str(error)})
            return _InFlight(partition, offset, None, None)
        now = time.time_ns() // 1_000_000
        remaining_s = math.ceil((command.expires_at - now) / 1000)
        if remaining_s <= 0 or not is_valid_vin(vin):
            return _InFlight(partition, offset, None, None)
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.MessageExpiryInterval = remaining_s
        properties.ResponseTopic = MqttTopic.command_response(vin, command.command_id)
        properties.CorrelationData = command.command_id.encode()
        properties.ContentType = "application/json"
        info = self._client.publish(
            MqttTopic.command(vin, command.command_id),
            encode(command),
            qos=1,
            properties=properties,
        )
        sent = Transition(command.command_id, vin, command.name.value, CommandState.SENT, now)
        return _InFlight(partition, offset, info, sent)

    def _settle(self) -> None:
        """Commit, per partition, every offset up to the first still unacknowledged publish."""
        done: dict[int, int] = {}
        blocked: set[int] = set()
        remaining = []
        for item in self._in_flight:
            acknowledged = item.info is None or item.info.is_published()
            if item.partition in blocked or not acknowledged:
                blocked.add(item.partition)
                remaining.append(item)
                continue
            if item.transition is not None:
                self._producer.produce(
                    self._status_topic,
                    key=item.transition.command_id,
                    value=encode(item.transition),
                )
                self.published += 1
            done[item.partition] = item.offset
        self._in_flight = remaining
        if done:
            topic = self._consumer.assignment()[0].topic if self._consumer.assignment() else None
            if topic is not None:
                offsets = [TopicPartition(topic, p, o + 1) for p, o in done.items()]
                self._consumer.commit(offsets=offsets, asynchronous=True)

    def close(self) -> None:
        self._consumer.close()
