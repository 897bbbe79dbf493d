"""Files of the PKI: written whole or not at all, keys readable by their owner only."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

# Mosquitto's own count (mosquitto_passwd). Generated passwords carry 192 random bits, so no
# guessing is within reach however fast the hash; a slow one would cost the broker at each connect.
_PASSWORD_ROUNDS = 101


def password_hash(password: str) -> str:
    """Mosquitto's password-file hash: PBKDF2-SHA512, ``$7$rounds$salt$digest`` in base64."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PASSWORD_ROUNDS, 64)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"$7${_PASSWORD_ROUNDS}${encoded[0]}${encoded[1]}"


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(path, pem, mode=0o600)


def create_once(path: Path, data: bytes) -> None:
    """Write an owner-only file unless it exists; of two racing writers the first one wins
    and readers never see it half written (a hard link publishes the finished file)."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Readers (a broker reloading, a worker starting) never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
