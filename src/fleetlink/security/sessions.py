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
import sqlite3
import threading
import time
from pathlib import Path
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


class SpentIds:
    """Ids that may not be used again (redeemed login codes, ended sessions), each until it
    expires, in a SQLite file that every API process of the host shares (``path``; ``None``:
    this process's memory only).

    With several API processes on one port, a login code must open one session, not one per
    process, and a logout must end the session in every process: the insert that succeeds is
    the one redemption (SQLite serialises writers across processes).
    """

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit; a writer waits up to 5 s for another process's write
        self._db = sqlite3.connect(
            str(path) if path is not None else ":memory:",
            timeout=5,
            isolation_level=None,
            check_same_thread=False,
        )
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS spent"
            " (kind TEXT NOT NULL, jti TEXT NOT NULL, until INTEGER NOT NULL,"
            " PRIMARY KEY (kind, jti))"
        )
        self._next_sweep = 0.0

    def spend(self, kind: str, jti: str, expires: int) -> bool:
        """False when ``jti`` was spent before (as ``kind``), by this process or another."""
        now = time.time()
        with self._lock:
            if now >= self._next_sweep:  # what has expired can never be presented again
                self._next_sweep = now + 60
                self._db.execute("DELETE FROM spent WHERE until + 60 < ?", (int(now),))
            try:
                self._db.execute("INSERT INTO spent VALUES (?, ?, ?)", (kind, jti, expires))
            except sqlite3.IntegrityError:
                return False
            return True

    def spent(self, kind: str, jti: str) -> bool:
        with self._lock:
            found = self._db.execute(
                "SELECT 1 FROM spent WHERE kind = ? AND jti = ?", (kind, jti)
            ).fetchone()
        return found is not None


class Sessions:
    """Opens, checks and ends browser sessions; ``spent`` remembers the codes redeemed and the
    sessions ended (shared by the host's API processes when it is a file)."""

    def __init__(
        self,
        key: Ed25519PrivateKey,
        session_ttl_s: int,
        leeway_s: int = 5,
        spent: SpentIds | None = None,
    ) -> None:
        self._key = key
        self._public = key.public_key()
        self._ttl_s = session_ttl_s
        self._leeway_s = leeway_s
        self._spent = spent or SpentIds()

    def open(self, code: str) -> Session:
        """Redeem a login code for a session; ``TokenError`` if it is not valid or was used."""
        claims = self._claims(code, LOGIN_AUDIENCE, "login code")
        if not self._spent.spend("code", str(claims["jti"]), int(claims["exp"])):
            raise TokenError("this login code was used already: ask for a new one")
        return self.session(
            signed_jwt(self._key, str(claims["sub"]), self._ttl_s, aud=SESSION_AUDIENCE)
        )

    def session(self, cookie: str) -> Session:
        """The session a cookie holds; ``TokenError`` if it is forged, expired or ended."""
        claims = self._claims(cookie, SESSION_AUDIENCE, "session")
        jti = str(claims["jti"])
        if self._spent.spent("session", jti):
            raise TokenError("session ended: log in again")
        return Session(str(claims["sub"]), int(claims["exp"]), csrf_of(jti), cookie)

    def end(self, cookie: str) -> None:
        """Log out: the cookie is no good here any more, even if a copy of it survives."""
        claims = self._claims(cookie, SESSION_AUDIENCE, "session")
        self._spent.spend("session", str(claims["jti"]), int(claims["exp"]))

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
