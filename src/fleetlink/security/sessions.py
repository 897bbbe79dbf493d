"""Browser sessions for the dashboard: a one-time login code is swapped for a session cookie.

Both are JWTs signed with the API token key, each with an audience of its own, so neither
passes as a bearer token (a bearer token has no audience) nor as the other. The code is good
once and for minutes; the cookie is HttpOnly, so page scripts never hold a credential, and
writes made with it carry a CSRF token the page asks for (a cross-site page can neither read
it nor send the cookie: SameSite=Strict).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetlink.security.tokens import ISSUER, SIGNING_ALGORITHM, TokenError, signed_jwt
from fleetlink.security.users import UserRole

LOGIN_AUDIENCE = "fleetlink-login"
SESSION_AUDIENCE = "fleetlink-session"
SESSION_COOKIE = "fleetlink_session"
CSRF_HEADER = "X-CSRF-Token"
# who may look at the dashboard: not cars, and not services (they act only through keys)
BROWSER_ROLES = frozenset({UserRole.FLEET_ADMIN, UserRole.OWNER, UserRole.VIEWER})
DASHBOARD_PATH = "/ui/"


class Session(msgspec.Struct, frozen=True):
    user: str
    expires: int  # unix seconds
    csrf: str
    cookie: str  # the cookie's value


def issue_login_code(key: Ed25519PrivateKey, user: str, ttl_s: int) -> str:
    """A code that opens one browser session for ``user`` within ``ttl_s``."""
    return signed_jwt(key, user, ttl_s, aud=LOGIN_AUDIENCE)


def dashboard_link(base_url: str, code: str) -> str:
    """The link that logs in: the code rides in the fragment, which no server or proxy log and
    no Referer header ever sees; the page posts it and drops it from the address bar."""
    return f"{base_url.rstrip('/')}{DASHBOARD_PATH}#code={code}"


def csrf_of(session_id: str) -> str:
    """The CSRF token of a session: derived from its id, which only the cookie carries."""
    return hashlib.sha256(f"fleetlink-csrf:{session_id}".encode()).hexdigest()[:32]


class _Spent:
    """Ids that may not be used again (redeemed codes, ended sessions), each until it expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, int] = {}

    def spend(self, jti: str, expires: int) -> bool:
        """False when ``jti`` was spent before."""
        now = int(time.time())
        with self._lock:
            if jti in self._until:
                return False
            if len(self._until) > 1000:
                self._until = {k: v for k, v in self._until.items() if v + 60 >= now}
            self._until[jti] = expires
            return True

    def __contains__(self, jti: object) -> bool:
        with self._lock:
            return jti in self._until


class Sessions:
    """Opens, checks and ends browser sessions (what one API process remembers: codes it
    redeemed and sessions ended through it)."""

    def __init__(self, key: Ed25519PrivateKey, session_ttl_s: int, leeway_s: int = 5) -> None:
        self._key = key
        self._public = key.public_key()
        self._ttl_s = session_ttl_s
        self._leeway_s = leeway_s
        self._redeemed = _Spent()
        self._ended = _Spent()

    def open(self, code: str) -> Session:
        """Redeem a login code for a session; ``TokenError`` if it is not valid or was used."""
        claims = self._claims(code, LOGIN_AUDIENCE, "login code")
        if not self._redeemed.spend(str(claims["jti"]), int(claims["exp"])):
            raise TokenError("this login code was used already: ask for a new one")
        return self.session(
            signed_jwt(self._key, str(claims["sub"]), self._ttl_s, aud=SESSION_AUDIENCE)
        )

    def session(self, cookie: str) -> Session:
        """The session a cookie holds; ``TokenError`` if it is forged, expired or ended."""
        claims = self._claims(cookie, SESSION_AUDIENCE, "session")
        jti = str(claims["jti"])
        if jti in self._ended:
            raise TokenError("session ended: log in again")
        return Session(str(claims["sub"]), int(claims["exp"]), csrf_of(jti), cookie)

    def end(self, cookie: str) -> None:
        """Log out: the cookie is no good here any more, even if a copy of it survives."""
        claims = self._claims(cookie, SESSION_AUDIENCE, "session")
        self._ended.spend(str(claims["jti"]), int(claims["exp"]))

    def _claims(self, token: str, audience: str, what: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public,
                algorithms=[SIGNING_ALGORITHM],
                issuer=ISSUER,
                audience=audience,
                leeway=self._leeway_s,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError(f"{what} expired") from None
        except jwt.InvalidTokenError as error:
            raise TokenError(f"invalid {what}: {error}") from None
        return claims


def csrf_matches(session: Session, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(session.csrf, sent)
