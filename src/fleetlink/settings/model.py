"""The one settings model: a TOML file, then ``FLEETLINK_*`` environment variables, then CLI flags.

Kafka and MQTT either point at the local stack (the default: leave their addresses unset) or at
external clusters. Invalid values stop the program at start with a message naming the key.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import tomli_w
from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from fleetlink.contracts.topics import KafkaTopic, Site, TopicMap
from fleetlink.errors import ConfigError
from fleetlink.settings.apps import AppsSettings
from fleetlink.settings.base import LOCALHOST
from fleetlink.settings.campaigns import CampaignsSettings
from fleetlink.settings.gateway import GatewaySettings
from fleetlink.settings.kafka import KafkaSettings
from fleetlink.settings.mqtt import MqttSettings
from fleetlink.settings.purchases import PaymentsSettings, PurchasesSettings
from fleetlink.settings.services import (
    ApiSettings,
    ReplicationSettings,
    RuntimeSettings,
    SecuritySettings,
    TopicSettings,
    TrackerSettings,
)
from fleetlink.settings.stack import StackSettings, Topology

ENV_PREFIX = "FLEETLINK_"
ENV_NESTED_DELIMITER = "__"
CONFIG_ENV_VAR = "FLEETLINK_CONFIG"
DEFAULT_CONFIG_FILE = Path("fleetlink.toml")
DEFAULT_CLUSTER = "default"
CLUSTER_NAME = r"^[a-z][a-z0-9-]{0,30}$"


_toml_file: ContextVar[Path | None] = ContextVar("fleetlink_toml_file", default=None)


class Settings(BaseSettings):
    """Every setting of fleetlink, one section per concern.

    ``kafka`` is the default cluster profile; ``clusters`` names more (e.g. ``edge``, ``cloud``),
    each with its own address and security options. ``site`` says where this process runs in
    the edge-cloud topology: its default cluster is then ``clusters.<site>`` if there is one
    (two external clusters), else that site's cluster of the local stack.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    site: Site | None = None  # None: a single cluster (or the edge's of the local stack)
    kafka: KafkaSettings = KafkaSettings()
    clusters: dict[Annotated[str, Field(pattern=CLUSTER_NAME)], KafkaSettings] = Field(
        default_factory=dict
    )
    mqtt: MqttSettings = MqttSettings()
    stack: StackSettings = Field(default_factory=StackSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    api: ApiSettings = ApiSettings()
    tracker: TrackerSettings = TrackerSettings()
    security: SecuritySettings = SecuritySettings()
    runtime: RuntimeSettings = RuntimeSettings()
    topics: TopicSettings = TopicSettings()
    apps: AppsSettings = AppsSettings()
    replication: ReplicationSettings = ReplicationSettings()
    payments: PaymentsSettings = PaymentsSettings()
    purchases: PurchasesSettings = Field(default_factory=PurchasesSettings)
    campaigns: CampaignsSettings = CampaignsSettings()

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
        return self.kafka_profile().bootstrap_servers is None

    @property
    def here(self) -> Site:
        """Where this process runs: its ``site``, the edge unless set."""
        return self.site or Site.EDGE

    @property
    def edge_cloud(self) -> bool:
        """The local stack runs an edge and a cloud cluster linked by MirrorMaker 2."""
        return self.stack.topology is Topology.EDGE_CLOUD

    @property
    def uses_local_mqtt(self) -> bool:
        return self.mqtt.host is None

    def kafka_profile(self, cluster: str = DEFAULT_CLUSTER) -> KafkaSettings:
        """The settings of one Kafka cluster: ``default`` is this site's profile if there is one,
        else the ``kafka`` section."""
        if cluster == DEFAULT_CLUSTER:
            site = self.site
            return self.kafka if site is None else self.clusters.get(site.value, self.kafka)
        try:
            return self.clusters[cluster]
        except KeyError:
            known = ", ".join([DEFAULT_CLUSTER, *sorted(self.clusters)])
            raise ConfigError(f"no Kafka cluster profile {cluster!r} (known: {known})") from None

    def kafka_bootstrap_servers(self, cluster: str = DEFAULT_CLUSTER) -> str:
        servers = self.kafka_profile(cluster).bootstrap_servers
        if servers is not None:
            return servers
        if cluster != DEFAULT_CLUSTER:
            raise ConfigError(f"invalid configuration: clusters.{cluster}.bootstrap_servers: unset")
        return self.local_bootstrap_servers(self.here)

    def sites(self) -> list[Site]:
        """The clusters of the platform: edge and cloud (the local edge-cloud stack, or two
        cluster profiles named so), else just this process's."""
        linked = {Site.EDGE.value, Site.CLOUD.value} <= set(self.clusters)
        if (self.uses_local_kafka and self.edge_cloud) or linked:
            return list(Site)
        return [self.here]

    def at_site(self, site: Site) -> Settings:
        """These settings for a process at ``site``."""
        return self.model_copy(update={"site": site})

    def local_bootstrap_servers(self, site: Site) -> str:
        """The local stack's cluster at ``site`` (the one cluster unless edge-cloud)."""
        if site is Site.CLOUD and self.edge_cloud:
            ports = self.stack.cloud_kafka_ports()
        else:
            ports = self.stack.kafka_ports()
        return ",".join(f"{LOCALHOST}:{port}" for port in ports)

    def remote_settings(self, site: Site) -> Settings:
        """These settings for reaching the cluster at ``site`` from here: on the local
        edge-cloud stack another site's cluster is reached over the link (which a test can
        cut), as MM2 reaches it."""
        there = self.at_site(site)
        if site is self.here or not (self.uses_local_kafka and self.edge_cloud):
            return there
        block = 1 if site is Site.EDGE else 3  # the link proxy's ports of that cluster
        servers = ",".join(f"{LOCALHOST}:{port}" for port in self.stack.link_ports(block))
        kafka = self.kafka.model_copy(update={"bootstrap_servers": servers})
        return there.model_copy(update={"kafka": kafka})

    def kafka_client_config(self, cluster: str = DEFAULT_CLUSTER) -> dict[str, str]:
        """librdkafka settings shared by every producer, consumer and admin client of a cluster."""
        kafka = self.kafka_profile(cluster)
        config = {
            "bootstrap.servers": self.kafka_bootstrap_servers(cluster),
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

    def topic_map(self) -> TopicMap:
        """The Kafka name of every contract topic under these settings."""
        return self.topics.topic_map()

    def routed_topic(self, topic: KafkaTopic) -> str | None:
        """The Kafka name of ``topic`` if a gateway mapping writes it (e.g. presence), else None."""
        topics = self.topic_map()
        name = topics[topic]
        routed = (topics.resolve(rule.kafka_topic) for rule in self.gateway.mappings)
        return name if name in routed else None

    def journal_dir(self) -> Path:
        return self.runtime.journal_dir or self.stack.state_dir / "journal"

    def apps_state_dir(self) -> Path:
        return self.apps.state_dir or self.stack.state_dir / "apps"

    def image_dir(self) -> Path:
        return self.campaigns.image_dir or self.stack.state_dir / "images"

    def artifact_url(self) -> str:
        """Where cars download images: the configured address or the API's own."""
        return self.campaigns.artifact_url or f"http://{self.api.host}:{self.api.port}"

    def users_file(self) -> Path:
        return self.security.users_file or self.stack.state_dir / "users.json"

    def api_sessions_file(self) -> Path:
        return self.api.sessions_file or self.stack.state_dir / "api-sessions.sqlite"

    def street_map_file(self) -> Path:
        return self.api.street_map_file or self.stack.state_dir / "street-map.geojson"

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
        for name, cluster in settings.clusters.items():
            if cluster.sasl_password is not None:
                data["clusters"][name]["sasl_password"] = cluster.sasl_password.get_secret_value()
        if settings.mqtt.password is not None:
            data["mqtt"]["password"] = settings.mqtt.password.get_secret_value()
    return tomli_w.dumps(data)
