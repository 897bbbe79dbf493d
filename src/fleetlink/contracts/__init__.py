"""The MQTT and Kafka contracts of fleetlink: topic names, VINs, VSS names and message models.

Pure: this package imports nothing of fleetlink's adapters. Every other package builds on it.
"""

from fleetlink.contracts.models import (
    Command,
    CommandName,
    CommandResponse,
    CommandState,
    Event,
    EventKind,
    Presence,
    PresenceStatus,
    ResponseStatus,
    SignalValue,
    Telemetry,
    Transition,
)
from fleetlink.contracts.topics import KAFKA_TOPICS, KafkaTopic, KafkaTopicSpec, MqttTopic
from fleetlink.contracts.vin import is_valid_vin

__all__ = [
    "KAFKA_TOPICS",
    "Command",
    "CommandName",
    "CommandResponse",
    "CommandState",
    "Event",
    "EventKind",
    "KafkaTopic",
    "KafkaTopicSpec",
    "MqttTopic",
    "Presence",
    "PresenceStatus",
    "ResponseStatus",
    "SignalValue",
    "Telemetry",
    "Transition",
    "is_valid_vin",
]
