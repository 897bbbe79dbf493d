"""The one settings model: a TOML file, then ``FLEETLINK_*`` environment variables, then CLI flags.

Kafka and MQTT either point at the local stack (the default: leave their addresses unset) or at
external clusters. Invalid values stop the program at start with a message naming the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from fleetlink.errors import ConfigError

ENV_PREFIX = "FLEETLINK_"
ENV_NESTED_DELIMITER = "__"
CONFIG_ENV_VAR = "FLEETLINK_CONFIG"
DEFAULT_CONFIG_FILE = Path("fleetlink.toml")
LOCALHOST = "127.0.0.1"

Port = Annotated[int, Field(ge=1, le=65535)]

_HOST_PORT = re.compile(r"^[A-Za-z0-9._\-\[\]:]+:\d{1,5}$")


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fleetlink"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Section):
    """Where Kafka is and how to authenticate; unset ``bootstrap_servers`` means the local stack."""

    bootstrap_servers: str | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: FilePath | None = None
    ssl_certificate_location: FilePath | None = None
    ssl_key_location: FilePath | None = None
    client_id: str = Field(default="fleetlink", min_length=1)
    topic_partitions: int = Field(default=6, ge=1, le=10000)
    # None: the cluster's default.replication.factor (3 on a 3-node local stack).
    topic_replication_factor: int | None = Field(default=None, ge=1, le=10)

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port_list(cls, value: str | None) -> str | None:
        if value is None:
            return None
        servers = [part.strip() for part in value.split(",")]
        bad = [s for s in servers if not _HOST_PORT.match(s)]
        if bad:
            raise ValueError(f"expected host:port[,host:port...], got {bad[0]!r}")
        return ",".join(servers)

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> KafkaSettings:
        uses_sasl = self.security_protocol.startswith("SASL_")
        if uses_sasl and (
            self.sasl_mechanism is None or self.sasl_username is None or self.sasl_password is None
        ):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_mechanism, "
                "sasl_username and sasl_password"
            )
        if not uses_sasl and self.sasl_mechanism is not None:
            raise ValueError("sasl_mechanism is set but security_protocol is not SASL_*")
        return self


class MqttSettings(_Section):
    """Where the MQTT broker is; unset ``host`` means the local stack."""

    host: str | None = Field(default=None, min_length=1)
    port: Port | None = None
    tls: bool = False
    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    username: str | None = None
    password: SecretStr | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    # the platform's clients wait this long before reconnecting, doubling up to the max
    reconnect_min_s: int = Field(default=1, ge=1, le=60)
    reconnect_max_s: int = Field(default=10, ge=1, le=600)

    @model_validator(mode="after")
    def _client_cert_has_key(self) -> MqttSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class StackSettings(_Section):
    """The local development stack: one Kafka (or three) and one Mosquitto on loopback."""

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

    @field_validator("brokers")
    @classmethod
    def _one_or_three(cls, value: int) -> int:
        if value not in (1, 3):
            raise ValueError("Input should be 1 or 3 (one node, or a replicated cluster)")
        return value

    @model_validator(mode="after")
    def _ports_do_not_overlap(self) -> StackSettings:
        kafka = set(range(self.kafka_port, self.kafka_port + self.brokers))
        controller = set(range(self.controller_port, self.controller_port + self.brokers))
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

    @property
    def pki_dir(self) -> Path:
        """The development PKI of this stack (CA, broker and client certificates, signing keys)."""
        return self.state_dir / "pki"

    def controller_ports(self) -> list[int]:
        return [self.controller_port + i for i in range(self.brokers)]


class MappingRule(_Section):
    """Route MQTT messages matching ``mqtt_filter`` to ``kafka_topic``.

    ``key_level`` and ``vin_level`` count topic levels from 0 (``vehicles/{vin}/...``: VIN is 1);
    ``schema`` names the contract model the payload must satisfy (``raw``: no validation).
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    mqtt_filter: str = Field(min_length=1)
    kafka_topic: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
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
            kafka_topic="fleet.telemetry",
            schema_name="telemetry",
        ),
        MappingRule(
            name="events",
            mqtt_filter="vehicles/+/events/+",
            kafka_topic="fleet.events",
            schema_name="event",
        ),
        MappingRule(
            name="presence",
            mqtt_filter="vehicles/+/presence",
            kafka_topic="fleet.presence",
            schema_name="presence",
        ),
        MappingRule(
            name="command-responses",
            mqtt_filter="vehicles/+/command-responses/+",
            kafka_topic="fleet.command-responses",
            key_level=3,
            schema_name="command-response",
        ),
    ]


class GatewaySettings(_Section):
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
    dlq_topic: str = Field(default="fleet.dlq", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    # downlink: commands from Kafka to the vehicles
    downlink: bool = True
    commands_topic: str = Field(default="fleet.commands", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    command_status_topic: str = Field(
        default="fleet.command-status", pattern=r"^[A-Za-z0-9._-]{1,249}$"
    )
    command_dispatch_topic: str = Field(
        default="fleet.command-dispatch", pattern=r"^[A-Za-z0-9._-]{1,249}$"
    )
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

    def mapping_topic(self, name: str) -> str | None:
        """The Kafka topic of the mapping rule ``name`` (e.g. ``presence``), if there is one."""
        return next((rule.kafka_topic for rule in self.mappings if rule.name == name), None)


class TrackerSettings(_Section):
    """The command tracker (``fleetlink tracker``)."""

    group_id: str = Field(default="fleetlink-tracker", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    response_grace_s: float = Field(default=10.0, ge=0, le=3600)
    reconcile_window_s: float = Field(default=600.0, ge=0, le=86400)


class ApiSettings(_Section):
    """The HTTP API (``fleetlink api``)."""

    host: str = "127.0.0.1"
    port: Port = 8080
    kafka_timeout_s: float = Field(default=5.0, gt=0, le=120)
    cancel_wait_s: float = Field(default=5.0, ge=0, le=60)  # DELETE waits this long for the outcome
    # per authenticated client (token subject): requests a second, and a burst
    client_rate_per_s: float = Field(default=100.0, gt=0)
    client_burst: int = Field(default=500, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    grants_topic: str = Field(default="fleet.grants", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    audit_topic: str = Field(default="fleet.audit", pattern=r"^[A-Za-z0-9._-]{1,249}$")


class SecuritySettings(_Section):
    """Keys and users. Unset files mean those of the local stack's PKI (``fleetlink pki init``)."""

    vehicle_trust_key_file: FilePath | None = None  # Ed25519: signs commands and digital keys
    api_token_key_file: FilePath | None = None  # Ed25519: signs API bearer tokens
    users_file: Path | None = None  # default: <stack.state_dir>/users.json
    token_ttl_s: int = Field(default=3600, ge=60, le=30 * 86400)


class RuntimeSettings(_Section):
    """How processes survive bad input: the poison journal, and a fault hook for tests."""

    journal_dir: Path | None = None  # default: <stack.state_dir>/journal
    # An input the process died handling this often is dead-lettered as poison, not handled.
    poison_after_crashes: int = Field(default=3, ge=1, le=100)
    # Test-only: the thread handling an input that holds this text raises (a crash on purpose).
    crash_on: str | None = Field(default=None, min_length=4)


_toml_file: ContextVar[Path | None] = ContextVar("fleetlink_toml_file", default=None)


class Settings(BaseSettings):
    """Every setting of fleetlink, in sections ``kafka``, ``mqtt`` and ``stack``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    mqtt: MqttSettings = MqttSettings()
    stack: StackSettings = Field(default_factory=StackSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    api: ApiSettings = ApiSettings()
    tracker: TrackerSettings = TrackerSettings()
    security: SecuritySettings = SecuritySettings()
    runtime: RuntimeSettings = RuntimeSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _toml_file.get()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def uses_local_kafka(self) -> bool:
        return self.kafka.bootstrap_servers is None

    @property
    def uses_local_mqtt(self) -> bool:
        return self.mqtt.host is None

    def kafka_bootstrap_servers(self) -> str:
        if self.kafka.bootstrap_servers is not None:
            return self.kafka.bootstrap_servers
        return ",".join(f"{LOCALHOST}:{port}" for port in self.stack.kafka_ports())

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka settings shared by every producer, consumer and admin client."""
        kafka = self.kafka
        config = {
            "bootstrap.servers": self.kafka_bootstrap_servers(),
            "security.protocol": kafka.security_protocol,
            "client.id": kafka.client_id,
            # small requests (a command, a fetch) go out at once, not after the peer's ACK
            "socket.nagle.disable": "true",
        }
        optional = {
            "sasl.mechanism": kafka.sasl_mechanism,
            "sasl.username": kafka.sasl_username,
            "sasl.password": kafka.sasl_password.get_secret_value()
            if kafka.sasl_password
            else None,
            "ssl.ca.location": kafka.ssl_ca_location,
            "ssl.certificate.location": kafka.ssl_certificate_location,
            "ssl.key.location": kafka.ssl_key_location,
        }
        config.update({key: str(value) for key, value in optional.items() if value is not None})
        return config

    def journal_dir(self) -> Path:
        return self.runtime.journal_dir or self.stack.state_dir / "journal"

    def users_file(self) -> Path:
        return self.security.users_file or self.stack.state_dir / "users.json"

    def mqtt_address(self) -> tuple[str, int]:
        host = self.mqtt.host or LOCALHOST
        default_port = 8883 if self.mqtt.tls else 1883
        port = self.mqtt.port or (self.stack.mqtt_port if self.uses_local_mqtt else default_port)
        return host, port


def _describe_error(error: Any, toml_file: Path | None) -> str:
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc) or "(top level)"
    env_var = ENV_PREFIX + ENV_NESTED_DELIMITER.join(part.upper() for part in loc)
    where = env_var
    if toml_file is not None and loc:
        section = f"[{loc[0]}] " if len(loc) > 1 else ""
        where = f"{section}{'.'.join(loc[1:]) or loc[0]} in {toml_file} or {env_var}"
    message = str(error["msg"]).removeprefix("Value error, ")
    shown = ""
    if error["type"] not in ("missing", "extra_forbidden") and "input" in error:
        value = error["input"]
        if not isinstance(value, dict):
            shown = f" (got {value!r})"
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
    return f"invalid configuration: {key}: {message}{shown} [set by {where}]"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings from ``config_file`` (or ``$FLEETLINK_CONFIG``, or ``./fleetlink.toml``).

    ``overrides`` are sections of CLI flags, e.g. ``stack={"brokers": 3}``; they win over the
    environment, which wins over the file.
    """
    if config_file is None and os.environ.get(CONFIG_ENV_VAR):
        config_file = Path(os.environ[CONFIG_ENV_VAR])
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    if config_file is None and DEFAULT_CONFIG_FILE.is_file():
        config_file = DEFAULT_CONFIG_FILE
    if config_file is not None:
        try:
            tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {config_file} is not valid TOML: {exc}") from None
    token = _toml_file.set(config_file)
    try:
        return Settings(**_without_none(overrides))
    except ValidationError as exc:
        lines = [_describe_error(error, config_file) for error in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    finally:
        _toml_file.reset(token)


def _without_none(overrides: dict[str, Any]) -> dict[str, Any]:
    """Drop flags the user did not give, so the environment and the file still decide them."""
    return {
        section: {key: value for key, value in values.items() if value is not None}
        for section, values in overrides.items()
    }


def dump_toml(settings: Settings, *, reveal_secrets: bool = False) -> str:
    """The effective settings as a TOML file that ``load_settings`` reads back the same."""
    data = settings.model_dump(mode="json", by_alias=True, exclude_none=True)
    if reveal_secrets:
        if settings.kafka.sasl_password is not None:
            data["kafka"]["sasl_password"] = settings.kafka.sasl_password.get_secret_value()
        if settings.mqtt.password is not None:
            data["mqtt"]["password"] = settings.mqtt.password.get_secret_value()
    return tomli_w.dumps(data)
