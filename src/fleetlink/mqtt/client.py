"""paho-mqtt clients configured from the settings: MQTT 5, TLS and credentials when set."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetlink.config import Settings


def new_client(settings: Settings, client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    options = settings.mqtt
    if options.username is not None:
        password = options.password.get_secret_value() if options.password else None
        client.username_pw_set(options.username, password)
    if options.tls:
        client.tls_set(
            ca_certs=str(options.ca_file) if options.ca_file else None,
            certfile=str(options.cert_file) if options.cert_file else None,
            keyfile=str(options.key_file) if options.key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def connect_properties(*, session_expiry_s: int, receive_maximum: int | None = None) -> Properties:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = session_expiry_s
    if receive_maximum is not None:
        properties.ReceiveMaximum = receive_maximum
    return properties


def end_session_properties() -> Properties:
    """DISCONNECT properties that make the broker discard the session at once."""
    properties = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 0
    return properties
