"""The development PKI: a local CA, the broker's certificate, a certificate per identity."""

from fleetlink.security.pki.authority import CA_DAYS, LEAF_DAYS, DevPki
from fleetlink.security.pki.identities import (
    Identity,
    PkiError,
    Revocation,
    Role,
    SigningPurpose,
    validate_identity_name,
)

__all__ = [
    "CA_DAYS",
    "LEAF_DAYS",
    "DevPki",
    "Identity",
    "PkiError",
    "Revocation",
    "Role",
    "SigningPurpose",
    "validate_identity_name",
]
