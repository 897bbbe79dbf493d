"""The dashboard's browser session: a one-time login code (`fleetlink login NAME`, or the
demo's link) swapped for an HttpOnly, SameSite=Strict cookie; the page asks for the CSRF token
its writes carry. No credential ever sits in a URL the server sees: the link carries the code
in its fragment, which browsers keep to themselves."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from fleetlink.api.auth import Caller, Guard
from fleetlink.api.bodies import ApiBody
from fleetlink.api.errors import AUTHENTICATED, WITH_BODY, ApiError, documented
from fleetlink.security.access import Principal
from fleetlink.security.sessions import SESSION_COOKIE, Session
from fleetlink.security.tokens import TokenError

router = APIRouter(prefix="/v1", tags=["session"])


class LoginRequest(ApiBody):
    code: str = Field(
        min_length=20, max_length=2000, description="a login code from `fleetlink login NAME`"
    )


class SessionInfo(BaseModel):
    user: str
    role: str
    vins: list[str] = Field(description="an owner's cars (empty for the other roles)")
    csrf: str | None = Field(
        description="send it as X-CSRF-Token with every write the session cookie authenticates"
    )
    expires: int | None = Field(description="when the session ends, unix seconds")


def _info(caller: Principal, session: Session | None) -> SessionInfo:
    return SessionInfo(
        user=caller.name,
        role=caller.role.value,
        vins=sorted(caller.vins),
        csrf=session.csrf if session else None,
        expires=session.expires if session else None,
    )


@router.post(
    "/session",
    status_code=201,
    response_model=SessionInfo,
    operation_id="open_session",
    responses=documented(401, 403, 429, *WITH_BODY),
    openapi_extra={"security": []},  # the code in the body is the credential
)
async def open_session(body: LoginRequest, request: Request) -> JSONResponse:
    """Swap a login code for a session cookie (the code is good once, for minutes)."""
    guard: Guard = request.app.state.guard
    if guard.sessions is None:
        raise ApiError(401, "unauthenticated", "this API opens no browser sessions")
    try:
        session = guard.sessions.open(body.code)
    except TokenError as error:
        raise ApiError(401, "invalid-login-code", str(error)) from None
    caller = guard.admit(session.user, browser=True)
    answer = JSONResponse(_info(caller, session).model_dump(), status_code=201)
    settings = request.app.state.settings
    answer.set_cookie(
        SESSION_COOKIE,
        session.cookie,
        max_age=settings.security.session_ttl_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or settings.security.session_cookie_secure,
    )
    return answer


@router.get(
    "/session",
    response_model=SessionInfo,
    operation_id="get_session",
    responses=documented(*AUTHENTICATED),
)
async def get_session(caller: Caller, request: Request) -> SessionInfo:
    """Who the caller is, and the session's CSRF token when a session cookie authenticates."""
    cookie = request.cookies.get(SESSION_COOKIE)
    uses_cookie = cookie and "authorization" not in request.headers
    guard: Guard = request.app.state.guard
    return _info(caller, guard.session(cookie) if uses_cookie and cookie else None)


@router.delete(
    "/session",
    status_code=204,
    operation_id="end_session",
    responses=documented(*AUTHENTICATED),
)
async def end_session(_caller: Caller, request: Request) -> Response:
    """Log out: the session cookie is cleared and no good here any more."""
    guard: Guard = request.app.state.guard
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and guard.sessions is not None and "authorization" not in request.headers:
        guard.sessions.end(cookie)
    answer = Response(status_code=204)
    answer.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return answer
