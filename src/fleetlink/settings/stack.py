"""The local development stack's section."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from fleetlink.settings.base import Port, Section


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fleetlink"


class MirrorSettings(Section):
    """MirrorMaker 2 between the edge and the cloud cluster (``--topology edge-cloud``)."""

    # a topic created on one side is mirrored within this long (MM2's default: 10 minutes);
    # each refresh is one metadata request per side
    refresh_topics_s: int = Field(default=5, ge=1, le=86400)
    # what a killed MM2 copies again: at most this much of its last records
    offset_flush_ms: int = Field(default=5000, ge=100, le=600_000)
    tasks: int = Field(default=2, ge=1, le=64)  # per direction; a partition is one task's
    heartbeat_s: int = Field(default=1, ge=1, le=3600)  # the replication-lag probe's beat


class Topology(StrEnum):
    """``single``: one Kafka cluster. ``edge-cloud``: an edge cluster beside Mosquitto and a
    cloud cluster, linked both ways by two MirrorMaker 2 processes."""

    SINGLE = "single"
    EDGE_CLOUD = "edge-cloud"


class StackSettings(Section):
    """The local development stack: one Kafka (or three) and one Mosquitto on loopback; with the
    ``edge-cloud`` topology a second Kafka of as many nodes (the cloud) and MirrorMaker 2."""

    state_dir: Path = Path(".fleetlink")
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    kafka_version: str = Field(default="4.1.1", pattern=r"^4\.\d+\.\d+$")
    brokers: int = 1
    kafka_port: Port = 9092
    controller_port: Port = 19093
    mqtt_port: Port = 1883
    # A second listener, server-side TLS plus username (the VIN) and password, for vehicle units
    # that cannot hold a client certificate (`fleetlink vehicles add VIN --password`); off if unset.
    mqtt_password_port: Port | None = None
    kafka_heap_mb: int = Field(default=512, ge=256, le=16384)
    # A gateway worker down for a minute at 10,000 msg/s leaves 600,000 messages queued for it.
    mqtt_max_queued_messages: int = Field(default=2_000_000, ge=1000)
    # Above the gateway's max_payload_bytes: a big message reaches the dead-letter topic with a
    # reason; a huge one is refused by the broker before it costs anyone memory.
    mqtt_max_packet_bytes: int = Field(default=1024 * 1024, ge=4096, le=256 * 1024 * 1024)
    start_timeout_s: float = Field(default=120.0, gt=0)
    topology: Topology = Topology.SINGLE
    cloud_kafka_port: Port = 9192  # the cloud cluster's ports (edge-cloud topology)
    cloud_controller_port: Port = 19193
    # edge-cloud: the first of 4 x brokers ports for the link (each node's LINK listener and its
    # port on the link proxy, edge then cloud), through which each MM2 reaches its remote side
    link_port: Port = 9600
    mirror_heap_mb: int = Field(default=256, ge=128, le=16384)  # each MM2 process
    mirror: MirrorSettings = MirrorSettings()

    @field_validator("brokers")
    @classmethod
    def _one_or_three(cls, value: int) -> int:
        if value not in (1, 3):
            raise ValueError("Input should be 1 or 3 (one node, or a replicated cluster)")
        return value

    @model_validator(mode="after")
    def _ports_do_not_overlap(self) -> StackSettings:
        kafka = set(self.kafka_ports())
        controller = set(self.controller_ports())
        if self.topology is Topology.EDGE_CLOUD:
            cloud = set(self.cloud_kafka_ports()) | set(self.cloud_controller_ports())
            link = set(range(self.link_port, self.link_port + 4 * self.brokers))
            if cloud & (kafka | controller) or set(self.cloud_kafka_ports()) & set(
                self.cloud_controller_ports()
            ):
                raise ValueError("the cloud cluster's ports overlap the edge's or each other")
            if link & (kafka | controller | cloud):
                raise ValueError("the link ports overlap the clusters' ports")
            kafka |= cloud | link
        mqtt = {self.mqtt_port, self.mqtt_password_port} - {None}
        if (
            kafka & controller
            or mqtt & (kafka | controller)
            or self.mqtt_port == self.mqtt_password_port
        ):
            raise ValueError(
                "kafka_port, controller_port, mqtt_port and mqtt_password_port ranges overlap"
            )
        if max(kafka | controller) > 65535:
            raise ValueError("a port range runs past 65535")
        return self

    def kafka_ports(self) -> list[int]:
        return [self.kafka_port + i for i in range(self.brokers)]

    def cloud_kafka_ports(self) -> list[int]:
        return [self.cloud_kafka_port + i for i in range(self.brokers)]

    def cloud_controller_ports(self) -> list[int]:
        return [self.cloud_controller_port + i for i in range(self.brokers)]

    def link_ports(self, block: int) -> list[int]:
        """Block 0: the edge nodes' LINK listeners, 1: their proxy ports; 2, 3: the cloud's."""
        first = self.link_port + block * self.brokers
        return [first + i for i in range(self.brokers)]

    @property
    def pki_dir(self) -> Path:
        """The development PKI of this stack (CA, broker and client certificates, signing keys)."""
        return self.state_dir / "pki"

    def controller_ports(self) -> list[int]:
        return [self.controller_port + i for i in range(self.brokers)]
