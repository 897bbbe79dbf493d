"""Who an identity of the development PKI is: its name, its role, its files."""

from __future__ import annotations

import datetime
import re
from enum import StrEnum
from pathlib import Path

import msgspec
from cryptography import x509
from cryptography.x509.oid import NameOID

from fleetlink.contracts.vin import is_valid_vin
from fleetlink.errors import FleetlinkError

_SERVICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{1,62}$")


class Role(StrEnum):
    """What an MQTT identity may do; the broker ACL is generated from it."""

    VEHICLE = "vehicle"  # its own uplink topics, its own commands, geo warnings
    GATEWAY = "gateway"  # the bridge: reads every uplink topic, publishes commands and warnings
    MONITOR = "monitor"  # reads uplink topics and broker statistics, publishes nothing
    PROXY = "proxy"  # publishes for many vehicles (a load generator, a legacy-device bridge)


class SigningPurpose(StrEnum):
    """One key per purpose: a leaked API token key cannot sign a command a car would take."""

    VEHICLE_TRUST = "vehicle-trust"  # commands and digital keys, verified by cars
    API_TOKENS = "api-tokens"  # bearer tokens, verified by the API
    # OTA (Uptane's two roles): releases, kept offline; per-car orders, online
    IMAGE_REPOSITORY = "image-repository"
    DIRECTOR = "director"


class PkiError(FleetlinkError):
    """The PKI is missing, incomplete or asked for something it must refuse."""


class Revocation(msgspec.Struct, frozen=True):
    """One revoked identity: whose, which certificate serial (none for a password), since when."""

    name: str
    role: Role
    serial: int | None
    revoked_at: datetime.datetime


class Identity:
    """Paths of one identity's certificate and key."""

    def __init__(self, name: str, role: Role, cert_file: Path, key_file: Path) -> None:
        self.name = name
        self.role = role
        self.cert_file = cert_file
        self.key_file = key_file


def validate_identity_name(name: str, role: Role) -> None:
    """Vehicles are named by a VIN, services by a lower-case name; nothing else reaches a CN."""
    if role is Role.VEHICLE:
        if not is_valid_vin(name):
            raise PkiError(
                f"{name!r} is not a VIN: 17 characters, digits and capitals without I, O or Q"
            )
    elif not _SERVICE_NAME.fullmatch(name) or is_valid_vin(name):
        raise PkiError(
            f"{name!r} is not a service name: a letter, then letters, digits, '-' or '_' "
            "(and not a VIN)"
        )


def identity_from(cert_file: Path, key_file: Path) -> Identity:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    name = cert_attribute(cert, NameOID.COMMON_NAME)
    role_text = cert_attribute(cert, NameOID.ORGANIZATIONAL_UNIT_NAME)
    try:
        role = Role(role_text)
    except ValueError:
        raise PkiError(f"{cert_file}: unknown role {role_text!r}") from None
    return Identity(name, role, cert_file, key_file)


def cert_attribute(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def file_stem(name: str) -> str:
    """A file name for any CN, even a hostile one (``#``, ``../x``) in the mis-issuance tests."""
    if re.fullmatch(r"[A-Za-z0-9-]+", name):
        return name
    return "x-" + name.encode().hex()
