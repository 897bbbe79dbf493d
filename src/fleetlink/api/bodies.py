"""The base of every JSON request body: text that cannot be UTF-8 never gets in.

Python's JSON parser lets lone surrogates through (``"\\ud800"``, or raw bytes ED A0 80), and
such a string would fail only later, when it is written to Kafka. Refused here, with a 400.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator
from pydantic_core import PydanticCustomError

INVALID_UTF8 = "invalid_utf8"


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
    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:
        if _has_lone_surrogate(data):
            raise PydanticCustomError(INVALID_UTF8, "text that is not valid UTF-8")
        return data
