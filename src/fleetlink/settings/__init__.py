"""The one settings model: a TOML file, then ``FLEETLINK_*`` environment variables, then CLI flags.

One module per section; ``model`` assembles them and loads them.
"""

from fleetlink.settings.base import LOCALHOST, Port
from fleetlink.settings.gateway import GatewaySettings, MappingRule, default_mappings
from fleetlink.settings.kafka import KafkaSettings
from fleetlink.settings.model import (
    CONFIG_ENV_VAR,
    DEFAULT_CLUSTER,
    DEFAULT_CONFIG_FILE,
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    Settings,
    dump_toml,
    load_settings,
)
from fleetlink.settings.mqtt import MqttSettings
from fleetlink.settings.services import (
    ApiSettings,
    ReplicationSettings,
    RuntimeSettings,
    SecuritySettings,
    TopicSettings,
    TrackerSettings,
)
from fleetlink.settings.stack import StackSettings

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CLUSTER",
    "DEFAULT_CONFIG_FILE",
    "ENV_NESTED_DELIMITER",
    "ENV_PREFIX",
    "LOCALHOST",
    "ApiSettings",
    "GatewaySettings",
    "KafkaSettings",
    "MappingRule",
    "MqttSettings",
    "Port",
    "ReplicationSettings",
    "RuntimeSettings",
    "SecuritySettings",
    "Settings",
    "StackSettings",
    "TopicSettings",
    "TrackerSettings",
    "default_mappings",
    "dump_toml",
    "load_settings",
]
