"""Sections of the platform's other processes: tracker, API, security, runtime, topics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, FilePath, model_validator

from fleetlink.contracts.topics import KafkaTopic, TopicMap
from fleetlink.settings.base import TOPIC_NAME, Port, Section, refuse_topic_keys


class TrackerSettings(Section):
    """The command tracker (``fleetlink tracker``)."""

    group_id: str = Field(default="fleetlink-tracker", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    response_grace_s: float = Field(default=10.0, ge=0, le=3600)
    reconcile_window_s: float = Field(default=600.0, ge=0, le=86400)


class ReplicationSettings(Section):
    """The replication monitor (``fleetlink mirror monitor``), one beside each MM2 target."""

    check_s: float = Field(default=1.0, gt=0, le=300)
    # a lag alert when the newest copied heartbeat is older than this
    lag_alert_s: float = Field(default=30.0, gt=0, le=86400)
    metrics_port: int = Field(default=9390, ge=0, le=65535)  # 0: no /metrics
    # MM2's offsets topic on the target: what it has copied; {source} is the source's alias
    offsets_topic: str = "mm2-offsets.{source}.internal"


class ApiSettings(Section):
    """The HTTP API (``fleetlink api``)."""

    host: str = "127.0.0.1"
    port: Port = 8080
    kafka_timeout_s: float = Field(default=5.0, gt=0, le=120)
    cancel_wait_s: float = Field(
        default=5.0, ge=0, le=60
    )  # a cancel waits this long for the outcome
    # per authenticated client (token subject): requests a second, and a burst
    client_rate_per_s: float = Field(default=100.0, gt=0)
    client_burst: int = Field(default=500, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # the dashboard's streets (GeoJSON); default <stack.state_dir>/street-map.geojson, which
    # `fleetlink street-map` (and the demo) write for the simulated city
    street_map_file: Path | None = None
    # the dashboard's platform panel samples Kafka (topic ends, app lags) this often
    platform_every_s: float = Field(default=5.0, ge=0.2, le=300)
    # API processes sharing the port (the kernel spreads connections over them); each follows
    # Kafka itself; rate limits are per process (see the README)
    processes: int = Field(default=1, ge=1, le=64)
    # login codes redeemed and sessions ended, shared by the host's API processes (SQLite);
    # default <stack.state_dir>/api-sessions.sqlite
    sessions_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_topic_keys(cls, data: Any) -> Any:
        refuse_topic_keys(
            "api", data, {"grants_topic": KafkaTopic.GRANTS, "audit_topic": KafkaTopic.AUDIT}
        )
        return data


class SecuritySettings(Section):
    """Keys and users. Unset files mean those of the local stack's PKI (``fleetlink pki init``)."""

    vehicle_trust_key_file: FilePath | None = None  # Ed25519: signs commands and digital keys
    api_token_key_file: FilePath | None = None  # Ed25519: signs API bearer tokens
    users_file: Path | None = None  # default: <stack.state_dir>/users.json
    token_ttl_s: int = Field(default=3600, ge=60, le=30 * 86400)
    # the dashboard: a login code (`fleetlink login`) opens one browser session within this
    login_code_ttl_s: int = Field(default=300, ge=30, le=3600)
    session_ttl_s: int = Field(default=8 * 3600, ge=300, le=7 * 86400)
    # the session cookie's Secure flag: always set for https requests; this sets it for http too
    # (behind a TLS-terminating proxy)
    session_cookie_secure: bool = False


class RuntimeSettings(Section):
    """How processes survive bad input: the poison journal, and a fault hook for tests."""

    journal_dir: Path | None = None  # default: <stack.state_dir>/journal
    # An input the process died handling this often is dead-lettered as poison, not handled.
    poison_after_crashes: int = Field(default=3, ge=1, le=100)
    # A process told to stop (SIGTERM, or its parent died) exits after this long at the latest,
    # whatever it still waits for; gateway workers get their drain_timeout_s on top.
    stop_grace_s: float = Field(default=10.0, gt=0, le=600)
    # Test-only: the thread handling an input that holds this text raises (a crash on purpose).
    crash_on: str | None = Field(default=None, min_length=4)


class TopicSettings(Section):
    """Kafka names of the contract's topics: the production names unless renamed or prefixed.

    ``prefix`` puts every topic under ``<prefix>.`` (several platforms on one cluster);
    ``names`` renames single topics, e.g. ``names = {"fleet.commands" = "acme.car-commands"}``.
    """

    prefix: str = Field(default="", pattern=r"^([A-Za-z0-9_-][A-Za-z0-9._-]{0,99})?$")
    names: dict[KafkaTopic, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_are_topic_names(self) -> TopicSettings:
        bad = [name for name in self.names.values() if not re.fullmatch(TOPIC_NAME, name)]
        if bad:
            raise ValueError(f"not a Kafka topic name: {bad[0]!r}")
        self.topic_map()  # refuses two topics under one name
        return self

    def topic_map(self) -> TopicMap:
        return TopicMap(self.names, prefix=self.prefix)
