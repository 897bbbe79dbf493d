"""The base of every JSON request body: text that cannot be UTF-8 never gets in, and a field the
body does not have is refused (a typo such as ``ttl`` for ``ttl_s`` must not pass unnoticed),
and so is a value of the wrong type (no "5" for 5).

Python's JSON parser lets lone surrogates through (``"\\ud800"``, or raw bytes ED A0 80), and
such a string would fail only later, when it is written to Kafka. Refused here, with a 400.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

INVALID_UTF8 = "invalid_utf8"


def _integral(value: Any) -> Any:
    # JSON Schema's integer includes 5.0; strict pydantic would refuse it
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_integral)]
"""An integer as JSON Schema means it: 5 and 5.0, never "5" or 5.5."""


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


class ApiBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is not a number

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:
        if _has_lone_surrogate(data):
            raise PydanticCustomError(INVALID_UTF8, "text that is not valid UTF-8")
        return data
