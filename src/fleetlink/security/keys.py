"""The platform's keys and certificates, from the configured files or the local stack's PKI."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetlink.errors import ConfigError
from fleetlink.security.images import DirectorSigner, ImageSigner, OtaTrust
from fleetlink.security.pki import DevPki, SigningPurpose
from fleetlink.security.signing import Signer, key_id
from fleetlink.settings import Settings


def _load(path: Path, key: str) -> Ed25519PrivateKey:
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError, TypeError) as error:
        raise ConfigError(f"security.{key}: cannot read {path}: {error}") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigError(f"security.{key}: {path} is not an Ed25519 private key")
    return loaded


def signing_key(settings: Settings, purpose: SigningPurpose) -> Ed25519PrivateKey:
    configured = {
        SigningPurpose.VEHICLE_TRUST: (
            "vehicle_trust_key_file",
            settings.security.vehicle_trust_key_file,
        ),
        SigningPurpose.API_TOKENS: ("api_token_key_file", settings.security.api_token_key_file),
        SigningPurpose.IMAGE_REPOSITORY: ("image_key_file", settings.campaigns.image_key_file),
        SigningPurpose.DIRECTOR: ("director_key_file", settings.campaigns.director_key_file),
    }[purpose]
    if configured[1] is not None:
        return _load(configured[1], configured[0])
    return DevPki(settings.stack.pki_dir).signing_key(purpose)


def identity_tls(settings: Settings, identity: str) -> ssl.SSLContext | None:
    """MQTT TLS for ``identity``: its certificate of the local stack's PKI, or the configured
    files (``mqtt.tls``, ``mqtt.ca_file``, ``mqtt.cert_file``) for another broker."""
    if settings.uses_local_mqtt:
        return DevPki(settings.stack.pki_dir).client_tls(identity)
    mqtt = settings.mqtt
    if not mqtt.tls:
        return None
    context = ssl.create_default_context(cafile=str(mqtt.ca_file) if mqtt.ca_file else None)
    if mqtt.cert_file is not None and mqtt.key_file is not None:
        context.load_cert_chain(str(mqtt.cert_file), str(mqtt.key_file))
    return context


def command_signer(settings: Settings) -> Signer:
    """Signs commands and digital keys (the key cars trust)."""
    return Signer(signing_key(settings, SigningPurpose.VEHICLE_TRUST))


def image_signer(settings: Settings) -> ImageSigner:
    """The image repository's key: for ``fleetlink ota publish`` only (offline in production)."""
    return ImageSigner(signing_key(settings, SigningPurpose.IMAGE_REPOSITORY))


def director_signer(settings: Settings) -> DirectorSigner:
    """The director's key: the campaign orchestrator's per-car orders and download tokens."""
    return DirectorSigner(signing_key(settings, SigningPurpose.DIRECTOR))


def ota_trust(settings: Settings) -> OtaTrust:
    """The OTA public keys cars are given at registration (and the API checks tokens with)."""
    return OtaTrust.of(
        signing_key(settings, SigningPurpose.IMAGE_REPOSITORY).public_key(),
        signing_key(settings, SigningPurpose.DIRECTOR).public_key(),
    )


def download_trust(settings: Settings) -> OtaTrust:
    """What the API checks download tokens with: the director's public key, nothing more."""
    director = signing_key(settings, SigningPurpose.DIRECTOR).public_key()
    return OtaTrust({}, {key_id(director): director})
