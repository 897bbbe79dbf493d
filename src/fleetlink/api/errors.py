"""One error style for the whole API: a route raises ``ApiError``; every refusal is answered as
``{"error", "detail"}`` (plus named extras), and every route declares each error it can answer,
with that schema, in the OpenAPI document."""

from __future__ import annotations

import threading
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fleetlink.contracts.campaigns import CAMPAIGN_ID
from fleetlink.contracts.geofences import FENCE_ID_PATTERN
from fleetlink.contracts.models import COMMAND_ID_PATTERN, GRANT_ID_PATTERN
from fleetlink.contracts.vin import VIN_PATTERN

VinPath = Annotated[
    str, Path(description="ISO 3779 VIN: 17 characters, no I, O or Q", pattern=VIN_PATTERN)
]
# the contract's id patterns: the API hands out UUIDs, other producers may use other ids
CommandIdPath = Annotated[
    str, Path(description="a command id, as POST answered it", pattern=COMMAND_ID_PATTERN)
]
GrantIdPath = Annotated[
    str, Path(description="a key's id, as POST /v1/grants answered it", pattern=GRANT_ID_PATTERN)
]
FenceIdPath = Annotated[
    str, Path(description="a geofence's id, as POST answered it", pattern=FENCE_ID_PATTERN)
]
CampaignIdPath = Annotated[
    str, Path(description="a campaign's id, as POST /v1/campaigns answered it", pattern=CAMPAIGN_ID)
]
# a path parameter that breaks its pattern is answered with its own error code
PATH_ERRORS = {
    "vin": ("invalid-vin", "not a VIN (17 characters, no I, O, Q)"),
    "command_id": ("invalid-command-id", "not a command id (letters, digits, . _ : -)"),
    "grant_id": ("invalid-grant-id", "not a key id (letters, digits, . _ : -)"),
    "fence_id": ("invalid-fence-id", "not a geofence id (letters, digits, . _ : -)"),
    "campaign_id": ("invalid-campaign-id", "not a campaign id (lower-case letters, digits, -)"),
}


class ApiError(Exception):
    """Raised by a route: answered as ``{"error", "detail", **extra}`` with its status and
    headers."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> JSONResponse:
        body = {"error": self.error, "detail": self.detail, **self.extra}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class ErrorBody(BaseModel):
    """What every error response holds."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="a stable code, e.g. forbidden, unknown-vehicle")
    detail: str | list[dict[str, Any]] = Field(description="for people; the problems of a 4xx")


_MEANINGS = {
    400: "The body is not JSON, or not UTF-8",
    401: "No valid bearer token",
    403: "The caller's role or key does not allow it",
    404: "No such vehicle, command, key, geofence, campaign or image (or no topic mapping)",
    405: "The path exists; the method does not (see Allow)",
    409: "It conflicts with what exists (an idempotency key used otherwise, a finished command)",
    413: "The body is larger than api.max_body_bytes",
    416: "The range asked for starts beyond the end (see Content-Range for the size)",
    422: "The request breaks a rule (VIN, command, parameters, lifetime)",
    429: "Too many requests from this caller (see Retry-After)",
    503: "Kafka did not acknowledge in time, or the API is still reading (see Retry-After)",
}


def kafka_unavailable(failure: Exception, retry_after_s: int) -> ApiError:
    """503: Kafka did not take the record in time; the client may try again after a while."""
    return ApiError(503, "kafka-unavailable", str(failure), {"Retry-After": str(retry_after_s)})


AUTHENTICATED = (401, 403, 422, 429)
WITH_BODY = (400, 413, 422)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: each error status it may answer, with the error schema."""
    return {
        status: {"model": ErrorBody, "description": _MEANINGS[status]}
        for status in sorted(set(statuses))
    }


class ReadModel(Protocol):
    ready: threading.Event  # set once the model has read its topic to the end at start-up


ModelT = TypeVar("ModelT", bound=ReadModel)


def read_when_ready(view: ModelT, what: str) -> ModelT:
    """``view`` once it has caught up; until then a 503 ``not-ready`` naming ``what``."""
    if not view.ready.is_set():
        raise ApiError(503, "not-ready", f"still reading {what}", {"Retry-After": "1"})
    return view
