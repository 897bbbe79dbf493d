"""The Kafka section: where a cluster is and how to authenticate."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator

from fleetlink.settings.base import Section

_HOST_PORT = re.compile(r"^[A-Za-z0-9._\-\[\]:]+:\d{1,5}$")


class KafkaSettings(Section):
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
