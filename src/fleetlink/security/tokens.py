"""API bearer tokens: JWTs signed by the platform (EdDSA), naming a registered user."""

from __future__ import annotations

import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ISSUER = "fleetlink"
_ALGORITHM = "EdDSA"


class TokenError(ValueError):
    """A token that does not authenticate anyone; ``str(error)`` says why."""


def issue_token(key: Ed25519PrivateKey, subject: str, role: str, ttl_s: int) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "role": role,
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm=_ALGORITHM)


def token_subject(key: Ed25519PublicKey, token: str, leeway_s: int = 30) -> str:
    """The user a valid token names; ``TokenError`` when it is expired, forged or malformed."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],  # never "none", never an HMAC with the public key
            issuer=ISSUER,
            leeway=leeway_s,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.InvalidTokenError as error:
        raise TokenError(f"invalid token: {error}") from None
    return str(claims["sub"])
