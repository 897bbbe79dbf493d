"""Topic names of the MQTT contract (vehicle side) and the Kafka contract (backbone)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import msgspec

# MQTT -------------------------------------------------------------------------------------------

VEHICLES_ROOT: Final = "vehicles"
GEO_ROOT: Final = "geo"
# Hazard warnings go to H3 cells of this resolution (edge about 0.5 km); a vehicle listens to
# its own cell and the ring around it.
GEO_WARNING_RESOLUTION: Final = 8
GEO_WARNING_RING: Final = 1


class VehicleChannel(StrEnum):
    """The level after ``vehicles/{vin}/``: what kind of message the topic carries."""

    TELEMETRY = "telemetry"
    EVENTS = "events"
    PRESENCE = "presence"
    COMMANDS = "commands"
    COMMAND_RESPONSES = "command-responses"
    DELIVERED = "delivered"  # down: which of the car's messages are durably in Kafka


UPLINK_CHANNELS: Final = frozenset(
    {
        VehicleChannel.TELEMETRY,
        VehicleChannel.EVENTS,
        VehicleChannel.PRESENCE,
        VehicleChannel.COMMAND_RESPONSES,
    }
)


class VehicleTopic(msgspec.Struct, frozen=True):
    """A parsed ``vehicles/{vin}/{channel}[/{detail}]`` topic; ``detail`` is event kind or id."""

    vin: str
    channel: VehicleChannel
    detail: str | None = None


class MqttTopic:
    """Builders and subscription filters for the MQTT topics of the contract."""

    TELEMETRY_FILTER: Final = "vehicles/+/telemetry"
    EVENTS_FILTER: Final = "vehicles/+/events/+"
    PRESENCE_FILTER: Final = "vehicles/+/presence"
    COMMAND_RESPONSES_FILTER: Final = "vehicles/+/command-responses/+"

    @staticmethod
    def telemetry(vin: str) -> str:
        return f"{VEHICLES_ROOT}/{vin}/{VehicleChannel.TELEMETRY}"

    @staticmethod
    def event(vin: str, kind: str) -> str:
        return f"{VEHICLES_ROOT}/{vin}/{VehicleChannel.EVENTS}/{kind}"

    @staticmethod
    def presence(vin: str) -> str:
        return f"{VEHICLES_ROOT}/{vin}/{VehicleChannel.PRESENCE}"

    @staticmethod
    def command(vin: str, command_id: str) -> str:
        return f"{VEHICLES_ROOT}/{vin}/{VehicleChannel.COMMANDS}/{command_id}"

    @staticmethod
    def commands_filter(vin: str) -> str:
        return f"{VEHICLES_ROOT}/{vin}/{VehicleChannel.COMMANDS}/+"

    @staticmethod
    def command_response(vin: str, command_id: str) -> str:
        return f"{VEHICLES_ROOT}/{vin}/{VehicleChannel.COMMAND_RESPONSES}/{command_id}"

    @staticmethod
    def delivered(vin: str) -> str:
        return f"{VEHICLES_ROOT}/{vin}/{VehicleChannel.DELIVERED}"

    @staticmethod
    def geo_warnings(cell: str) -> str:
        return f"{GEO_ROOT}/{cell}/warnings"

    @staticmethod
    def parse_vehicle_topic(topic: str) -> VehicleTopic | None:
        """Split a vehicle topic; None when it is not one (the VIN itself is checked elsewhere)."""
        parts = topic.split("/")
        if len(parts) not in (3, 4) or parts[0] != VEHICLES_ROOT or not parts[1]:
            return None
        try:
            channel = VehicleChannel(parts[2])
        except ValueError:
            return None
        has_detail = channel in _CHANNELS_WITH_DETAIL
        if has_detail != (len(parts) == 4) or (has_detail and not parts[3]):
            return None
        return VehicleTopic(vin=parts[1], channel=channel, detail=parts[3] if has_detail else None)


_CHANNELS_WITH_DETAIL: Final = frozenset(
    {VehicleChannel.EVENTS, VehicleChannel.COMMANDS, VehicleChannel.COMMAND_RESPONSES}
)

# Kafka ------------------------------------------------------------------------------------------


class KafkaTopic(StrEnum):
    TELEMETRY = "fleet.telemetry"
    EVENTS = "fleet.events"
    PRESENCE = "fleet.presence"
    COMMANDS = "fleet.commands"
    COMMAND_RESPONSES = "fleet.command-responses"
    COMMAND_STATUS = "fleet.command-status"
    COMMAND_DISPATCH = "fleet.command-dispatch"
    GRANTS = "fleet.grants"
    AUDIT = "fleet.audit"
    DLQ = "fleet.dlq"
    HAZARDS = "fleet.hazards"
    PARKING = "fleet.parking"
    ALERTS = "fleet.alerts"
    GEOFENCE_EVENTS = "fleet.geofence-events"
    PAYMENTS = "fleet.payments"
    ENTITLEMENTS = "fleet.entitlements"


class KafkaTopicSpec(msgspec.Struct, frozen=True):
    """What a platform topic is keyed by and whether it is compacted."""

    topic: KafkaTopic
    key: str
    compacted: bool
    description: str


KAFKA_TOPICS: Final[tuple[KafkaTopicSpec, ...]] = (
    KafkaTopicSpec(KafkaTopic.TELEMETRY, "VIN", False, "vehicle telemetry, VSS signals"),
    KafkaTopicSpec(KafkaTopic.EVENTS, "VIN", False, "vehicle events by kind"),
    KafkaTopicSpec(KafkaTopic.PRESENCE, "VIN", True, "online/offline, last seen, reason"),
    KafkaTopicSpec(KafkaTopic.COMMANDS, "VIN", False, "command requests from apps and the API"),
    KafkaTopicSpec(
        KafkaTopic.COMMAND_RESPONSES, "command id", False, "vehicle answers, input of the tracker"
    ),
    KafkaTopicSpec(KafkaTopic.COMMAND_STATUS, "command id", True, "command lifecycle transitions"),
    KafkaTopicSpec(
        KafkaTopic.COMMAND_DISPATCH,
        "command id",
        False,
        "downlink reports (sent, cancelled, expired), input of the tracker",
    ),
    KafkaTopicSpec(KafkaTopic.GRANTS, "grant id", True, "digital keys: issued, revoked"),
    KafkaTopicSpec(KafkaTopic.AUDIT, "VIN", False, "who did what: keys, commands, refusals"),
    KafkaTopicSpec(KafkaTopic.DLQ, "VIN or none", False, "rejected raw bytes with a reason header"),
    KafkaTopicSpec(KafkaTopic.HAZARDS, "H3 cell", False, "hazard warnings"),
    KafkaTopicSpec(KafkaTopic.PARKING, "H3 cell", False, "free parking spaces"),
    KafkaTopicSpec(KafkaTopic.ALERTS, "VIN", False, "fleet and maintenance alerts"),
    KafkaTopicSpec(KafkaTopic.GEOFENCE_EVENTS, "VIN", False, "geofence enter/exit"),
    KafkaTopicSpec(KafkaTopic.PAYMENTS, "purchase id", False, "feature purchases"),
    KafkaTopicSpec(KafkaTopic.ENTITLEMENTS, "VIN", True, "features a vehicle may use"),
)
