"""One error style for the whole API: every refusal is ``{"error", "detail"}`` (plus named extras),
and every route declares each error it can answer, with that schema, in the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fleetlink.contracts.vin import VIN_PATTERN

VinPath = Annotated[
    str, Path(description="ISO 3779 VIN: 17 characters, no I, O or Q", pattern=VIN_PATTERN)
]


class ErrorBody(BaseModel):
    """What every error response holds."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="a stable code, e.g. forbidden, unknown-vehicle")
    detail: str | list[dict[str, Any]] = Field(description="for people; the problems of a 4xx")


_MEANINGS = {
    400: "The body is not JSON, or not UTF-8",
    401: "No valid bearer token",
    403: "The caller's role or key does not allow it",
    404: "No such vehicle, command or key",
    405: "The path exists; the method does not (see Allow)",
    409: "It conflicts with what exists (an idempotency key used otherwise, a finished command)",
    413: "The body is larger than api.max_body_bytes",
    422: "The request breaks a rule (VIN, command, parameters, lifetime)",
    429: "Too many requests from this caller (see Retry-After)",
    503: "Kafka did not acknowledge in time, or the API is still reading (see Retry-After)",
}


def error_json(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status)


def kafka_unavailable(failure: Exception, retry_after_s: int) -> JSONResponse:
    """503: Kafka did not take the record in time; the client may try again after a while."""
    return JSONResponse(
        {"error": "kafka-unavailable", "detail": str(failure)},
        status_code=503,
        headers={"Retry-After": str(retry_after_s)},
    )


AUTHENTICATED = (401, 403, 422, 429)
WITH_BODY = (400, 413, 422)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: each error status it may answer, with the error schema."""
    return {
        status: {"model": ErrorBody, "description": _MEANINGS[status]}
        for status in sorted(set(statuses))
    }
