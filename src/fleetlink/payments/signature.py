"""Webhook signatures, Stripe's scheme: ``Stripe-Signature: t=<unix s>,v1=<hex>[,v1=<hex>...]``.

Each ``v1`` is HMAC-SHA256, keyed with one endpoint secret (UTF-8), over ``b"<t>." + body``:
the raw body as sent, so a receiver must check the bytes before parsing them. A sender with two
secrets (rotation) signs with both; a receiver accepts any ``v1`` made with any secret it holds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Final

SIGNATURE_HEADER: Final = "Stripe-Signature"
SCHEME: Final = "v1"
# A Unix time in seconds fits in 12 digits until the year 33658; a longer "number" is not
# one, and int() of a huge digit string is slow (or refused): never parse it
_TIMESTAMP = re.compile(r"\d{1,12}")


class SignatureInvalid(ValueError):  # noqa: N818 - the name says what the receiver found
    """A webhook's signature does not prove it came from the provider, recently.

    ``reason`` is a short code (``missing``, ``malformed``, ``no-match``, ``stale``,
    ``future``); ``str(error)`` adds the detail.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _digest(payload: bytes, secret: str, timestamp: int) -> str:
    signed = b"%d." % timestamp + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_header(payload: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The ``Stripe-Signature`` value for ``payload`` sent at ``timestamp``: one v1 per secret."""
    if not secrets:
        raise ValueError("no secret to sign with")
    signatures = ",".join(f"{SCHEME}={_digest(payload, secret, timestamp)}" for secret in secrets)
    return f"t={timestamp},{signatures}"


def _parse(header: str) -> tuple[int, list[str]]:
    """The timestamp and the v1 signatures of a header; other schemes (v0) are ignored."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        name, equals, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not equals:
            continue
        if name == "t":
            if not _TIMESTAMP.fullmatch(value):
                raise SignatureInvalid("malformed", "t is not a Unix time in seconds")
            timestamp = int(value)
        elif name == SCHEME:
            candidates.append(value)
    if timestamp is None:
        raise SignatureInvalid("malformed", "no timestamp (t=)")
    if not candidates:
        raise SignatureInvalid("malformed", f"no {SCHEME} signature")
    return timestamp, candidates


def verify(
    payload: bytes, header: str | None, secrets: Sequence[str], *, now_s: float, tolerance_s: int
) -> int:
    """The timestamp of a valid signature of ``payload``; raises ``SignatureInvalid`` otherwise.

    Valid: some ``v1`` matches some secret, and ``t`` is within ``tolerance_s`` of ``now_s``.
    Unlike Stripe's libraries, a timestamp too far in the *future* is refused as well: a
    signature dated ahead (a sender's clock, or a forger's replay stock) would otherwise
    outlive the tolerance window that bounds replays. Nothing but ``SignatureInvalid`` is raised
    for any header text or payload bytes.
    """
    if header is None or not header.strip():
        raise SignatureInvalid("missing", f"no {SIGNATURE_HEADER} header")
    timestamp, candidates = _parse(header)
    # non-ASCII text cannot be hex, and compare_digest refuses it as str: compare bytes, and
    # only of candidates that could match at all
    offered = [c.encode() for c in candidates if c.isascii()]
    matched = False
    for secret in secrets:
        expected = _digest(payload, secret, timestamp).encode()
        for candidate in offered:
            # no early exit: the time taken does not tell which pair matched
            matched |= hmac.compare_digest(expected, candidate)
    # the signature first: a forged header learns nothing from being stale
    if not matched:
        raise SignatureInvalid("no-match", f"no {SCHEME} signature matches a secret")
    if timestamp < now_s - tolerance_s:
        raise SignatureInvalid("stale", f"signed {now_s - timestamp:.0f} s ago")
    if timestamp > now_s + tolerance_s:
        raise SignatureInvalid("future", f"signed {timestamp - now_s:.0f} s ahead")
    return timestamp
