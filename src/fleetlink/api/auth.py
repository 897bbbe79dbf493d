"""Who calls (a bearer token, or the dashboard's session cookie with its CSRF token for writes)
and per-client rate limits, for every endpoint that needs them."""

from __future__ import annotations

import time
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends, Request

from fleetlink.api.errors import ApiError
from fleetlink.security.access import Principal
from fleetlink.security.ratelimit import RateLimiter
from fleetlink.security.sessions import (
    BROWSER_ROLES,
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    Sessions,
    csrf_matches,
)
from fleetlink.security.tokens import TokenError, TokenVerifier
from fleetlink.security.users import UserRegistry

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Guard:
    """Who is calling: a valid token of a registered, enabled user, within its rate."""

    def __init__(
        self,
        token_key: Ed25519PublicKey,
        users: UserRegistry,
        limiter: RateLimiter,
        sessions: Sessions | None = None,
    ) -> None:
        self._tokens = TokenVerifier(token_key)
        self.users = users
        self._limiter = limiter
        self.sessions = sessions

    def principal(
        self,
        authorization: str | None,
        cookie: str | None = None,
        method: str = "GET",
        csrf: str | None = None,
    ) -> Principal:
        """A bearer token wins over a cookie; a cookie's writes need the session's CSRF token."""
        if authorization is None and cookie:
            session = self.session(cookie)
            if method.upper() not in _SAFE_METHODS and not csrf_matches(session, csrf):
                raise ApiError(
                    403, "csrf", f"a write with the session cookie needs its {CSRF_HEADER} header"
                )
            return self.admit(session.user, browser=True)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401,
                "unauthenticated",
                "send 'Authorization: Bearer <token>' (get one with `fleetlink token NAME`), "
                "or log in to the dashboard (`fleetlink login NAME`)",
                {"WWW-Authenticate": "Bearer"},
            )
        try:
            name = self._tokens.subject(token.strip())
        except TokenError as error:
            raise ApiError(
                401,
                "invalid-token",
                str(error),
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from None
        return self.admit(name)

    def session(self, cookie: str) -> Session:
        if self.sessions is None:
            raise ApiError(401, "unauthenticated", "this API opens no browser sessions")
        try:
            return self.sessions.session(cookie)
        except TokenError as error:
            raise ApiError(401, "invalid-session", str(error)) from None

    def admit(self, name: str, *, browser: bool = False) -> Principal:
        """The enabled user ``name`` within its rate (and, for a browser, of a browser role)."""
        user = self.users.get(name)
        if user is None or user.disabled:
            raise ApiError(401, "unknown-user", f"no enabled user {name!r}")
        if browser and user.role not in BROWSER_ROLES:
            raise ApiError(403, "forbidden", f"the {user.role.value} role has no dashboard")
        now = time.monotonic()
        if not self._limiter.allow(name, now):
            wait = max(1, round(self._limiter.retry_after(name, now) + 0.5))
            raise ApiError(
                429, "rate-limited", f"too many requests from {name}", {"Retry-After": str(wait)}
            )
        return Principal.of(user)


async def _caller(request: Request) -> Principal:
    # async, though it never awaits: a plain function would run in the thread pool, a thread
    # hop per request for ~0.2 ms of work
    guard: Guard = request.app.state.guard
    return guard.principal(
        request.headers.get("authorization"),
        request.cookies.get(SESSION_COOKIE),
        request.method,
        request.headers.get(CSRF_HEADER),
    )


Caller = Annotated[Principal, Depends(_caller)]


def require_vehicle(caller: Principal, vin: str) -> None:
    """403 unless the caller may read the vehicle (admins and viewers: all; owners: theirs)."""
    if not caller.may_read_vehicle(vin):
        raise ApiError(403, "forbidden", f"{vin} is not one of your vehicles")
