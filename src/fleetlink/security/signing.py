"""Ed25519 signatures of the platform on commands and digital keys; cars check them offline.

What is signed is the canonical JSON of the record (keys sorted, ``sig`` left out) after a
context line, so a command signature can never pass as a key signature or the other way round.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Mapping
from typing import Final

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fleetlink.contracts.campaigns import DirectorOrder, ImageMetadata
from fleetlink.contracts.codec import UndecodableError, decode_with, decoder_of
from fleetlink.contracts.models import Command, Grant

COMMAND_CONTEXT: Final = b"fleetlink/command/v1\n"
GRANT_CONTEXT: Final = b"fleetlink/grant/v1\n"

_grant_decoder = decoder_of(Grant)


class SignatureError(ValueError):
    """A record whose signature does not hold; ``str(error)`` is the reason code."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: the first 8 bytes of its SHA-256, in hex."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def canonical(record: msgspec.Struct) -> bytes:
    return msgspec.json.encode(record, order="sorted")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


SignedRecord = Command | ImageMetadata | DirectorOrder


def check_record(
    keys: Mapping[str, Ed25519PublicKey], context: bytes, record: SignedRecord, *, prefix: str = ""
) -> None:
    """``SignatureError`` (``{prefix}unsigned``, ``unknown-key``, ``bad-signature``) unless the
    record's ``sig`` holds over context + its canonical JSON without ``sig``."""
    if record.sig is None or record.kid is None:
        raise SignatureError(f"{prefix}unsigned")
    key = keys.get(record.kid)
    if key is None:
        raise SignatureError(f"{prefix}unknown-key")
    unsigned = msgspec.structs.replace(record, sig=None)
    try:
        key.verify(unb64url(record.sig), context + canonical(unsigned))
    except (InvalidSignature, ValueError):
        raise SignatureError(f"{prefix}bad-signature") from None


def signed_token(key: Ed25519PrivateKey, context: bytes, body: bytes) -> str:
    """A compact token: ``body.kid.signature`` (base64url), the signature over context + body."""
    return f"{b64url(body)}.{key_id(key.public_key())}.{b64url(key.sign(context + body))}"


def token_body(
    token: str,
    keys: Mapping[str, Ed25519PublicKey],
    context: bytes,
    *,
    what: str,
    unknown: str = "unknown-key",
) -> bytes:
    """The body of a ``signed_token`` whose signature holds with one of ``keys``, else
    ``SignatureError`` (``{what}-malformed``, ``{what}-{unknown}``, ``{what}-bad-signature``)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise SignatureError(f"{what}-malformed")
    body_text, kid, signature_text = parts
    key = keys.get(kid)
    if key is None:
        raise SignatureError(f"{what}-{unknown}")
    try:
        body = unb64url(body_text)
        key.verify(unb64url(signature_text), context + body)
    except (InvalidSignature, ValueError):
        raise SignatureError(f"{what}-bad-signature") from None
    return body


class Signer:
    """Signs commands and digital keys with one platform key; thread-safe."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.kid = key_id(private_key.public_key())
        self._counter = 0
        self._lock = threading.Lock()

    def _next_counter(self) -> int:
        # microseconds since the epoch, strictly rising: unique per signer even across restarts
        with self._lock:
            self._counter = max(self._counter + 1, time.time_ns() // 1000)
            return self._counter

    def sign_command(self, command: Command) -> Command:
        unsigned = msgspec.structs.replace(
            command, kid=self.kid, counter=self._next_counter(), sig=None
        )
        signature = self._key.sign(COMMAND_CONTEXT + canonical(unsigned))
        return msgspec.structs.replace(unsigned, sig=b64url(signature))

    def sign_grant(self, grant: Grant) -> str:
        """The digital key as a compact token: ``body.kid.signature`` (base64url)."""
        return signed_token(self._key, GRANT_CONTEXT, canonical(grant))


class Verifier:
    """Checks signatures against the platform keys a car (or service) trusts, by key id."""

    def __init__(self, trusted: Mapping[str, Ed25519PublicKey]) -> None:
        self._trusted = dict(trusted)

    @classmethod
    def of(cls, *public_keys: Ed25519PublicKey) -> Verifier:
        return cls({key_id(key): key for key in public_keys})

    def check_command(self, command: Command) -> None:
        """Raises ``SignatureError`` (unsigned, unknown-key, bad-signature) unless it holds."""
        if command.counter is None:
            raise SignatureError("unsigned")
        check_record(self._trusted, COMMAND_CONTEXT, command)

    def read_grant(self, token: str) -> Grant:
        """The digital key in ``token`` once its signature holds, else ``SignatureError``."""
        body = token_body(token, self._trusted, GRANT_CONTEXT, what="key", unknown="unknown-signer")
        try:
            grant: Grant = decode_with(_grant_decoder, body)
        except UndecodableError:
            raise SignatureError("key-malformed") from None
        return grant
