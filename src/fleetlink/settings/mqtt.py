"""The MQTT section: where the broker is and how the platform's clients connect."""

from __future__ import annotations

from pydantic import Field, FilePath, SecretStr, model_validator

from fleetlink.settings.base import Port, Section


class MqttSettings(Section):
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
