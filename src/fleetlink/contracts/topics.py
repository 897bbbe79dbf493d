"""Topic names of the MQTT contract (vehicle side) and the Kafka contract (backbone)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


class VehicleTopic(msgspec.Struct, frozen=True):
    """A parsed ``vehicles/{vin}/{channel}[/{detail}]`` topic; ``detail`` is event kind or id."""

    vin: str
    channel: VehicleChannel
    detail: str | None = None


class MqttTopic:
    """Builders and subscription filters for the MQTT topics of the contract."""

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
    def geo_warning(cell: str, hazard_id: str) -> str:
        """One hazard's retained warning, in the hazard's own cell."""
        return f"{GEO_ROOT}/{cell}/warnings/{hazard_id}"

    @staticmethod
    def geo_warnings_filter(cell: str) -> str:
        """Every warning of a cell (a car subscribes to its cell and the ring around it)."""
        return f"{GEO_ROOT}/{cell}/warnings/+"

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
    """Every topic of the Kafka contract, by its production name."""

    TELEMETRY = "fleet.telemetry"
    EVENTS = "fleet.events"
    PRESENCE = "fleet.presence"
    DLQ = "fleet.dlq"
    COMMANDS = "fleet.commands"
    COMMAND_RESPONSES = "fleet.command-responses"
    COMMAND_DISPATCH = "fleet.command-dispatch"
    COMMAND_STATUS = "fleet.command-status"
    GRANTS = "fleet.grants"
    AUDIT = "fleet.audit"
    HAZARDS = "fleet.hazards"
    PARKING = "fleet.parking"
    VEHICLE_STATE = "fleet.vehicle-state"
    TRIPS = "fleet.trips"
    GEOFENCE_EVENTS = "fleet.geofence-events"
    ALERTS = "fleet.alerts"
    GEOFENCES = "fleet.geofences"
    ALERT_ACKS = "fleet.alert-acks"
    SERVICES = "fleet.services"
    PAYMENTS = "fleet.payments"
    PURCHASES = "fleet.purchases"
    ENTITLEMENTS = "fleet.entitlements"
    CAMPAIGN_REQUESTS = "fleet.campaign-requests"
    CAMPAIGNS = "fleet.campaigns"
    CAMPAIGN_VEHICLES = "fleet.campaign-vehicles"
    V2X_CAM_IN = "v2x.cam.in"
    V2X_DENM_IN = "v2x.denm.in"
    V2X_DENM_OUT = "v2x.denm.out"
    TICKS = "fleet.ticks"
    REPLICATION_ALERTS = "fleet.replication-alerts"


class Cleanup(StrEnum):
    """Kafka's ``cleanup.policy``: compacted topics keep the latest record per key forever."""

    DELETE = "delete"
    COMPACT = "compact"


class Site(StrEnum):
    """Where a topic's writer runs in the edge-cloud topology (MirrorMaker 2 copies from there)."""

    EDGE = "edge"
    CLOUD = "cloud"

    @property
    def other(self) -> Site:
        return Site.CLOUD if self is Site.EDGE else Site.EDGE


class KafkaTopicSpec(msgspec.Struct, frozen=True):
    """One topic of the contract: its key, cleanup policy, size and where it is written.

    ``partitions`` None: the cluster-wide setting (``kafka.topic_partitions``);
    ``retention_ms`` None: the cluster's retention; ``mirrored`` False: the topic stays on the
    cluster it is written on (edge-cloud topology).
    """

    topic: KafkaTopic
    key: str
    cleanup: Cleanup
    written_at: Site
    description: str
    partitions: int | None = None
    retention_ms: int | None = None
    mirrored: bool = True

    @property
    def compacted(self) -> bool:
        return self.cleanup is Cleanup.COMPACT


def _spec(
    topic: KafkaTopic,
    key: str,
    cleanup: Cleanup,
    at: Site,
    description: str,
    *,
    mirrored: bool = True,
) -> KafkaTopicSpec:
    return KafkaTopicSpec(topic, key, cleanup, at, description, mirrored=mirrored)


_D, _C = Cleanup.DELETE, Cleanup.COMPACT
_EDGE, _CLOUD = Site.EDGE, Site.CLOUD

KAFKA_TOPICS: Final[tuple[KafkaTopicSpec, ...]] = (
    _spec(KafkaTopic.TELEMETRY, "VIN", _D, _EDGE, "vehicle telemetry, VSS signals"),
    _spec(KafkaTopic.EVENTS, "VIN", _D, _EDGE, "vehicle events by kind"),
    _spec(KafkaTopic.PRESENCE, "VIN", _C, _EDGE, "online/offline, last seen, reason"),
    _spec(KafkaTopic.DLQ, "VIN or none", _D, _EDGE, "rejected raw bytes with a reason header"),
    _spec(KafkaTopic.COMMANDS, "VIN", _D, _CLOUD, "command requests from apps and the API"),
    _spec(KafkaTopic.COMMAND_RESPONSES, "command id", _D, _EDGE, "vehicle answers, tracker input"),
    _spec(
        KafkaTopic.COMMAND_DISPATCH,
        "command id",
        _D,
        _EDGE,
        "downlink reports (sent, cancelled, expired), input of the tracker",
    ),
    _spec(KafkaTopic.COMMAND_STATUS, "command id", _C, _EDGE, "command lifecycle transitions"),
    _spec(KafkaTopic.GRANTS, "grant id", _C, _CLOUD, "digital keys: issued, revoked"),
    # written by the API only today; a second writer at the edge gets a topic of its own;
    # read in the cloud alone: it stays there
    _spec(
        KafkaTopic.AUDIT,
        "VIN",
        _D,
        _CLOUD,
        "who did what: keys, commands, refusals",
        mirrored=False,
    ),
    _spec(KafkaTopic.HAZARDS, "H3 cell", _D, _EDGE, "hazard lifecycle"),
    _spec(KafkaTopic.PARKING, "H3 cell", _C, _EDGE, "free-spot estimates per cell"),
    _spec(KafkaTopic.VEHICLE_STATE, "VIN", _C, _CLOUD, "latest position, speed, battery, online"),
    _spec(KafkaTopic.TRIPS, "VIN", _D, _CLOUD, "trips: start, end, distance, harsh events"),
    _spec(KafkaTopic.GEOFENCE_EVENTS, "VIN", _D, _CLOUD, "geofence visits: enter, dwell, exit"),
    _spec(KafkaTopic.ALERTS, "VIN", _D, _CLOUD, "maintenance alerts: raised, acked, resolved"),
    _spec(KafkaTopic.ALERT_ACKS, "VIN", _D, _CLOUD, "alerts acknowledged, and by whom"),
    _spec(KafkaTopic.SERVICES, "VIN", _C, _CLOUD, "services recorded: when, at what odometer"),
    _spec(KafkaTopic.GEOFENCES, "geofence id", _C, _CLOUD, "geofences: circles and polygons"),
    # the payment provider's word stays with the purchase processor, in the cloud
    _spec(
        KafkaTopic.PAYMENTS,
        "purchase id",
        _D,
        _CLOUD,
        "payment provider events as received",
        mirrored=False,
    ),
    _spec(KafkaTopic.PURCHASES, "purchase id", _C, _CLOUD, "purchase lifecycle"),
    _spec(KafkaTopic.ENTITLEMENTS, "{vin}/{feature}", _C, _CLOUD, "features a vehicle may use"),
    # OTA: the orchestrator runs next to the commands it sends and is each record's one writer
    _spec(
        KafkaTopic.CAMPAIGN_REQUESTS,
        "campaign id",
        _D,
        _CLOUD,
        "OTA campaign requests as received: create, approve, pause, resume, abort",
        mirrored=False,
    ),
    _spec(KafkaTopic.CAMPAIGNS, "campaign id", _C, _CLOUD, "OTA campaign definitions and state"),
    _spec(
        KafkaTopic.CAMPAIGN_VEHICLES,
        "{campaign}/{vin}",
        _C,
        _CLOUD,
        "OTA desired vs reported version per car",
    ),
    _spec(KafkaTopic.V2X_CAM_IN, "station id", _D, _EDGE, "ETSI CAM from roadside units"),
    _spec(KafkaTopic.V2X_DENM_IN, "station id", _D, _EDGE, "ETSI DENM from roadside units"),
    _spec(KafkaTopic.V2X_DENM_OUT, "action id", _D, _EDGE, "ETSI DENM to roadside units"),
    # each side's replication monitor writes about the flow into its own cluster
    _spec(
        KafkaTopic.REPLICATION_ALERTS,
        "flow",
        _D,
        _CLOUD,
        "replication: lag past its bound, records expired before they crossed",
        mirrored=False,
    ),
    # Quix Streams has no timers: every app instance writes one tick per partition each
    # interval, so state expires on time without input; each cluster has its own
    KafkaTopicSpec(
        KafkaTopic.TICKS,
        "partition",
        _D,
        _EDGE,
        "clock ticks that drive the stream apps' expiry",
        retention_ms=3_600_000,
        mirrored=False,
    ),
)

_SPECS: Final = {spec.topic: spec for spec in KAFKA_TOPICS}


def spec_of(topic: KafkaTopic) -> KafkaTopicSpec:
    return _SPECS[topic]


class TopicMap:
    """The Kafka name of each contract topic: the production names, or renamed ones.

    ``prefixed(run)`` gives every topic a name of its own (``<run>.<name>``): tests and
    benchmarks run beside each other, and beside production, on one cluster.
    """

    __slots__ = ("_base", "_names", "_topics", "prefix")

    def __init__(self, renames: Mapping[KafkaTopic, str] | None = None, prefix: str = "") -> None:
        self.prefix = prefix
        self._base = {topic: (renames or {}).get(topic, str(topic)) for topic in KafkaTopic}
        self._names = {
            topic: f"{prefix}.{name}" if prefix else name for topic, name in self._base.items()
        }
        self._topics = {name: topic for topic, name in self._names.items()}
        if len(self._topics) != len(self._names):
            raise ValueError("two contract topics would share one Kafka name")

    def __getitem__(self, topic: KafkaTopic) -> str:
        return self._names[topic]

    def prefixed(self, run: str) -> TopicMap:
        return TopicMap(self._base, prefix=f"{self.prefix}.{run}" if self.prefix else run)

    def topic_of(self, name: str) -> KafkaTopic | None:
        """The contract topic a Kafka name stands for, or None for a name outside the contract."""
        return self._topics.get(name)

    def resolve(self, name: str) -> str:
        """A topic named in settings (a contract name, or any other): its Kafka name here."""
        try:
            return self._names[KafkaTopic(name)]
        except ValueError:
            return name

    def items(self, topics: Iterable[KafkaTopic] = KafkaTopic) -> list[tuple[str, KafkaTopicSpec]]:
        """Kafka name and spec of each of ``topics`` (all of the contract by default)."""
        return [(self._names[topic], _SPECS[topic]) for topic in topics]

    def names(self, topics: Iterable[KafkaTopic] = KafkaTopic) -> list[str]:
        return [self._names[topic] for topic in topics]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TopicMap) and self._names == other._names

    def __hash__(self) -> int:
        return hash(tuple(self._names.values()))

    def __repr__(self) -> str:
        return f"TopicMap(prefix={self.prefix!r})"


PRODUCTION_TOPICS: Final = TopicMap()
"""The contract's own names, unprefixed: what a platform uses unless its settings rename topics."""
