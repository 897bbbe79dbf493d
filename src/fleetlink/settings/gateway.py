"""The gateway's section and its routes from MQTT filters to Kafka topics."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from fleetlink.contracts.topics import KafkaTopic
from fleetlink.settings.base import TOPIC_NAME, Section, refuse_topic_keys


class MappingRule(Section):
    """Route MQTT messages matching ``mqtt_filter`` to ``kafka_topic``.

    ``key_level`` and ``vin_level`` count topic levels from 0 (``vehicles/{vin}/...``: VIN is 1);
    ``schema`` names the contract model the payload must satisfy (``raw``: no validation).
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    mqtt_filter: str = Field(min_length=1)
    kafka_topic: str = Field(pattern=TOPIC_NAME)  # a contract topic or any other
    key_level: int | None = Field(default=1, ge=0)
    vin_level: int | None = Field(default=1, ge=0)
    schema_name: Literal["telemetry", "event", "presence", "command-response", "raw"] = Field(
        default="raw", alias="schema"
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("mqtt_filter")
    @classmethod
    def _valid_filter(cls, value: str) -> str:
        levels = value.split("/")
        if value.startswith("$"):
            raise ValueError("give the plain filter; the gateway adds $share/<group>/ itself")
        for index, level in enumerate(levels):
            if ("+" in level and level != "+") or ("#" in level and level != "#"):
                raise ValueError(f"wildcard must fill a whole level: {level!r}")
            if level == "#" and index != len(levels) - 1:
                raise ValueError("'#' must be the last level")
        return value


def default_mappings() -> list[MappingRule]:
    """The platform's routes (architecture page): one per uplink channel."""
    return [
        MappingRule(
            name="telemetry",
            mqtt_filter="vehicles/+/telemetry",
            kafka_topic=KafkaTopic.TELEMETRY,
            schema_name="telemetry",
        ),
        MappingRule(
            name="events",
            mqtt_filter="vehicles/+/events/+",
            kafka_topic=KafkaTopic.EVENTS,
            schema_name="event",
        ),
        MappingRule(
            name="presence",
            mqtt_filter="vehicles/+/presence",
            kafka_topic=KafkaTopic.PRESENCE,
            schema_name="presence",
        ),
        MappingRule(
            name="command-responses",
            mqtt_filter="vehicles/+/command-responses/+",
            kafka_topic=KafkaTopic.COMMAND_RESPONSES,
            key_level=3,
            schema_name="command-response",
        ),
    ]


class GatewaySettings(Section):
    """The uplink gateway: MQTT shared subscription in, Kafka out, PUBACK after the Kafka ack."""

    workers: int = Field(default=1, ge=1, le=64)
    client_id_prefix: str = Field(default="fleetlink-gateway", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    share_group: str = Field(default="fleetlink-gateway", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    # Unacknowledged messages the broker may have in flight to one worker: the bounded window.
    receive_maximum: int = Field(default=2000, ge=1, le=65535)
    session_expiry_s: int = Field(default=86400, ge=60)
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * 1024 * 1024)
    late_after_s: float = Field(default=60.0, gt=0)
    linger_ms: int = Field(default=5, ge=0, le=1000)
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    metrics_port: int = Field(default=9310, ge=0, le=65535)  # worker N: metrics_port + N; 0: off
    drain_timeout_s: float = Field(default=30.0, gt=0)
    restart_backoff_s: float = Field(default=0.5, gt=0)
    mappings: list[MappingRule] = Field(default_factory=default_mappings, min_length=1)
    # downlink: commands from Kafka to the vehicles
    downlink: bool = True
    # hazard warnings: fleet.hazards to retained geo/{cell}/warnings/{id} (worker 0)
    hazard_warnings: bool = True
    # Per vehicle: a car flushing a tunnel backlog fits in the burst; a flooding one is
    # throttled (its excess goes to the dead-letter topic, reason rate-limited).
    vehicle_rate_per_s: float = Field(default=50.0, gt=0)
    vehicle_burst: int = Field(default=3000, ge=1)
    # cars that stamp their messages are told every this often which ones are in Kafka
    confirm_interval_s: float = Field(default=0.5, gt=0, le=60)

    @field_validator("mappings")
    @classmethod
    def _unique_names(cls, rules: list[MappingRule]) -> list[MappingRule]:
        names = [rule.name for rule in rules]
        if len(set(names)) != len(names):
            raise ValueError("mapping names must be unique")
        return rules

    @model_validator(mode="before")
    @classmethod
    def _no_topic_keys(cls, data: Any) -> Any:
        refuse_topic_keys("gateway", data, _REPLACED)
        return data


_REPLACED = {
    "dlq_topic": KafkaTopic.DLQ,
    "commands_topic": KafkaTopic.COMMANDS,
    "command_status_topic": KafkaTopic.COMMAND_STATUS,
    "command_dispatch_topic": KafkaTopic.COMMAND_DISPATCH,
}
